"""Operations files generated from a project's ``mooring.toml``: Prometheus rules, their tests,
Grafana dashboards, and an on-call sheet per model.

What mooring's own monitor judges (``[monitoring.slo]``, the drift thresholds) is written
out for the tools an on-call team already runs, from the same configuration, so the two
cannot drift apart: :func:`prometheus_rules` (``ops/prometheus.py``) and :func:`rule_tests`
(``ops/rule_tests.py``)
(``mooring ops prometheus``), the dashboards that show the same numbers:
:func:`grafana_dashboards` and :func:`write_grafana` (``ops/grafana.py``, ``mooring ops
grafana``), and :func:`runbook` (``ops/runbook.py``, ``mooring ops runbook``), the on-call
sheet written from the same configuration and the registry.
"""

from __future__ import annotations

from mooring.ops.grafana import GrafanaFiles, grafana_dashboards, prometheus_queries, write_grafana
from mooring.ops.prometheus import duration, prometheus_rules
from mooring.ops.rule_tests import RuleSet, rule_tests, write_prometheus
from mooring.ops.runbook import Runbook, runbook, write_runbook

__all__ = [
    "GrafanaFiles",
    "RuleSet",
    "Runbook",
    "duration",
    "grafana_dashboards",
    "prometheus_queries",
    "prometheus_rules",
    "rule_tests",
    "runbook",
    "write_grafana",
    "write_prometheus",
    "write_runbook",
]
