"""Rollouts simulated against the decision code, with known truth.

How often does a rollout roll back a canary that is as good as production, or promote
one that is worse, and how many monitor ticks does it take to decide? Those rates depend
on traffic, the canary's share, the margins and the error level, and no single run
shows them. :func:`simulate` replays one rollout tick by tick: requests split between
the two versions, errors, inference latency (log-normal, or a real model's shapes:
:func:`latency_shapes`; with a slowdown shared by both versions on each tick, as on a
busy machine) bucketed into the server's histogram,
and, when labels arrive, scores whose AUC is known. Each tick's counters and labels are
an :class:`~mooring.monitoring._evidence.Evidence` judged by the controller's own
guardrails (:data:`~mooring.monitoring._decide.GUARDRAILS`, through
:func:`~mooring.monitoring._decide.judge`) and
:func:`~mooring.monitoring._rollout_state.step_verdict`; the output checks, which read
logged rows, have theirs in :func:`simulate_outputs`.
:func:`summarise` runs many seeds of a scenario and reports the false rollback rate,
the false promotion rate and the ticks to a decision.

:func:`simulate_outputs` does the same for the label-free output guardrails on drifted
traffic (:class:`OutputScenario`): a population that moved (covariate and concept shift),
production trained on the old one, a canary retrained on the new one (or a skewed or
inverted one), both evaluated on the stale file of the old population; each tick's
logged rows, shaped as the prediction log holds them, go through
:func:`~mooring.monitoring._output_guardrails.output_guardrails`.

Examples:
    >>> broken = Scenario("broken", "worse", share=0.05, canary_error_rate=1.0)
    >>> simulate(broken, GuardrailsConfig(), seed=1).action
    'rollback'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from statistics import median
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mooring.contract._statistics import DatasetStatistics
from mooring.formats._metrics import LATENCY_BUCKETS, Histogram
from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._decide import GUARDRAILS, judge
from mooring.monitoring._evidence import Evidence
from mooring.monitoring._guardrail_latency import LATENCY, LatencyRule, latency_guardrail
from mooring.monitoring._guardrails import GuardrailResult, GuardrailsConfig, standard_error
from mooring.monitoring._rollout_state import step_verdict

__all__ = [
    "Judge",
    "Latency",
    "LatencyRule",
    "LivePair",
    "Outcome",
    "OutputCanary",
    "OutputJudge",
    "OutputScenario",
    "Scenario",
    "Summary",
    "latency_quantiles",
    "latency_shapes",
    "latency_truth",
    "output_judge",
    "output_scenarios",
    "sequential_judge",
    "simulate",
    "simulate_outputs",
    "summarise",
    "summarise_outputs",
]

Truth = Literal["equal", "better", "worse"]
BOUNDS = (*LATENCY_BUCKETS, math.inf)

#: Labelled scores are counted on this grid (standard normal scores shifted by the AUC).
SCORE_LOW, SCORE_STEP, SCORE_CELLS = -8.0, 1.0 / 128.0, 16 * 128

#: ``(canary, production, production over the rollout, live values, state) -> results``.
Judge = Callable[
    [VersionCounters, VersionCounters, VersionCounters, "LivePair | None", dict[str, Any]],
    list[GuardrailResult],
]
LivePair = tuple[tuple[float | None, int, float | None], tuple[float | None, int, float | None]]


@dataclass(frozen=True)
class Latency:
    """One version's inference latency per batch, before the machine's slowdown.

    Log-normal around ``median_ms`` (spread ``sigma``); a share ``slow_share`` of batches
    ``slow_factor`` times slower (a second mode: a cold path, a cache miss); a share
    ``large_share`` of batches are large ones, ``large_factor`` times slower (the batch
    sizes a version receives); and ``add_ms`` added to every batch.
    """

    median_ms: float = 8.0
    sigma: float = 0.4
    add_ms: float = 0.0
    slow_share: float = 0.0
    slow_factor: float = 1.0
    large_share: float = 0.0
    large_factor: float = 1.0

    def draw(self, n: int, slowdown: float, rng: np.random.Generator) -> np.ndarray[Any, Any]:
        """Seconds of ``n`` batches on a machine ``slowdown`` times slower than usual."""
        seconds = np.exp(rng.normal(math.log(self.median_ms * slowdown / 1000.0), self.sigma, n))
        if self.slow_share > 0.0:
            seconds[rng.random(n) < self.slow_share] *= self.slow_factor
        if self.large_share > 0.0:
            seconds[rng.random(n) < self.large_share] *= self.large_factor
        return seconds + self.add_ms / 1000.0 * slowdown


@dataclass(frozen=True)
class Scenario:
    """One kind of canary at one traffic share; ``truth`` says what a right decision is.

    ``equal`` and ``better`` canaries should be promoted, ``worse`` ones rolled back.
    Latency is log-normal around ``latency_ms`` (spread ``latency_sigma``), the canary's
    multiplied by ``canary_latency_factor``; or, for other shapes, each version's
    :class:`Latency` in ``production_latency`` and ``canary_latency``. With ``labels``
    every request is labelled (24% positives, as in Adult) and scored with the given AUCs.
    """

    name: str
    truth: Truth
    share: float
    canary_error_rate: float = 0.002
    production_error_rate: float = 0.002
    canary_latency_factor: float = 1.0
    labels: bool = False
    canary_auc: float = 0.88
    production_auc: float = 0.88
    requests_per_tick: int = 300
    latency_ms: float = 8.0
    latency_sigma: float = 0.4
    #: Spread of the slowdown both versions share on a tick (a busy, shared machine).
    machine_noise: float = 0.3
    steps: tuple[float, ...] = ()
    production_latency: Latency | None = None
    canary_latency: Latency | None = None

    def latency(self, canary: bool) -> Latency:
        """The latency shape of the canary (``canary``) or of production."""
        given = self.canary_latency if canary else self.production_latency
        if given is not None:
            return given
        factor = self.canary_latency_factor if canary else 1.0
        return Latency(self.latency_ms * factor, self.latency_sigma)


def latency_quantiles(
    scenario: Scenario, *, canary: bool, draws: int = 400_000, seed: int = 0
) -> dict[str, float]:
    """A version's true p50, p90 and p99 (ms) over the machine's slowdowns, by drawing.

    What the latency guardrail judges is what the two versions' histograms gather over
    the same ticks, so the slowdown is part of the distribution.
    """
    rng = np.random.default_rng(seed)
    slowdown = np.exp(rng.normal(0.0, scenario.machine_noise, draws))
    shape = scenario.latency(canary)
    seconds = shape.draw(draws, 1.0, rng) * slowdown
    values = np.quantile(seconds, [0.5, 0.9, 0.99]) * 1000.0
    return dict(zip(("p50", "p90", "p99"), (float(v) for v in values), strict=True))


def latency_truth(scenario: Scenario, rules: GuardrailsConfig) -> str:
    """``healthy`` when every quantile is within production's plus the margin, else
    ``harmful`` (the latency rule of :func:`~mooring.monitoring._guardrails.latency_guardrail`
    applied to the true distributions)."""
    assert rules.latency_margin is not None
    canary = latency_quantiles(scenario, canary=True)
    production = latency_quantiles(scenario, canary=False)
    for name, value in production.items():
        if canary[name] > value + max(rules.latency_margin * value, rules.latency_margin_ms):
            return "harmful"
    return "healthy"


def latency_shapes(share: float) -> list[Scenario]:
    """Latency as real models have it, each scenario's truth by the latency rule.

    A retrained model whose median is a little slower and whose tail is faster (the
    first at the sizes of a real one: medians 1.05 and 0.81 ms), a heavier tail, a
    second mode (a cold path on some batches), both versions alike with such a mode and
    with a heavy tail, a shifted mix of batch sizes (the canary receives more of the
    large batches: slower as its clients see it, not per row; within the margin, and
    beyond it), and a canary 20 ms slower on every batch. ``truth`` is what
    :func:`latency_truth` says of the two distributions (a test keeps them in step).
    """
    base = Latency(8.0, 0.4)
    real = Latency(0.81, 1.18)
    mix = Latency(2.0, 0.4, large_share=0.2, large_factor=4.0)
    shapes: list[tuple[str, Truth, Latency, Latency]] = [
        ("median +0.24 ms, tail faster (retrained)", "equal", real, Latency(1.05, 0.94)),
        ("median +1 ms, tail faster", "equal", Latency(2.0, 0.8), Latency(3.0, 0.5)),
        ("equal, heavy tail (p99 17x p50)", "equal", real, real),
        ("heavier tail (p99 +34%)", "worse", base, Latency(8.0, 0.55)),
        (
            "bimodal: 15% of batches 3x slower",
            "worse",
            base,
            Latency(8.0, 0.4, slow_share=0.15, slow_factor=3.0),
        ),
        (
            "bimodal alike (20% 4x slower on both)",
            "equal",
            Latency(8.0, 0.4, slow_share=0.2, slow_factor=4.0),
            Latency(8.0, 0.4, slow_share=0.2, slow_factor=4.0),
        ),
        (
            "batch mix 20% -> 25% large batches",
            "equal",
            mix,
            Latency(2.0, 0.4, large_share=0.25, large_factor=4.0),
        ),
        (
            "batch mix 20% -> 50% large batches",
            "worse",
            mix,
            Latency(2.0, 0.4, large_share=0.5, large_factor=4.0),
        ),
        ("20 ms slower on every batch", "worse", base, Latency(8.0, 0.4, add_ms=20.0)),
    ]
    return [
        Scenario(
            f"{name} {share:.0%}",
            truth,
            share,
            production_latency=production,
            canary_latency=canary,
        )
        for name, truth, production, canary in shapes
    ]


@dataclass
class Outcome:
    """How one simulated rollout ended: ``advance`` (or ``promote``), ``rollback`` or
    ``undecided`` after the most ticks allowed; and after how many ticks."""

    action: str
    ticks: int
    reasons: list[str] = field(default_factory=list)


class _Side:
    """One version's counters and labelled scores, accumulated tick by tick."""

    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.buckets = np.zeros(len(BOUNDS))
        # Labelled scores as counts on a fine grid, per class: the AUC of thousands of
        # labels at every tick without sorting them again (ties within a cell count half).
        self.positives = np.zeros(SCORE_CELLS)
        self.negatives = np.zeros(SCORE_CELLS)

    def counters(self) -> VersionCounters:
        latency = Histogram(BOUNDS, tuple(float(c) for c in np.cumsum(self.buckets)))
        return VersionCounters(requests=self.requests, errors=self.errors, latency=latency)

    def label(self, scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> None:
        cells = np.clip(((scores - SCORE_LOW) / SCORE_STEP).astype(np.int64), 0, SCORE_CELLS - 1)
        self.positives += np.bincount(cells[labels == 1], minlength=SCORE_CELLS)
        self.negatives += np.bincount(cells[labels == 0], minlength=SCORE_CELLS)

    def add(self, other: _Side) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.buckets += other.buckets
        self.positives += other.positives
        self.negatives += other.negatives

    def live(self) -> tuple[float | None, int, float | None]:
        positives, negatives = float(self.positives.sum()), float(self.negatives.sum())
        rows = int(positives + negatives)
        if positives == 0 or negatives == 0:
            return None, rows, None
        below = np.cumsum(self.negatives) - self.negatives
        auc = float(
            (self.positives * (below + 0.5 * self.negatives)).sum() / (positives * negatives)
        )
        return auc, rows, standard_error("auc", auc, rows, int(positives))


def _serve(
    n: int,
    error_rate: float,
    latency: Latency,
    slowdown: float,
    auc: float | None,
    rng: np.random.Generator,
) -> _Side:
    """One tick of ``n`` requests to one version."""
    tick = _Side()
    if n <= 0:
        return tick
    tick.requests = float(n)
    tick.errors = float(rng.binomial(n, min(error_rate, 1.0)))
    seconds = latency.draw(n, slowdown, rng)
    tick.buckets += np.bincount(
        np.searchsorted(LATENCY_BUCKETS, seconds, side="left"), minlength=len(BOUNDS)
    )
    if auc is not None:
        y = (rng.random(n) < 0.24).astype(np.int64)
        shift = math.sqrt(2.0) * _probit(auc)
        tick.label(rng.normal(0.0, 1.0, n) + shift * y, y)
    return tick


def _probit(p: float) -> float:
    """The standard normal quantile."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def sequential_judge(rules: GuardrailsConfig, *, latency: LatencyRule = latency_guardrail) -> Judge:
    """The live controller's guardrails (:data:`~mooring.monitoring._decide.GUARDRAILS`):
    load, errors, latency, outputs (no rows are logged here: they judge nothing) and the
    live metric (off without labels).

    ``latency`` replaces the latency rule (a benchmark weighs an older rule in its
    place), e.g. ``sequential_judge(rules, latency=rank_latency_guardrail)``.
    """
    guardrails = tuple(
        replace(LATENCY, rule=latency) if g is LATENCY and latency is not latency_guardrail else g
        for g in GUARDRAILS
    )

    def judge_tick(
        canary: VersionCounters,
        production: VersionCounters,
        rollout: VersionCounters,
        live: LivePair | None,
        state: dict[str, Any],
    ) -> list[GuardrailResult]:
        evidence = Evidence(
            canary=canary,
            production=production,
            canary_total=canary,
            production_total=production,
            rollout=rollout,
            live=live,
        )
        return judge(evidence, rules, guardrails)

    return judge_tick


def simulate(
    scenario: Scenario,
    rules: GuardrailsConfig,
    *,
    seed: int,
    judge: Judge | None = None,
    max_ticks: int = 200,
) -> Outcome:
    """One rollout of ``scenario``: one step at ``share``, or every share in ``steps``.

    Each step starts its counters afresh, as the controller does (labels count from the
    rollout's start); at 100% production answers nothing and the canary is compared
    with production over the rollout.
    """
    rng = np.random.default_rng(seed)
    judge = judge or sequential_judge(rules)
    shares = scenario.steps or (scenario.share,)
    whole = _Side()  # production over the rollout
    labelled = _Side()  # the canary over the rollout (the live metric's window)
    ticks = 0
    for share in shares:
        canary, production = _Side(), _Side()
        state: dict[str, Any] = {}
        while True:
            if ticks >= max_ticks:
                return Outcome("undecided", ticks)
            ticks += 1
            n_canary = int(rng.binomial(scenario.requests_per_tick, share))
            n_production = scenario.requests_per_tick - n_canary
            noise = math.exp(rng.normal(0.0, scenario.machine_noise))
            labels = scenario.labels
            drawn = _serve(
                n_canary,
                scenario.canary_error_rate,
                scenario.latency(canary=True),
                noise,
                scenario.canary_auc if labels else None,
                rng,
            )
            canary.add(drawn)
            labelled.add(drawn)
            answered = _serve(
                n_production,
                scenario.production_error_rate,
                scenario.latency(canary=False),
                noise,
                scenario.production_auc if labels else None,
                rng,
            )
            production.add(answered)
            whole.add(answered)
            live = (labelled.live(), whole.live()) if labels else None
            results = judge(canary.counters(), production.counters(), whole.counters(), live, state)
            verdict = step_verdict(results)
            if verdict == "fail":
                reasons = [f"{r.name}: {r.message}" for r in results if r.status == "breach"]
                return Outcome("rollback", ticks, reasons)
            if verdict == "pass":
                break
    return Outcome("promote" if scenario.steps else "advance", ticks)


@dataclass(frozen=True)
class Summary:
    """A scenario's outcomes over many seeds."""

    scenario: str
    truth: Truth
    share: float
    labels: bool
    runs: int
    false_rollback_rate: float | None
    false_promotion_rate: float | None
    undecided_rate: float
    median_ticks: float
    p95_ticks: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dict(self.__dict__)


def summarise(
    scenario: Scenario,
    rules: GuardrailsConfig,
    *,
    runs: int,
    seed: int = 0,
    judge_for: Callable[[GuardrailsConfig], Judge] | None = None,
    max_ticks: int = 200,
) -> Summary:
    """Run ``scenario`` with ``runs`` seeds; rates of wrong decisions and ticks to decide.

    A false rollback is an ``equal`` or ``better`` canary rolled back; a false promotion
    a ``worse`` one advanced or promoted. Ticks are counted to the decision (undecided
    runs count ``max_ticks``).
    """
    judge_for = judge_for or sequential_judge
    outcomes = [
        simulate(scenario, rules, seed=one, judge=judge_for(rules), max_ticks=max_ticks)
        for one in _seeds(seed, runs)
    ]
    return _summary(scenario.name, scenario.truth, scenario.share, scenario.labels, outcomes)


# ---------------------------------------------------------------- outputs on drifted traffic

#: How the canary of an :class:`OutputScenario` answers: ``retrained`` (it learnt the new
#: population's rule), ``skewed`` (the retrain, served with its first input ``skew_factor``
#: times too large: a unit or preprocessing skew) or ``inverted`` (the retrain's answers
#: turned around when served: the other class's probability logged as the positive's).
OutputCanary = Literal["retrained", "skewed", "inverted"]

#: ``(canary log, production log, canary reference, production reference, canary eval) ->
#: results``: the output guardrails one tick runs.
OutputJudge = Callable[
    [pa.Table, pa.Table, DatasetStatistics, DatasetStatistics, dict[str, Any]],
    list[GuardrailResult],
]


@dataclass(frozen=True)
class OutputScenario:
    """A rollout judged on outputs alone, on traffic from a new population, with both
    versions' evaluation-time outputs taken on the stale file of the old population.

    Inputs ``(x1, x2)`` are standard normal; the new population moves ``x1`` by
    ``covariate_shift`` (0: no drift) and labels it with the logit
    ``w1 × x1 + w2 × x2 + concept_base``, ``(w1, w2)`` the ``concept_weights`` (the old
    rule: ``(1, 1)`` and 0; anything else a concept shift). Production learnt the old
    rule, the canary the new one.
    A ``retrained`` canary is the right one to promote; a ``skewed`` or ``inverted``
    one is harmful (see :data:`OutputCanary`).

    Examples:
        >>> OutputScenario("concept", "retrained", concept_weights=(3.0, 3.0)).truth
        'better'
    """

    name: str
    canary: OutputCanary
    covariate_shift: float = 1.0
    concept_weights: tuple[float, float] = (1.0, 1.0)
    concept_base: float = 0.0
    share: float = 0.05
    requests_per_tick: int = 300
    eval_rows: int = 2000
    skew_factor: float = 10.0

    @property
    def truth(self) -> Truth:
        """What a right decision is: promote the retrain, roll back the others."""
        return "better" if self.canary == "retrained" else "worse"


def output_scenarios(share: float) -> list[OutputScenario]:
    """The drifted-traffic scenarios with a stale evaluation file, at ``share``.

    ``covariate shift``: inputs moved, the rule did not (the retrain answers like
    production). ``concept shift``: inputs moved and the rule grew stronger with a higher
    base rate (the retrain answers unlike production, but moved like it). ``concept
    shift on the moved input``: the input that moved weighs three times as much, the
    other half as much (the retrain's answers respond to the move unlike production's:
    the hardest case for a label-free reference). Then a skewed and an inverted canary
    on the concept shift, and both a retrain and a skewed canary on traffic that did
    not move.

    >>> [s.truth for s in output_scenarios(0.05)][:3]
    ['better', 'better', 'better']
    """
    concept: dict[str, Any] = {"concept_weights": (3.0, 3.0), "concept_base": 1.5}
    pct = f"{share:.0%}"
    return [
        OutputScenario(f"covariate shift, retrain {pct}", "retrained", share=share),
        OutputScenario(f"concept shift, retrain {pct}", "retrained", share=share, **concept),
        OutputScenario(
            f"concept shift on the moved input, retrain {pct}",
            "retrained",
            share=share,
            concept_weights=(3.0, 0.5),
        ),
        OutputScenario(f"concept shift, serving skew {pct}", "skewed", share=share, **concept),
        OutputScenario(f"concept shift, inverted {pct}", "inverted", share=share, **concept),
        OutputScenario(f"no drift, retrain {pct}", "retrained", share=share, covariate_shift=0.0),
        OutputScenario(f"no drift, serving skew {pct}", "skewed", share=share, covariate_shift=0.0),
    ]


def _logistic(
    x: np.ndarray[Any, Any], weights: tuple[float, float], base: float
) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-(x @ np.asarray(weights) + base))))


