"""Prometheus recording and alerting rules from ``mooring.toml``, with ``promtool`` tests.

``mooring ops prometheus`` writes two files for a project's model:

* ``mooring-<model>.rules.yml``: recording rules for the service-level indicators and
  alerting rules;
* ``mooring-<model>.rules.test.yml``: unit tests for ``promtool test rules``.

**The SLO alerts are the monitor's own judgement, in PromQL.** Every ``[monitoring.slo]``
window pair becomes one clause "long window *and* short window burn at least
``burn_rate`` × the error budget" (both ``>=``, as in
:func:`mooring.monitoring._slo.evaluate_objective`); the clauses of one severity are joined
with ``or``, one alert per objective and severity. Availability counts 5xx answers in
``mooring_requests_total`` (4xx and 499 are the client's, and door refusals are not in
that counter, exactly as the monitor counts); latency is the share of
``mooring_request_latency_seconds`` above ``latency_ms``, interpolated linearly inside
the bucket that holds the threshold, as the monitor's ``Histogram.count_below`` does.
Both are judged per model, over every version, like the monitor.

**Naming follows Sloth** (the SLO rule generator most teams know): error ratios are
recorded as ``slo:sli_error:ratio_rate<window>`` for every window the pairs use, with
``slo:objective:ratio`` and ``slo:error_budget:ratio`` beside them, and alerts carry
``severity`` ``page`` or ``ticket``. The default pairs are the SRE workbook's (1 h / 5 min
at 14.4× pages, 6 h / 30 min at 6× opens a ticket), which Sloth uses as well; Sloth also
adds 1 d / 2 h and 3 d / 6 h ticket pairs, which mooring leaves to ``[monitoring.slo]``.
Instead of Sloth's ``sloth_*`` labels, series carry ``model`` and ``slo``.

**Other alerts** (each labelled ``severity``, ``model`` and, where the metric has it,
``version``): a version failing to load, the server serving a fallback version, the
registry unreadable, prediction-log rows dropped, a contract-violation spike (an input's
violations per served row above the drift thresholds ``out_of_range`` / ``unseen``), a
drift verdict, and an idle canary (a canary weight with a loaded version that answered
nothing for 30 minutes while the model had traffic). Annotations carry what happened, the
rollback command for this project and, with ``--runbook-url``, a ``runbook_url``.

**The tests** (``ops/_rule_tests.py``) check the rules against the monitor: each
scenario's counter series (a clean stretch, then a 5xx burst or a slow burn) is also fed
to :func:`~mooring.monitoring._slo.evaluate_objective`, and the alerts the test expects
are exactly those the monitor fires on the same samples; ``promtool`` then evaluates the
rules on those series and fails on any difference.

Examples:
    >>> from mooring.config import MooringConfig
    >>> cfg = MooringConfig.model_validate(
    ...     {"project": {"name": "income"}, "data": {"train": "t.csv", "label": "y"}})
    >>> rules = prometheus_rules(cfg)
    >>> [g["name"] for g in rules["groups"]]
    ['mooring-income']
    >>> duration(3600), duration(90), duration(1.5)
    ('1h', '90s', '1500ms')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mooring.config import MooringConfig
from mooring.config._monitoring import BurnWindowConfig
from mooring.formats._metrics import (
    BATCH_SIZE,
    CANARY_WEIGHT,
    CONTRACT_VIOLATIONS,
    DRIFT_STATUS,
    LATENCY_BUCKETS,
    MODEL_FALLBACK,
    MODEL_LOAD_FAILURES,
    MODEL_LOADED,
    PREDICTION_LOG_DROPPED,
    REGISTRY_UP,
    REQUEST_LATENCY,
    REQUESTS,
    bucket,
    sum_of,
    total,
)

__all__ = [
    "availability_ratio",
    "duration",
    "latency_ratio",
    "latency_terms",
    "prometheus_rules",
    "rollback_command",
]

SLI = "slo:sli_error:ratio_rate"
OBJECTIVE = "slo:objective:ratio"
BUDGET = "slo:error_budget:ratio"
#: Per-version series the dashboards read (5-minute rates).
VERSION_REQUESTS = "mooring:requests:rate5m"
VERSION_ERRORS = "mooring:errors:ratio_rate5m"
VERSION_P99 = "mooring:request_latency_seconds:p99_rate5m"
IDLE_CANARY = "30m"


def duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` (the largest whole unit).

    >>> duration(21600), duration(300), duration(86400 * 3)
    ('6h', '5m', '3d')
    """
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r} seconds")
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(**labels: str) -> str:
    """``{a="x",b=~"y"}``: a key ending in ``_re`` is a regex match."""
    parts = []
    for key, value in labels.items():
        if key.endswith("_re"):
            parts.append(f"{key[:-3]}=~{_quote(value)}")
        else:
            parts.append(f"{key}={_quote(value)}")
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{value:g}"


