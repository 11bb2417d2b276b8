"""``promtool test rules`` files for the generated rules: the alerts each test expects are
the ones mooring's own monitor raises on the same counter samples.

Scenarios (per objective): a quiet stretch; per page pair a burst, and the same burst
followed by a clean short window (the short window must end the alert); per ticket pair
whose burn rate is below every page pair's, a slow burn. Each starts after a clean
stretch at least as long as the longest window, and is sampled every ``step`` seconds
(the windows' greatest common divisor, so every window starts on a sample and PromQL's
``rate`` and the monitor's increases see the same samples). The burn alerts have no
``for``, so only the evaluation at a scenario's end decides it: every scenario lasts a
whole number of longest windows, and promtool evaluates once per longest window rather
than once per sample (a 3-day window sampled every 5 minutes: 3 evaluations, not 1,728).
The counter series go both to the test file and to
:func:`~mooring.monitoring._slo.evaluate_objective`; a burn rate within 2% of its
threshold nudges the scenario's share up, so that floating-point rounding never decides
a test.

Examples:
    >>> from mooring.config import MooringConfig
    >>> cfg = MooringConfig.model_validate(
    ...     {"project": {"name": "income"}, "data": {"train": "t.csv", "label": "y"}})
    >>> ruleset = rule_tests(cfg, "mooring-income.rules.yml")
    >>> for s in ruleset.scenarios[:3]:
    ...     print(s.objective, "|", s.name, "|", s.firing)
    availability | quiet | {'page': False, 'ticket': False}
    availability | burst at 14.4x budget over 1h | {'page': True, 'ticket': False}
    availability | burst at 14.4x budget over 1h, then 5m clean | {'page': False, 'ticket': False}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mooring.config import MooringConfig
from mooring.config._monitoring import BurnWindowConfig
from mooring.formats._files import atomic_write
from mooring.formats._metrics import (
    LATENCY_BUCKETS,
    REQUEST_LATENCY,
    REQUESTS,
    Histogram,
    bucket,
    total,
)
from mooring.ops._prometheus import (
    _alert_name,
    _le,
    _number,
    _Objective,
    _objectives,
    _selector,
    _severities,
    duration,
    latency_terms,
    prometheus_rules,
)

__all__ = ["RuleSet", "Scenario", "rule_tests", "write_prometheus"]

#: Requests per sample in the test scenarios (large, so shares are exact in integers).
RATE = 100_000
#: Samples per scenario beyond which the windows' common step gives way to one a minute.
MAX_STEPS = 4000


@dataclass
class Scenario:
    """One test: bad requests per sample (``step_s`` apart, ``RATE`` in all each), judged at
    the end."""

    name: str
    objective: str
    step_s: int
    bad: list[int]
    per_step: int = RATE
    firing: dict[str, bool] = field(default_factory=dict)

    @property
    def seconds(self) -> int:
        return len(self.bad) * self.step_s


def _step(windows: Sequence[BurnWindowConfig]) -> int:
    """The scenarios' sampling step: the windows' greatest common divisor in seconds, so
    every window starts on a sample and the rules' rates and the monitor's increases see
    the same samples; a minute when that would take more than ``MAX_STEPS`` samples."""
    seconds = [max(1, round(v)) for w in windows for v in (w.long, w.short)]
    step = math.gcd(*seconds)
    return step if 2 * max(seconds) / step <= MAX_STEPS else 60


def _evaluation_interval(windows: Sequence[BurnWindowConfig]) -> int:
    """promtool's evaluation interval: the longest window, in whole steps. Every scenario
    lasts a multiple of it, so its end is evaluated exactly and nothing between is."""
    step = _step(windows)
    return step * max(math.ceil(w.long / step) for w in windows)


def _series_values(increments: Iterable[int]) -> str:
    """promtool's expanding notation of a counter from per-minute increments (starting at 0)."""
    values = [0]
    for inc in increments:
        values.append(values[-1] + inc)
    segments: list[str] = []
    i = 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        segments.append(f"{values[i]}+{step}x{j - i}")
        i = j + 1
    return " ".join(segments)


def _good_bound(threshold_s: float) -> float:
    """The bucket good requests are observed in: the largest bound at or below the
    threshold (the first bucket when none is)."""
    below = [b for b in LATENCY_BUCKETS if b <= threshold_s * (1 + 1e-12)]
    return below[-1] if below else LATENCY_BUCKETS[0]


