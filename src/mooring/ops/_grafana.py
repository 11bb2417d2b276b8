"""Grafana dashboards from ``mooring.toml``: executive, on-call and debug views of one model.

``mooring ops grafana`` writes three dashboards as JSON and a provisioning file that
points Grafana's file provider at their folder:

* ``mooring-<model>-executive.json``: live quality from label feedback
  (``mooring_live_metric``), traffic, the share of 5xx answers, and the cost of an
  answer in CPU seconds;
* ``mooring-<model>-oncall.json``: p95/p99 request latency, 5xx share, answers by status,
  load failures, fallback and registry state, drift verdicts, memory and CPU, and the
  canary weight;
* ``mooring-<model>-debug.json``: contract violations per input, batching (rows per batch,
  queue depth, inference latency, requests in flight, refusals at the door) and the slow
  requests' traces;
* ``mooring-<model>.provisioning.yml``: a dashboard provider for Grafana's
  ``provisioning/dashboards/`` folder.

**Built with grafana-foundation-sdk** (Grafana Labs' SDK generated from the dashboard
schema of each Grafana release; pinned to the 11.6 build), not grafanalib: the SDK is
maintained by Grafana itself and follows the schema, ships type hints (``py.typed``) that
strict mypy checks, and has builders for every panel kind used here and for Tempo
queries; grafanalib (0.7.1) is maintained by the community, lags the schema and is
untyped.

**Data sources.** Every panel and query names the ``${datasource}`` template variable
(a data-source variable of type ``prometheus``), never an exported ``${DS_…}``
placeholder, which file provisioning does not resolve. The ``model`` and ``version``
variables read ``label_values`` of ``mooring_requests_total`` (the model defaults to the
project's). The slow-request traces panel queries a second, optional data-source variable
``traces`` of type ``tempo`` in TraceQL, which is not PromQL: the request spans mooring
sends when ``[observability] otlp_endpoint`` points at Tempo's OTLP receiver (service
``[observability] service_name``), and stays empty without them.

**The same judgement as the rules and the monitor.** Errors are 5xx answers in
``mooring_requests_total`` (4xx and 499 are the client's, door refusals are counted in
``mooring_requests_refused_total``), exactly as ``mooring ops prometheus`` and the monitor
count them. The cost panel divides ``process_cpu_seconds_total`` (the CPU time, user plus
system, of the whole server process, which prometheus-client's process collector reads
from ``/proc`` on Linux and the server exports beside its own metrics) by the answers the
same instance gave; a process serving several models shares its CPU time among them.

Examples:
    >>> from mooring.config import MooringConfig
    >>> cfg = MooringConfig.model_validate(
    ...     {"project": {"name": "income"}, "data": {"train": "t.csv", "label": "y"}})
    >>> boards = grafana_dashboards(cfg)
    >>> sorted(boards), boards["oncall"]["uid"]
    (['debug', 'executive', 'oncall'], 'mooring-income-oncall')
    >>> any("${DS_" in expr for expr in prometheus_queries(boards["debug"]))
    False
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import prometheus, stat, table, tempo, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from mooring.config import MooringConfig
from mooring.formats._metrics import (
    BATCH_SIZE,
    CANARY_WEIGHT,
    CONTRACT_VIOLATIONS,
    DRIFT_DISTANCE,
    DRIFT_FEATURE_DRIFTED,
    DRIFT_STATUS,
    INFERENCE_LATENCY,
    LIVE_LABELS,
    LIVE_METRIC,
    MODEL_FALLBACK,
    MODEL_LOAD_FAILURES,
    MODEL_LOADED,
    QUEUE_DEPTH,
    REGISTRY_UP,
    REQUEST_LATENCY,
    REQUESTS,
    REQUESTS_IN_FLIGHT,
    REQUESTS_REFUSED,
    bucket,
    sum_of,
    total,
)

__all__ = ["KINDS", "GrafanaFiles", "grafana_dashboards", "prometheus_queries", "write_grafana"]

#: The dashboards, in the order they are written.
KINDS = ("executive", "oncall", "debug")
TITLES = {"executive": "executive", "oncall": "on-call", "debug": "debug"}
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TRACES = model.DataSourceRef(type_val="tempo", uid="${traces}")
#: Process metrics of prometheus-client's process collector (Linux), on the server's /metrics.
CPU_SECONDS = "process_cpu_seconds_total"
MEMORY_BYTES = "process_resident_memory_bytes"
RATE = "$__rate_interval"
_UID_LIMIT = 40  # Grafana's limit on a dashboard uid

M = '{model=~"$model"}'
MV = '{model=~"$model",version=~"$version"}'
PSI = MV[:-1] + ',metric="psi"}'


def _sel(extra: str = "", *, version: bool = True) -> str:
    base = MV if version else M
    return base if not extra else base[:-1] + "," + extra + "}"


def _rate(metric: str, selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{RATE}]))"


def _errors_ratio(by: str) -> str:
    """The share of 5xx answers (0, not nothing, when every answer was fine)."""
    every = _rate(total(REQUESTS), _sel(), by)
    bad = _rate(total(REQUESTS), _sel('status=~"5.."'), by)
    return f"({bad} or on ({by}) (0 * {every}))\n/ {every}"


def _quantile(q: float, histogram: str, by: str) -> str:
    return f"histogram_quantile({q}, {_rate(bucket(histogram), _sel(), f'{by}, le')})"


def uid(cfg: MooringConfig, kind: str) -> str:
    """A dashboard's uid: stable for a model, at most 40 characters.

    >>> from mooring.config import MooringConfig
    >>> cfg = MooringConfig.model_validate(
    ...     {"project": {"name": "Income_v2"}, "data": {"train": "t.csv", "label": "y"}})
    >>> uid(cfg, "debug")
    'mooring-income-v2-debug'
    """
    name = cfg.project.name
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"
    out = f"mooring-{slug}-{kind}"
    if len(out) > _UID_LIMIT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        keep = _UID_LIMIT - len(kind) - len(digest) - 2
        out = f"{out[:keep].rstrip('-')}-{digest}-{kind}"
    return out


@dataclass
class _Panel:
    """One panel to build: kind, title, PromQL targets ``(expr, legend)`` and display."""

    kind: str
    title: str
    description: str
    targets: list[tuple[str, str]]
    unit: str = "short"
    width: int = 12
    height: int = 8


def _ts(title: str, text: str, unit: str, *targets: tuple[str, str], width: int = 12) -> _Panel:
    return _Panel("timeseries", title, text, list(targets), unit, width)


def _stat(title: str, text: str, unit: str, *targets: tuple[str, str], width: int = 6) -> _Panel:
    return _Panel("stat", title, text, list(targets), unit, width, 5)


def _executive() -> list[tuple[str, list[_Panel]]]:
    requests = _rate(total(REQUESTS), _sel(), "version")
    per_instance = _rate(total(REQUESTS), _sel(version=False), "instance")
    cpu = f"sum by (instance) (rate({CPU_SECONDS}[{RATE}]))"
    return [
        (
            "Quality",
            [
                _ts(
                    "Live quality by version",
                    "Metrics scored from label feedback (mooring feedback) joined with the "
                    "prediction log, as exported beside the drift gauges.",
                    "short",
                    (
                        f"max by (version, metric) ({LIVE_METRIC}{_sel()})",
                        "v{{version}} {{metric}}",
                    ),
                    width=16,
                ),
                _stat(
                    "Labelled predictions",
                    "Predictions with a label that the live metrics were scored on.",
                    "short",
                    (f"sum by (version) ({LIVE_LABELS}{_sel()})", "v{{version}}"),
                    width=8,
                ),
            ],
        ),
        (
            "Traffic and errors",
            [
                _ts(
                    "Requests per second",
                    "Answers per second by the version that gave them.",
                    "reqps",
                    (requests, "v{{version}}"),
                ),
                _ts(
                    "5xx share",
                    "The share of answers that were server errors (5xx); 4xx are the "
                    "client's and door refusals are not answers, as the SLO rules count.",
                    "percentunit",
                    (_errors_ratio("model"), "{{model}}"),
                ),
            ],
        ),
        (
            "Cost",
            [
                _ts(
                    "CPU seconds per request",
                    f"{CPU_SECONDS} (CPU time of the whole server process, from "
                    "prometheus-client's process collector on Linux) per answer of this "
                    "model on the same instance.",
                    "s",
                    (
                        f"sum(({cpu}) and on (instance) ({per_instance}))\n/ sum({per_instance})",
                        "CPU s / request",
                    ),
                    width=24,
                ),
            ],
        ),
    ]


def _oncall() -> list[tuple[str, list[_Panel]]]:
    return [
        (
            "Latency and errors",
            [
                _ts(
                    "Request latency p95 / p99",
                    "Time from request received to response ready (histogram quantiles).",
                    "s",
                    (_quantile(0.95, REQUEST_LATENCY, "version"), "p95 v{{version}}"),
                    (_quantile(0.99, REQUEST_LATENCY, "version"), "p99 v{{version}}"),
                ),
                _ts(
                    "5xx share by version",
                    "Server errors among the answers of each version.",
                    "percentunit",
                    (_errors_ratio("version"), "v{{version}}"),
                ),
                _ts(
                    "Answers by status",
                    "Answers per second by HTTP status.",
                    "reqps",
                    (_rate(total(REQUESTS), _sel(), "status"), "{{status}}"),
                    width=24,
                ),
            ],
        ),
        (
            "Versions",
            [
                _ts(
                    "Load failures (1h)",
                    "Versions that failed to load, verify or warm up (GET /admin/status).",
                    "short",
                    (
                        f"sum by (version) (increase({total(MODEL_LOAD_FAILURES)}{_sel()}[1h]))",
                        "v{{version}}",
                    ),
                ),
                _stat(
                    "Loaded versions",
                    "1 while a version is loaded and serving.",
                    "short",
                    (f"max by (version) ({MODEL_LOADED}{_sel()})", "v{{version}}"),
                ),
                _stat(
                    "Fallback / registry",
                    "Fallback: 1 while an earlier version answers for an unservable "
                    "production one. Registry: 0 while the deployment record is unreadable.",
                    "short",
                    (f"max({MODEL_FALLBACK}{_sel(version=False)})", "fallback"),
                    (f"min({REGISTRY_UP}{_sel(version=False)})", "registry up"),
                ),
                _stat(
                    "Canary weight",
                    "Percent of unkeyed traffic sent to the canary version.",
                    "percent",
                    (f"max by (model) ({CANARY_WEIGHT}{_sel(version=False)})", "{{model}}"),
                ),
                _stat(
                    "Drift verdict",
                    "Last drift check: 1 drift, 0 ok, -1 insufficient data (retraining is "
                    "triggered by the monitor on drift).",
                    "short",
                    (f"max by (version) ({DRIFT_STATUS}{_sel()})", "v{{version}}"),
                ),
            ],
        ),
        (
            "Resources",
            [
                _ts(
                    "Memory (resident)",
                    f"{MEMORY_BYTES} of each server process serving the model.",
                    "bytes",
                    (
                        f"max by (instance) ({MEMORY_BYTES})\n"
                        f"and on (instance) (max by (instance) ({MODEL_LOADED}{M}))",
                        "{{instance}}",
                    ),
                ),
                _ts(
                    "CPU (cores)",
                    f"rate of {CPU_SECONDS}: cores busy in each server process.",
                    "short",
                    (
                        f"sum by (instance) (rate({CPU_SECONDS}[{RATE}]))\n"
                        f"and on (instance) (max by (instance) ({MODEL_LOADED}{M}))",
                        "{{instance}}",
                    ),
                ),
            ],
        ),
    ]


def _debug() -> list[tuple[str, list[_Panel]]]:
    return [
        (
            "Contract",
            [
                _ts(
                    "Contract violations per input",
                    "Input values outside the version's contract, per second, by input "
                    "and kind (out_of_range, unseen_category).",
                    "short",
                    (
                        _rate(total(CONTRACT_VIOLATIONS), _sel(), "version, input, kind"),
                        "v{{version}} {{input}} {{kind}}",
                    ),
                ),
                _ts(
                    "Drifted features",
                    "Features the last drift check flagged, and their distances.",
                    "short",
                    (
                        f"max by (version, feature) ({DRIFT_FEATURE_DRIFTED}{_sel()})",
                        "drifted v{{version}} {{feature}}",
                    ),
                    (
                        f"max by (version, feature) ({DRIFT_DISTANCE}{PSI})",
                        "psi v{{version}} {{feature}}",
                    ),
                ),
            ],
        ),
        (
            "Batching",
            [
                _ts(
                    "Rows per batch",
                    "Mean rows per executed batch, and the p95.",
                    "short",
                    (
                        f"{_rate(sum_of(BATCH_SIZE), _sel(), 'version')}\n"
                        f"/ {_rate(f'{BATCH_SIZE}_count', _sel(), 'version')}",
                        "mean v{{version}}",
                    ),
                    (_quantile(0.95, BATCH_SIZE, "version"), "p95 v{{version}}"),
                ),
                _ts(
                    "Queue depth",
                    "Requests waiting for a batch.",
                    "short",
                    (f"max by (version) ({QUEUE_DEPTH}{_sel()})", "v{{version}}"),
                ),
                _ts(
                    "Inference latency p50 / p99",
                    "Time of one batch in the model.",
                    "s",
                    (_quantile(0.5, INFERENCE_LATENCY, "version"), "p50 v{{version}}"),
                    (_quantile(0.99, INFERENCE_LATENCY, "version"), "p99 v{{version}}"),
                ),
                _ts(
                    "In flight and refused",
                    "Requests admitted and not yet answered, and refusals at the door per "
                    "second by reason (per server process: the door serves every model).",
                    "short",
                    (
                        f"sum by (instance) ({REQUESTS_IN_FLIGHT})\n"
                        f"and on (instance) (max by (instance) ({MODEL_LOADED}{M}))",
                        "in flight {{instance}}",
                    ),
                    (
                        f"sum by (reason) (rate({total(REQUESTS_REFUSED)}[{RATE}]))",
                        "refused {{reason}}",
                    ),
                ),
            ],
        ),
    ]


def _traces_panel(cfg: MooringConfig) -> Any:
    return (
        table.Panel()
        .title("Slow requests (traces)")
        .description(
            "Traces of requests slower than the latency objective, from the optional "
            "`traces` data source (Tempo, TraceQL; not Prometheus): the spans mooring sends "
            "with [observability] otlp_endpoint set."
        )
        .datasource(TRACES)
        .span(24)
        .height(9)
        .with_target(
            tempo.TempoQuery()
            .ref_id("A")
            .datasource(TRACES)
            .query_type("traceql")
            .query(
                f'{{ resource.service.name = "{cfg.observability.service_name}" '
                f"&& duration > {_slow_ms(cfg)}ms }}"
            )
            .limit(20)
        )
    )


def _slow_ms(cfg: MooringConfig) -> int:
    latency = cfg.monitoring.slo.latency_ms
    return int(latency) if latency else 500


def _variables(cfg: MooringConfig, *, traces: bool) -> list[Any]:
    name = cfg.project.name
    out = [
        board.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        board.QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query(f"label_values({total(REQUESTS)}, model)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .current(model.VariableOption(text=name, value=name, selected=True)),
        board.QueryVariable("version")
        .label("Version")
        .datasource(DATASOURCE)
        .query(f'label_values({total(REQUESTS)}{{model=~"$model"}}, version)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.NATURAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(text="All", value="$__all", selected=True)),
    ]
    if traces:
        out.append(board.DatasourceVariable("traces").label("Traces").type("tempo"))
    return out


def _build(panel: _Panel, first_ref: str = "A") -> Any:
    builder: Any = timeseries.Panel() if panel.kind == "timeseries" else stat.Panel()
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
    )
    for index, (expr, legend) in enumerate(panel.targets):
        builder = builder.with_target(
            prometheus.Dataquery()
            .ref_id(chr(ord(first_ref) + index))
            .datasource(DATASOURCE)
            .expr(expr)
            .legend_format(legend)
        )
    return builder


def _dashboard(cfg: MooringConfig, kind: str) -> dict[str, Any]:
    name = cfg.project.name
    rows = {"executive": _executive, "oncall": _oncall, "debug": _debug}[kind]()
    builder = (
        board.Dashboard(f"mooring {name}: {TITLES[kind]}")
        .uid(uid(cfg, kind))
        .description(f"Generated by mooring ops grafana from the project {name}.")
        .tags(["mooring", name, kind])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(_variables(cfg, traces=kind == "debug"))
    )
    for title, panels in rows:
        builder = builder.with_row(board.Row(title))
        for panel in panels:
            builder = builder.with_panel(_build(panel))
    if kind == "debug":
        builder = builder.with_row(board.Row("Traces")).with_panel(_traces_panel(cfg))
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number  # stable ids: links and alerts can point at a panel
    data["id"] = None
    return data


def grafana_dashboards(cfg: MooringConfig) -> dict[str, dict[str, Any]]:
    """The three dashboards' JSON models by kind (``executive``, ``oncall``, ``debug``)."""
    return {kind: _dashboard(cfg, kind) for kind in KINDS}


