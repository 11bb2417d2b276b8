"""Operations files generated from a project's ``mooring.toml``: Prometheus rules, their tests
and Grafana dashboards.

What mooring's own monitor judges (``[monitoring.slo]``, the drift thresholds) is written
out for the tools an on-call team already runs, from the same configuration, so the two
cannot drift apart: :func:`prometheus_rules` (``ops/prometheus.py``) and :func:`rule_tests`
(``ops/rule_tests.py``)
(``mooring ops prometheus``), and the dashboards that show the same numbers:
:func:`grafana_dashboards` and :func:`write_grafana` (``ops/grafana.py``, ``mooring ops
grafana``).
"""

from __future__ import annotations

from mooring.ops.grafana import GrafanaFiles, grafana_dashboards, prometheus_queries, write_grafana
from mooring.ops.prometheus import duration, prometheus_rules
from mooring.ops.rule_tests import RuleSet, rule_tests, write_prometheus

__all__ = [
    "GrafanaFiles",
    "RuleSet",
    "duration",
    "grafana_dashboards",
    "prometheus_queries",
    "prometheus_rules",
    "rule_tests",
    "write_grafana",
    "write_prometheus",
]