def _logged(x: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> pa.Table:
    """Rows shaped as the prediction log holds them: an input, the probabilities, the class."""
    probabilities = np.stack([1.0 - scores, scores], axis=1).ravel()
    offsets = pa.array(np.arange(0, probabilities.size + 1, 2, dtype=np.int32))
    return pa.table(
        {
            "x1": pa.array(x[:, 0]),
            "output.probabilities": pa.ListArray.from_arrays(offsets, pa.array(probabilities)),
            "output.classes": pa.array(np.where(scores > 0.5, "1", "0")),
        }
    )


def _auc(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float:
    ranks = np.argsort(np.argsort(scores)) + 1.0
    positives = int(labels.sum())
    negatives = labels.size - positives
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def output_judge(rules: GuardrailsConfig, *, production_reference: bool = True) -> OutputJudge:
    """The live monitor's :func:`~mooring.monitoring._output_guardrails.output_guardrails`;
    without ``production_reference`` as before production's evaluation outputs were read
    (the canary judged on its own evaluation alone)."""
    from mooring.monitoring._output_guardrails import output_guardrails

    def judge(
        canary: pa.Table,
        production: pa.Table,
        reference: DatasetStatistics,
        production_ref: DatasetStatistics,
        canary_eval: dict[str, Any],
    ) -> list[GuardrailResult]:
        return output_guardrails(
            canary,
            production,
            reference=reference,
            reference_source="the canary on the stale evaluation file",
            canary_eval=canary_eval,
            production_eval=None,
            rules=rules,
            production_reference=production_ref if production_reference else None,
            production_reference_source="production's evaluation outputs not read",
        )

    return judge


def simulate_outputs(
    scenario: OutputScenario,
    rules: GuardrailsConfig,
    *,
    seed: int,
    judge: OutputJudge | None = None,
    max_ticks: int = 60,
) -> Outcome:
    """One step at ``scenario.share`` judged on outputs, tick by tick, until it passes
    (``advance``), fails (``rollback``) or ``max_ticks`` ran out (``undecided``).

    Both evaluation references are drawn afresh from the old population (``eval_rows``
    rows); each tick's requests come from the new one and are split at ``share``.
    """
    from mooring.monitoring._baselines import prediction_statistics

    rng = np.random.default_rng(seed)
    judge = judge or output_judge(rules)
    s = scenario
    stale = rng.normal(0.0, 1.0, (s.eval_rows, 2))
    old_labels = (rng.random(s.eval_rows) < _logistic(stale, (1.0, 1.0), 0.0)).astype(np.int64)

    def production_model(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return _logistic(x, (1.0, 1.0), 0.0)

    def retrain(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return _logistic(x, s.concept_weights, s.concept_base)

    def served(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if s.canary == "skewed":
            return retrain(x * np.array([s.skew_factor, 1.0]))
        return 1.0 - retrain(x) if s.canary == "inverted" else retrain(x)

    def reference(scores: np.ndarray[Any, Any]) -> DatasetStatistics:
        classes = np.where(scores > 0.5, "1", "0")
        return prediction_statistics(
            probabilities=np.stack([1 - scores, scores], 1), classes=classes
        )

    c_ref, p_ref = reference(retrain(stale)), reference(production_model(stale))
    canary_eval = {"metrics": {"auc": _auc(retrain(stale), old_labels)}}
    c_x: list[np.ndarray[Any, Any]] = []
    p_x: list[np.ndarray[Any, Any]] = []
    for tick in range(1, max_ticks + 1):
        x = rng.normal(0.0, 1.0, (s.requests_per_tick, 2)) + np.array([s.covariate_shift, 0.0])
        to_canary = rng.random(s.requests_per_tick) < s.share
        c_x.append(x[to_canary])
        p_x.append(x[~to_canary])
        cx, px = np.concatenate(c_x), np.concatenate(p_x)
        results = judge(
            _logged(cx, served(cx)), _logged(px, production_model(px)), c_ref, p_ref, canary_eval
        )
        verdict = step_verdict(results)
        if verdict == "fail":
            reasons = [f"{r.name}: {r.message}" for r in results if r.status == "breach"]
            return Outcome("rollback", tick, reasons)
        if verdict == "pass":
            return Outcome("advance", tick)
    return Outcome("undecided", max_ticks)


def summarise_outputs(
    scenario: OutputScenario,
    rules: GuardrailsConfig,
    *,
    runs: int,
    seed: int = 0,
    judge_for: Callable[[GuardrailsConfig], OutputJudge] | None = None,
    max_ticks: int = 60,
) -> Summary:
    """:func:`summarise` for an :class:`OutputScenario` (no labels: outputs decide)."""
    judge_for = judge_for or output_judge
    outcomes = [
        simulate_outputs(scenario, rules, seed=one, judge=judge_for(rules), max_ticks=max_ticks)
        for one in _seeds(seed, runs)
    ]
    return _summary(scenario.name, scenario.truth, scenario.share, False, outcomes)


def _seeds(seed: int, runs: int) -> range:
    """The ``runs`` seeds a summary runs under ``seed``: every rule weighed on the same runs.

    >>> list(_seeds(1, 3))
    [1000003, 1000004, 1000005]
    """
    return range(seed * 1_000_003, seed * 1_000_003 + runs)


def _summary(
    name: str, truth: Truth, share: float, labels: bool, outcomes: list[Outcome]
) -> Summary:
    """The rates of wrong decisions and the ticks to decide over ``outcomes`` (see
    :func:`summarise`); the p95 is the nearest rank."""
    runs = len(outcomes)
    rolled = sum(o.action == "rollback" for o in outcomes) / runs
    promoted = sum(o.action in ("advance", "promote") for o in outcomes) / runs
    ticks = sorted(o.ticks for o in outcomes)
    good = truth != "worse"
    return Summary(
        scenario=name,
        truth=truth,
        share=share,
        labels=labels,
        runs=runs,
        false_rollback_rate=rolled if good else None,
        false_promotion_rate=None if good else promoted,
        undecided_rate=sum(o.action == "undecided" for o in outcomes) / runs,
        median_ticks=float(median(ticks)),
        p95_ticks=float(ticks[min(len(ticks) - 1, math.ceil(0.95 * len(ticks)) - 1)]),
    )