def prometheus_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: its panels' targets and its query variables.

    >>> prometheus_queries({"panels": [{"targets": [{"expr": "up"}, {"query": "{}"}]}]})
    ['up']
    """
    return [target["expr"] for target in _targets(dashboard) if "expr" in target]


def _targets(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield from panel.get("targets", [])
        for inner in panel.get("panels", []):
            yield from inner.get("targets", [])


@dataclass(frozen=True)
class GrafanaFiles:
    """What :func:`write_grafana` wrote: dashboards by kind and the provisioning file."""

    dashboards: dict[str, Path]
    provisioning: Path
    panels: int


def write_grafana(
    cfg: MooringConfig, folder: Path, *, dashboards_path: str | None = None
) -> GrafanaFiles:
    """Write the dashboards and a provisioning file into ``folder``.

    ``dashboards_path`` is the folder as Grafana sees it (in a container, for instance);
    default: ``folder`` itself, absolute.

    Examples:
        >>> import tempfile
        >>> from mooring.config import MooringConfig
        >>> cfg = MooringConfig.model_validate(
        ...     {"project": {"name": "income"}, "data": {"train": "t.csv", "label": "y"}})
        >>> files = write_grafana(cfg, Path(tempfile.mkdtemp()))
        >>> sorted(p.name for p in files.dashboards.values())[0], files.provisioning.name
        ('mooring-income-debug.json', 'mooring-income.provisioning.yml')
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = cfg.project.name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    written = {}
    panels = 0
    for kind, data in grafana_dashboards(cfg).items():
        path = folder / f"mooring-{stem}-{kind}.json"
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written[kind] = path
        panels += sum(1 for p in data["panels"] if p.get("type") != "row")
    provider = {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"mooring-{stem}",
                "orgId": 1,
                "folder": f"mooring {name}",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {
                    "path": dashboards_path or str(folder.resolve()),
                    "foldersFromFilesStructure": False,
                },
            }
        ],
    }
    provisioning = folder / f"mooring-{stem}.provisioning.yml"
    provisioning.write_text(yaml.safe_dump(provider, sort_keys=False), encoding="utf-8")
    return GrafanaFiles(written, provisioning, panels)