def _le(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (``0.25``, ``1.0``, ``+Inf``).

    >>> _le(1.0), _le(0.0001)
    ('1.0', '0.0001')
    """
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def latency_terms(threshold_s: float) -> list[tuple[float, float]]:
    """``(weight, bucket bound)`` pairs whose weighted bucket counts are the requests at or
    below ``threshold_s``, interpolated inside its bucket like ``Histogram.count_below``.

    >>> latency_terms(0.25)
    [(1.0, 0.25)]
    >>> [(round(w, 3), b) for w, b in latency_terms(0.2)]
    [(0.333, 0.1), (0.667, 0.25)]
    """
    lower = 0.0
    for bound in LATENCY_BUCKETS:
        if math.isclose(threshold_s, bound, rel_tol=1e-12):
            return [(1.0, bound)]
        if threshold_s < bound:
            share = (threshold_s - lower) / (bound - lower)
            terms = [(share, bound)]
            if lower > 0:
                terms.insert(0, (1.0 - share, lower))
            return terms
        lower = bound
    return [(1.0, LATENCY_BUCKETS[-1])]


def _rate(metric: str, selector: str, window: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{window}]))"


def availability_ratio(model: str, window: str, by: str = "model") -> str:
    """PromQL: the share of 5xx answers over ``window`` (0 when there were none)."""
    every = _rate(total(REQUESTS), _selector(model=model), window, by)
    bad = _rate(total(REQUESTS), _selector(model=model, status_re="5.."), window, by)
    return f"({bad} or on ({by}) (0 * {every})) / {every}"


def latency_ratio(model: str, window: str, threshold_s: float, by: str = "model") -> str:
    """PromQL: the share of requests slower than ``threshold_s`` over ``window``."""
    good = " + ".join(
        ("" if weight == 1.0 else f"{_number(weight)} * ")
        + _rate(bucket(REQUEST_LATENCY), _selector(model=model, le=_le(bound)), window, by)
        for weight, bound in latency_terms(threshold_s)
    )
    count = _rate(f"{REQUEST_LATENCY}_count", _selector(model=model), window, by)
    return f"1 - ({good}) / {count}"


@dataclass(frozen=True)
class _Objective:
    name: str
    target: float
    threshold_s: float | None = None

    @property
    def budget(self) -> float:
        return round(1.0 - self.target, 12)

    def ratio(self, model: str, window: str) -> str:
        if self.threshold_s is None:
            return availability_ratio(model, window)
        return latency_ratio(model, window, self.threshold_s)


def _objectives(cfg: MooringConfig) -> list[_Objective]:
    slo = cfg.monitoring.slo
    out = []
    if slo.availability is not None:
        out.append(_Objective("availability", slo.availability))
    if slo.latency_ms is not None:
        out.append(_Objective("latency", slo.latency_target, slo.latency_ms / 1000.0))
    return out


def _severities(windows: Sequence[BurnWindowConfig]) -> list[str]:
    return sorted({w.severity for w in windows}, key=lambda s: (s != "page", s))


def _alert_name(objective: str, severity: str) -> str:
    return f"Mooring{objective.capitalize()}Burn{severity.capitalize()}"


def rollback_command(cfg: MooringConfig, config_path: str, reason: str) -> str:
    """The rollback command for this project (shell-quoted)."""
    import shlex

    return (
        f"mooring models rollback {shlex.quote(cfg.project.name)} -c {shlex.quote(config_path)} "
        f"-r {shlex.quote(reason)}"
    )


def _annotations(
    cfg: MooringConfig,
    config_path: str,
    runbook_url: str | None,
    alert: str,
    summary: str,
    text: str,
) -> dict[str, str]:
    out = {
        "summary": summary,
        "description": text,
        "rollback": rollback_command(cfg, config_path, f"alert {alert}"),
    }
    if runbook_url:
        out["runbook_url"] = runbook_url
    return out


def _slo_alerts(
    cfg: MooringConfig, config_path: str, runbook_url: str | None
) -> list[dict[str, Any]]:
    model = cfg.project.name
    windows = cfg.monitoring.slo.windows
    rules = []
    for objective in _objectives(cfg):
        for severity in _severities(windows):
            clauses = []
            said = []
            for w in (w for w in windows if w.severity == severity):
                limit = f"({_number(w.burn_rate)} * {_number(objective.budget)})"
                sel = _selector(model=model, slo=objective.name)
                clauses.append(
                    f"({SLI}{duration(w.long)}{sel} >= {limit}"
                    f" and {SLI}{duration(w.short)}{sel} >= {limit})"
                )
                said.append(
                    f"{_number(w.burn_rate)}x over {duration(w.long)} and {duration(w.short)}"
                )
            what = (
                "5xx answers"
                if objective.threshold_s is None
                else f"requests slower than {_number(objective.threshold_s * 1000)} ms"
            )
            summary = (
                f"{model}: {objective.name} error budget burning ({severity}, {' or '.join(said)})"
            )
            text = (
                f"The share of {what} of model {model} spends the {objective.name} error "
                f"budget (target {_number(objective.target)}) at least "
                f"{' or '.join(said)} the sustainable rate. mooring's monitor raises "
                f"slo_{objective.name}_{severity} on the same samples."
            )
            rules.append(
                {
                    "alert": _alert_name(objective.name, severity),
                    "expr": "\n  or\n".join(clauses),
                    "labels": {
                        "severity": severity,
                        "model": model,
                        "slo": objective.name,
                        "mooring_alert": f"slo_{objective.name}_{severity}",
                    },
                    "annotations": _annotations(
                        cfg,
                        config_path,
                        runbook_url,
                        _alert_name(objective.name, severity),
                        summary,
                        text,
                    ),
                }
            )
    return rules


def _other_alerts(
    cfg: MooringConfig, config_path: str, runbook_url: str | None
) -> list[dict[str, Any]]:
    model = cfg.project.name
    m = _selector(model=model)

    def alert(
        name: str, expr: str, summary: str, text: str, *, severity: str = "ticket", for_: str = ""
    ) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": name, "expr": expr}
        if for_:
            rule["for"] = for_
        rule["labels"] = {"severity": severity, "model": model}
        rule["annotations"] = _annotations(cfg, config_path, runbook_url, name, summary, text)
        return rule

    rules = [
        alert(
            "MooringModelLoadFailed",
            f"sum by (model, version) (increase({total(MODEL_LOAD_FAILURES)}{m}[10m])) > 0",
            f"{model}: version {{{{ $labels.version }}}} failed to load",
            "A version failed to load, verify or warm up in the last 10 minutes; the server "
            "keeps serving what it had. See its error in GET /admin/status.",
        ),
        alert(
            "MooringServingFallback",
            f"max by (model) ({MODEL_FALLBACK}{m}) > 0",
            f"{model}: serving a fallback version",
            "The deployed production version cannot be served; an earlier version that "
            "verifies answers instead (GET /healthz names both and why).",
            for_="1m",
        ),
        alert(
            "MooringRegistryUnavailable",
            f"max by (model) ({REGISTRY_UP}{m}) == 0",
            f"{model}: registry unavailable",
            "No server can read the deployment record; loaded versions keep serving but "
            "deployments and rollbacks do not take effect.",
            for_="5m",
        ),
        alert(
            "MooringPredictionLogDropping",
            f"sum by (instance) (increase({total(PREDICTION_LOG_DROPPED)}[15m])) > 0",
            f"{model}: prediction log rows dropped",
            "The prediction log dropped rows (buffer full or a failed write): drift checks "
            "and live metrics see less traffic than was served.",
        ),
        alert(
            "MooringDrift",
            f"max by (model, version) ({DRIFT_STATUS}{m}) == 1",
            f"{model}: version {{{{ $labels.version }}}} input drift",
            "The last drift check flagged features of this version's traffic against its "
            "training data (mooring status names them).",
        ),
        alert(
            "MooringCanaryIdle",
            f"(max by (model, version) ({MODEL_LOADED}{m} == 1)\n"
            f"  unless on (model, version) ({_rate(total(REQUESTS), m, IDLE_CANARY, 'model, version')} > 0))\n"  # noqa: E501
            f"and on (model) (max by (model) ({CANARY_WEIGHT}{m}) > 0)\n"
            f"and on (model) ({_rate(total(REQUESTS), m, IDLE_CANARY, 'model')} > 0)",
            f"{model}: version {{{{ $labels.version }}}} loaded but idle under a canary weight",
            f"A canary weight is set, the model has traffic, but this loaded version answered "
            f"nothing for {IDLE_CANARY}: the rollout cannot be judged.",
            for_="5m",
        ),
    ]
    thresholds = cfg.monitoring.thresholds
    rows = f"sum by (model, version) (rate({sum_of(BATCH_SIZE)}{m}[15m]))"
    for kind, share in (
        ("out_of_range", thresholds.out_of_range),
        ("unseen_category", thresholds.unseen),
    ):
        if share is None:
            continue
        violations = _selector(model=model, kind=kind)
        rules.append(
            alert(
                "MooringContractViolations",
                f"sum by (model, version, input, kind) "
                f"(rate({total(CONTRACT_VIOLATIONS)}{violations}[15m]))\n"
                f"  / on (model, version) group_left {rows}\n  > {_number(share)}",
                f"{model}: {kind.replace('_', ' ')} values in input "
                f"{{{{ $labels.input }}}} (version {{{{ $labels.version }}}})",
                f"More than {_number(share * 100)}% of served rows break the contract on this "
                f"input over 15 minutes (the drift threshold for {kind.replace('_', ' ')}).",
                for_="5m",
            )
        )
    return rules


def prometheus_rules(
    cfg: MooringConfig, *, config_path: str = "mooring.toml", runbook_url: str | None = None
) -> dict[str, Any]:
    """The rule file's content (a mapping, dumped as YAML by ``rule_tests.write_prometheus``).

    ``config_path`` is the path written into each alert's rollback command.
    """
    model = cfg.project.name
    windows = sorted(
        {w.long for w in cfg.monitoring.slo.windows}
        | {w.short for w in cfg.monitoring.slo.windows}
        | {300.0}
    )
    m = _selector(model=model)
    recording: list[dict[str, Any]] = []
    for objective in _objectives(cfg):
        labels = {"model": model, "slo": objective.name}
        recording.append(
            {"record": OBJECTIVE, "expr": f"vector({_number(objective.target)})", "labels": labels}
        )
        recording.append(
            {"record": BUDGET, "expr": f"vector({_number(objective.budget)})", "labels": labels}
        )
        for seconds in windows:
            window = duration(seconds)
            recording.append(
                {
                    "record": f"{SLI}{window}",
                    "expr": objective.ratio(model, window),
                    "labels": {"slo": objective.name},
                }
            )
    recording += [
        {"record": VERSION_REQUESTS, "expr": _rate(total(REQUESTS), m, "5m", "model, version")},
        {"record": VERSION_ERRORS, "expr": availability_ratio(model, "5m", "model, version")},
        {
            "record": VERSION_P99,
            "expr": f"histogram_quantile(0.99, "
            f"{_rate(bucket(REQUEST_LATENCY), m, '5m', 'model, version, le')})",
        },
    ]
    # One group: its rules run in order at one evaluation time, so the alerts read the
    # ratios recorded at that same time (in a group of their own they would lag by one
    # evaluation interval, and could disagree with the monitor for that long).
    alerts = _slo_alerts(cfg, config_path, runbook_url) + _other_alerts(
        cfg, config_path, runbook_url
    )
    return {"groups": [{"name": f"mooring-{model}", "rules": recording + alerts}]}