def _samples(scenario: Scenario, objective: _Objective) -> list[Any]:
    """The monitor's counter samples for the scenario, one a minute from 0."""
    from mooring.monitoring._slo import Sample

    bounds = (*LATENCY_BUCKETS, math.inf)
    good_at = _good_bound(objective.threshold_s or 1.0)
    out = [Sample(0.0, 0.0, 0.0, 0.0, 0.0)]
    requests = errors = 0.0
    good = slow = 0.0
    for step, bad in enumerate(scenario.bad, start=1):
        at = float(step * scenario.step_s)
        requests += scenario.per_step
        if objective.threshold_s is None:
            errors += bad
            out.append(Sample(at, requests, errors))
        else:
            good += scenario.per_step - bad
            slow += bad
            counts = (*(good if b >= good_at else 0.0 for b in bounds[:-1]), good + slow)
            histogram = Histogram(bounds, counts)
            out.append(Sample.from_counters(at, requests, 0.0, histogram, objective.threshold_s))
    return out


def _statuses(cfg: MooringConfig, scenario: Scenario, objective: _Objective) -> list[Any]:
    """mooring's monitor's verdicts on the scenario's samples, at its end."""
    from mooring.monitoring._slo import SampleSeries, evaluate_objective

    windows = cfg.monitoring.slo.windows
    series = SampleSeries(horizon_s=max(w.long for w in windows) * 2, max_samples=1_000_000)
    for sample in _samples(scenario, objective):
        series.add(sample)
    return evaluate_objective(
        series,
        objective=objective.name,
        target=objective.target,
        windows=windows,
        now=float(scenario.seconds),
    )


def _near_a_threshold(statuses: Sequence[Any]) -> bool:
    """A burn rate within 2% of its threshold: floating-point rounding could decide it."""
    return any(
        abs(w.burn_rate / s.threshold - 1.0) < 0.02 for s in statuses for w in (s.long, s.short)
    )


def _scenarios(cfg: MooringConfig, objective: _Objective) -> list[Scenario]:
    """A quiet stretch; per page pair a burst, and the same burst followed by a clean short
    window (the short window ends the alert); per ticket pair below every page threshold
    a slow burn. Each starts after a clean stretch at least as long as the longest window
    (longer where that makes it end on an evaluation); a share that would put a burn rate
    within 2% of a threshold is nudged up, so that rounding never decides a test.
    ``firing`` holds the monitor's verdict per severity."""
    windows = cfg.monitoring.slo.windows
    step = _step(windows)
    longest = _evaluation_interval(windows) // step  # in samples
    clean = [0] * longest
    plans: list[tuple[str, float, int, int]] = [("quiet", 0.0, 0, longest)]
    lowest_page = min((w.burn_rate for w in windows if w.severity == "page"), default=math.inf)
    for w in windows:
        span = math.ceil(w.long / step)
        if w.severity == "page":
            share = 2.0 * w.burn_rate * objective.budget
            plans.append(
                (f"burst at {_number(w.burn_rate)}x budget over {duration(w.long)}", share, span, 0)
            )
            plans.append(
                (
                    f"burst at {_number(w.burn_rate)}x budget over {duration(w.long)}, "
                    f"then {duration(w.short)} clean",
                    share,
                    span,
                    math.ceil(w.short / step) + 1,
                )
            )
        elif w.burn_rate < lowest_page:
            rate = math.sqrt(w.burn_rate * min(lowest_page, 2.0 * w.burn_rate))
            plans.append(
                (
                    f"slow burn at {_number(round(rate, 2))}x budget over {duration(w.long)}",
                    rate * objective.budget,
                    span,
                    0,
                )
            )
    out = []
    for name, share, span, after in plans:
        # The clean stretch grows so that the scenario ends on an evaluation.
        lead = clean + [0] * (-(longest + span + after) % longest)
        scenario = Scenario(name, objective.name, step, lead + [0] * span)
        for _ in range(20):
            bad = round(min(1.0, share) * RATE)
            scenario.bad = lead + [bad] * span + [0] * after
            statuses = _statuses(cfg, scenario, objective)
            if share >= 1.0 or not _near_a_threshold(statuses):
                break
            share *= 1.05
        scenario.firing = {
            severity: any(s.firing for s in statuses if s.severity == severity)
            for severity in _severities(windows)
        }
        out.append(scenario)
    return out


