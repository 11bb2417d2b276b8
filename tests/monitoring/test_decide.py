"""The rollout decision alone (mooring.monitoring._decide): steps, evidence and a clock of
the test's own, in memory, with no registry, server or state file.

Worse evidence (more canary errors, a slower canary, a worse live metric) never turns a
hold or a rollback into an advance; a canary reaches 100% only with no guardrail failing,
and, but for the end-of-horizon policy bias_to_action, every one passing; equal inputs
give equal decisions and are left as they were; the decision imports and calls neither
the registry, the scraping, the clock, files nor logging.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import GuardrailsConfig, RolloutConfig
from mooring.formats._metrics import LATENCY_BUCKETS, Histogram
from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._decide import GUARDRAILS, Decision, current_step, decide
from mooring.monitoring._evidence import Evidence
from mooring.monitoring._guardrail_live import LiveUnread
from mooring.monitoring._guardrails import standard_error
from mooring.monitoring._rollout_state import RolloutStep, step_verdict
from mooring.monitoring._simulation import sequential_judge
from mooring.registry import Deployment

ROOT = Path(__file__).resolve().parents[2]
BOUNDS = (*LATENCY_BUCKETS, math.inf)
START = 1_700_000_000.0
MOVES = ("advance", "promote")


def _histogram(batches: int, median_ms: float, sigma: float = 0.4) -> Histogram:
    """Log-normal batch times around ``median_ms``, counted into the server's buckets."""
    dist = NormalDist(math.log(median_ms / 1e3), sigma)
    cumulative = tuple(
        float(round(batches * (dist.cdf(math.log(b)) if math.isfinite(b) else 1.0))) for b in BOUNDS
    )
    return Histogram(BOUNDS, cumulative)


def _version(requests: int, errors: int, median_ms: float) -> VersionCounters:
    latency = _histogram(requests, median_ms) if requests > 0 else None
    return VersionCounters(requests=float(requests), errors=float(errors), latency=latency)


