"""Operations files generated from a project's ``mooring.toml``: Prometheus rules, their tests,
Grafana dashboards, and an on-call sheet per model.

What mooring's own monitor judges (``[monitoring.slo]``, the drift thresholds) is written
out for the tools an on-call team already runs, from the same configuration, so the two
cannot drift apart: :func:`prometheus_rules` (``ops/_prometheus.py``) and :func:`rule_tests`
(``ops/_rule_tests.py``)
(``mooring ops prometheus``), the dashboards that show the same numbers:
:func:`grafana_dashboards` and :func:`write_grafana` (``ops/_grafana.py``, ``mooring ops
grafana``), and :func:`runbook` (``ops/_runbook.py``, ``mooring ops runbook``), the on-call
sheet written from the same configuration and the registry.

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