def _input_series(cfg: MooringConfig, scenario: Scenario, objective: _Objective) -> list[Any]:
    model = cfg.project.name
    base = {"model": model, "version": "1", "protocol": "v2"}
    if objective.threshold_s is None:
        return [
            {
                "series": f"{total(REQUESTS)}{_selector(**base, status='200')}",
                "values": _series_values(scenario.per_step - b for b in scenario.bad),
            },
            {
                "series": f"{total(REQUESTS)}{_selector(**base, status='500')}",
                "values": _series_values(scenario.bad),
            },
        ]
    good_at = _good_bound(objective.threshold_s)
    out = []
    for _, bound in latency_terms(objective.threshold_s):
        out.append(
            {
                "series": f"{bucket(REQUEST_LATENCY)}{_selector(**base, le=_le(bound))}",
                "values": _series_values(
                    (scenario.per_step - b) if bound >= good_at else 0 for b in scenario.bad
                ),
            }
        )
    out.append(
        {
            "series": f"{REQUEST_LATENCY}_count{_selector(**base)}",
            "values": _series_values(scenario.per_step for _ in scenario.bad),
        }
    )
    return out


@dataclass(frozen=True)
class RuleSet:
    """The rule file and its test file, and the scenarios the tests hold."""

    rules: dict[str, Any]
    tests: dict[str, Any]
    scenarios: list[Scenario]


def rule_tests(
    cfg: MooringConfig,
    rules_file: str,
    *,
    config_path: str = "mooring.toml",
    runbook_url: str | None = None,
) -> RuleSet:
    """The rules and a ``promtool test rules`` file for them (``rule_files: [rules_file]``).

    Each scenario expects, for every burn alert, exactly what mooring's monitor decides on
    the same counter samples.
    """
    rules = prometheus_rules(cfg, config_path=config_path, runbook_url=runbook_url)
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests: list[dict[str, Any]] = []
    scenarios: list[Scenario] = []
    for objective in _objectives(cfg):
        for scenario in _scenarios(cfg, objective):
            scenarios.append(scenario)
            checks = []
            for severity, firing in scenario.firing.items():
                rule = alerts[_alert_name(objective.name, severity)]
                expected = (
                    [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
                    if firing
                    else []
                )
                checks.append(
                    {
                        "eval_time": duration(scenario.seconds),
                        "alertname": rule["alert"],
                        "exp_alerts": expected,
                    }
                )
            tests.append(
                {
                    "name": f"{objective.name}: {scenario.name}",
                    "interval": duration(scenario.step_s),
                    "input_series": _input_series(cfg, scenario, objective),
                    "alert_rule_test": checks,
                }
            )
    return RuleSet(
        rules=rules,
        tests={
            "rule_files": [rules_file],
            "evaluation_interval": duration(_evaluation_interval(cfg.monitoring.slo.windows)),
            "tests": tests,
        },
        scenarios=scenarios,
    )


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases (each rule reads on its own); multi-line text as blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump(data: dict[str, Any], header: str) -> bytes:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return (header + text).encode("utf-8")


def write_prometheus(
    cfg: MooringConfig,
    out_dir: Path,
    *,
    config_path: str = "mooring.toml",
    runbook_url: str | None = None,
) -> tuple[Path, Path, RuleSet]:
    """Write ``mooring-<model>.rules.yml`` and its ``.rules.test.yml`` into ``out_dir``.

    Examples:
        >>> rules, tests, _ = write_prometheus(cfg, Path("ops"))  # doctest: +SKIP
        >>> rules.name  # doctest: +SKIP
        'mooring-income.rules.yml'
    """
    name = f"mooring-{cfg.project.name}"
    rules_path = out_dir / f"{name}.rules.yml"
    tests_path = out_dir / f"{name}.rules.test.yml"
    ruleset = rule_tests(cfg, rules_path.name, config_path=config_path, runbook_url=runbook_url)
    header = (
        f"# Generated by `mooring ops prometheus` from {config_path}; regenerate instead of "
        "editing.\n"
    )
    atomic_write(rules_path, _dump(ruleset.rules, header))
    atomic_write(
        tests_path,
        _dump(ruleset.tests, header + f"# Run: promtool test rules {tests_path.name}\n"),
    )
    return rules_path, tests_path, ruleset