def _auc(value: float, labels: int) -> tuple[float | None, int, float | None]:
    return value, labels, standard_error("auc", value, labels, labels // 4)


@st.composite
def _rules(draw: st.DrawFn) -> RolloutConfig:
    steps = sorted(draw(st.sets(st.sampled_from([1, 5, 10, 25, 50, 100]), min_size=1, max_size=4)))
    return RolloutConfig(
        steps=steps,
        policy=draw(st.sampled_from(["bias_to_action", "strict", "rollback"])),
        max_hold=draw(st.sampled_from([60.0, 600.0, 1800.0])),
        max_hold_requests=draw(st.sampled_from([None, 500, 5000])),
        min_requests=draw(st.sampled_from([0, 0, 200])),
        min_step_duration=draw(st.sampled_from([0.0, 0.0, 300.0, 3600.0])),
        sample_ratio_tolerance=draw(st.sampled_from([None, 0.2])),
        guardrails=GuardrailsConfig(
            live_metric_drop=draw(st.sampled_from([None, 0.02])),
            require_labels=draw(st.booleans()),
        ),
    )


@dataclass(frozen=True)
class Case:
    """A step under way, its deployment, one tick's evidence, the rules and the time; and
    the canary's median batch time the evidence was drawn with."""

    step: RolloutStep
    dep: Deployment
    evidence: Evidence
    rules: RolloutConfig
    now: float
    median_ms: float

    def action(self, evidence: Evidence | None = None) -> str:
        decision, _ = decide(self.step, self.dep, evidence or self.evidence, self.rules, self.now)
        return decision.action


@st.composite
def _case(draw: st.DrawFn) -> Case:
    """A step under way, its deployment, one tick's evidence, the rules and the time."""
    rules = draw(_rules())
    weight = draw(st.sampled_from([0, *rules.steps]))
    dep = Deployment("income", production=1, canary=2, canary_weight=weight, revision=7)
    step, _ = current_step(dep, None, START)
    if draw(st.booleans()):
        step = replace(step, split_from={"canary": 0.0, "production": 0.0})
    step = replace(step, ticks=draw(st.integers(0, 50)))
    c_requests = draw(st.integers(0, 4000))
    p_requests = draw(st.integers(0, 40000))
    median_ms = draw(st.sampled_from([4.0, 7.0, 8.0, 9.0, 12.0, 30.0]))
    canary = _version(c_requests, draw(st.integers(0, c_requests)), median_ms)
    production = _version(p_requests, draw(st.integers(0, p_requests // 50)), 8.0)
    live: tuple[tuple[float | None, int, float | None], ...] | LiveUnread | None = None
    kind = draw(st.sampled_from(["none", "labels", "unread"]))
    if kind == "labels":
        labels = draw(st.integers(0, 5000))
        live = (_auc(draw(st.floats(0.6, 0.95)), labels), _auc(0.85, labels))
    elif kind == "unread":
        live = LiveUnread("no label feedback yet", absent=draw(st.booleans()))
    evidence = Evidence(
        canary=canary,
        production=production,
        canary_total=replace(canary, load_failures=float(draw(st.sampled_from([0, 0, 0, 2])))),
        production_total=production,
        rollout=production,
        live=live,  # type: ignore[arg-type]
    )
    now = START + draw(st.floats(0.0, 8000.0))
    return Case(step, dep, evidence, rules, now, median_ms)


def _worse_errors(evidence: Evidence, more: int) -> Evidence:
    c = evidence.canary
    errors = min(c.errors + more, c.requests)
    return replace(
        evidence,
        canary=replace(c, errors=errors),
        canary_total=replace(evidence.canary_total, errors=errors),
    )


def _slower(case: Case, factor: float) -> Evidence:
    evidence, c = case.evidence, case.evidence.canary
    if c.latency is None:
        return evidence
    latency = _histogram(int(c.requests), case.median_ms * factor)
    return replace(
        evidence,
        canary=replace(c, latency=latency),
        canary_total=replace(evidence.canary_total, latency=latency),
    )


def _worse_live(evidence: Evidence, drop: float) -> Evidence:
    live = evidence.live
    if not isinstance(live, tuple):
        return evidence
    (value, labels, _), production = live
    if value is None:
        return evidence
    return replace(evidence, live=(_auc(max(value - drop, 0.5), labels), production))


_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(_case(), st.integers(1, 400))
def test_more_canary_errors_never_turn_a_hold_or_rollback_into_an_advance(
    case: Case, more: int
) -> None:
    before, after = case.action(), case.action(_worse_errors(case.evidence, more))
    if before not in MOVES:
        assert after not in MOVES, (before, after)
    if before == "rollback":
        assert after == "rollback"


@_FAST
@given(_case(), st.floats(1.05, 4.0))
def test_a_slower_canary_never_turns_a_hold_or_rollback_into_an_advance(
    case: Case, factor: float
) -> None:
    before, after = case.action(), case.action(_slower(case, factor))
    if before not in MOVES:
        assert after not in MOVES, (before, after)


@_FAST
@given(_case(), st.floats(0.01, 0.3))
def test_a_worse_live_metric_never_turns_a_hold_or_rollback_into_an_advance(
    case: Case, drop: float
) -> None:
    before, after = case.action(), case.action(_worse_live(case.evidence, drop))
    if before not in MOVES:
        assert after not in MOVES, (before, after)


@_FAST
@given(_case())
def test_a_canary_reaches_production_only_when_no_guardrail_fails(
    case: Case,
) -> None:
    step, dep, evidence, rules, now = case.step, case.dep, case.evidence, case.rules, case.now
    decision, after = decide(step, dep, evidence, rules, now)
    record = decision.record
    if record.action in MOVES:
        assert step_verdict(record.guardrails) != "fail"
        assert not record.numbers["sample_ratio"]["mismatch"]
        # Only the end-of-horizon policy moves a step on with guardrails still undecided.
        if (
            step_verdict(record.guardrails) != "pass"
            or evidence.canary.requests < rules.min_requests
        ):
            # A staged canary (0%) starts at the first step with nothing to judge yet.
            staged = dep.canary_weight == 0 and record.to_weight == rules.steps[0]
            assert staged or rules.policy == "bias_to_action", record.reasons
            assert staged or "policy = bias_to_action" in record.reasons[0]
            assert staged or now - step.started_at >= rules.min_step_duration
    if record.action == "promote":
        assert after is None and record.to_weight == 100
        assert not [s for s in rules.steps if s > dep.canary_weight]
    if record.action == "advance":
        assert after is not None and after.weight == record.to_weight
        assert after.weight in rules.steps and after.started_at == now
        assert after.revision == dep.revision + 1


@_FAST
@given(_case())
def test_equal_inputs_give_equal_decisions_and_are_left_unchanged(
    case: Case,
) -> None:
    step, dep, evidence, rules, now = case.step, case.dep, case.evidence, case.rules, case.now
    kept = copy.deepcopy((step, dep, evidence, rules, now))
    first = decide(step, dep, evidence, rules, now)
    second = decide(*copy.deepcopy(kept))
    assert (step, dep, evidence, rules, now) == kept
    assert _seen(first) == _seen(second)


def _seen(out: tuple[Decision, RolloutStep | None]) -> str:
    """A decision as a string (NaN equals itself there, as it does in the state file)."""
    decision, after = out
    return repr(
        (decision.record.to_dict(), decision.change, decision.notice, decision.judged, after)
    )


def test_an_undecided_step_advances_at_its_horizon_no_sooner_than_one_that_passes() -> None:
    """With min_step_duration past max_hold, a canary whose errors pass is held to it; one
    with more errors, undecided, is no reason to advance sooner (it was, at the horizon)."""
    dep = Deployment("income", production=1, canary=2, canary_weight=5, revision=7)
    step, _ = current_step(dep, None, START)
    rules = RolloutConfig(min_step_duration=3600.0, max_hold=600.0)
    production = _version(7600, 4, 8.0)

    def action(errors: int, at: float) -> str:
        canary = _version(400, errors, 8.0)
        seen = Evidence(canary, production, canary, production, production)
        return decide(step, dep, seen, rules, START + at)[0].action

    assert [action(e, 1000.0) for e in (4, 5, 6)] == ["hold", "insufficient_data", "rollback"]
    assert [action(e, 3600.0) for e in (4, 5)] == ["advance", "advance"]


def test_the_step_judged_counts_the_tick_and_where_the_split_is_counted_from() -> None:
    dep = Deployment("income", production=1, canary=2, canary_weight=5, revision=3)
    step, fresh = current_step(dep, None, START)
    assert fresh and step.ticks == 0 and step.split_from is None
    canary = _version(50, 0, 8.0)
    seen = Evidence(
        canary, _version(950, 1, 8.0), replace(canary, requests=70.0), _version(1200, 1, 8.0)
    )
    decision, after = decide(step, dep, seen, RolloutConfig(), START + 30)
    assert decision.action == "insufficient_data" and after is decision.judged
    assert after.ticks == 1 and after.split_from == {"canary": 70.0, "production": 1200.0}
    assert current_step(dep, after, START + 60) == (after, False)
    with pytest.raises(ValueError, match="judged against deployment canary=None"):
        decide(step, replace(dep, canary=None), seen, RolloutConfig(), START)


def test_the_simulation_runs_the_controllers_guardrails() -> None:
    names = [g.name for g in GUARDRAILS]
    assert names == ["load", "errors", "latency", "outputs", "live_metric"]
    canary, production = _version(300, 0, 8.0), _version(5700, 3, 8.0)
    live = (_auc(0.85, 2000), _auc(0.85, 2000))
    rules = GuardrailsConfig(live_metric_drop=0.02)
    results = sequential_judge(rules)(canary, production, production, live, {})
    # The output checks read logged rows, which a simulated tick has none of.
    assert [r.name for r in results] == ["load", "errors", "latency", "live_metric"]


_PURE = """
import importlib.abc, logging, socket, sys, time, types, builtins, io
from pathlib import Path

REFUSED = ("mooring.registry", "mooring.monitoring._scrape", "mooring.monitoring._rollout",
           "mooring.monitoring._feedback", "mooring.monitoring._live_source",
           "mooring.monitoring._state", "mooring.monitoring._alerts", "urllib.request",
           "http.client", "sqlalchemy", "tensorflow")


def refused_name(name):
    return any(name == r or name.startswith(r + ".") for r in REFUSED)


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if refused_name(fullname):
            raise ModuleNotFoundError(f"refused: {fullname}", name=fullname)
        return None


sys.meta_path.insert(0, Refuse())
import mooring

# The package's face imports the controller; the decision is loaded without it.
face = types.ModuleType("mooring.monitoring")
face.__path__ = [str(Path(mooring.__file__).parent / "monitoring")]
sys.modules["mooring.monitoring"] = face

from dataclasses import dataclass
from mooring.config._monitoring import RolloutConfig
from mooring.formats._metrics import LATENCY_BUCKETS, Histogram
from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._decide import current_step, decide
from mooring.monitoring._evidence import Evidence


def refused(*args, **kwargs):
    raise AssertionError("the decision reached outside itself")


class Loud(logging.Handler):
    def emit(self, record):
        raise AssertionError(f"the decision logged: {record.getMessage()}")


time.time = time.monotonic = time.perf_counter = time.time_ns = refused
builtins.open = io.open = socket.socket = refused
logging.getLogger().addHandler(Loud())
logging.getLogger().setLevel(logging.DEBUG)


@dataclass(frozen=True)
class Deployment:  # the registry's record, which cannot be imported here
    name: str
    production: int | None
    canary: int | None
    canary_weight: int
    revision: int
    updated_at: str | None = None


bounds = (*LATENCY_BUCKETS, float("inf"))


def counters(requests, errors, fast):
    cut = 12 if fast else 30
    counts = tuple(float(requests if i >= cut else 0) for i in range(len(bounds)))
    return VersionCounters(requests=requests, errors=errors, latency=Histogram(bounds, counts))


actions = []
cases = ((5, counters(400, 0, True)), (5, counters(400, 300, False)), (0, counters(0, 0, True)))
for weight, canary in cases:
    dep = Deployment("income", 1, 2, weight, 3, "2026-01-01T00:00:00+00:00")
    step, _ = current_step(dep, None, 1.7e9)
    production = counters(7600, 4, True)
    seen = Evidence(canary, production, canary, production, production)
    decision, after = decide(step, dep, seen, RolloutConfig(), 1.7e9 + 600)
    actions.append(decision.action)
print(" ".join(actions))
print(sorted(m for m in sys.modules if refused_name(m)))
"""


def test_the_decision_runs_without_registry_scraping_clock_files_or_logging(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PURE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:2] == ["advance rollback advance", "[]"]
