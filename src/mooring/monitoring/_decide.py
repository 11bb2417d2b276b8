"""The rollout's decision: a pure function of the step, the deployment and the evidence.

:func:`decide` takes the step under way, the deployment record, one tick's
:class:`~mooring.monitoring._evidence.Evidence`, the ``[rollout]`` rules and the time,
and returns what to do and the step that follows; it reads no registry, metrics, clock
or file and logs nothing, so that the controller
(:class:`~mooring.monitoring._rollout.RolloutController`, which gathers the evidence
and applies the decision) and the simulation (:mod:`mooring.monitoring._simulation`)
run the same decisions, and tests drive it in memory. :data:`GUARDRAILS` is the one
ordered tuple of guardrails both run, through :func:`judge`.

Each guardrail is *pass*, *fail* or *undecided*:

- **errors**, **latency** and the **live metric** are sequential tests
  (:mod:`mooring.monitoring._sequential`): intervals valid at every look, so the step
  acts as soon as the evidence allows and no fixed sample floor holds it back. Errors
  are 5xx answers and 4xx ones beyond production's rate (a canary that rejects what
  production answers is broken); any increase beyond the interval fails, also when
  production has no errors. Latency compares p50, p90 and p99 of the two histograms,
  each with production's plus a margin. The live metric (labels) fails when worse than
  production beyond ``live_metric_drop``; a conclusive win carries guardrails undecided;
- **load**: a canary version the server failed to load;
- **outputs** (:mod:`mooring.monitoring._output_guardrails`): NaN or constant answers
  (``broken``), the canary's live outputs against its own evaluation-time outputs
  (``outputs``), its evaluation metric against production's on the same data
  (``validated``), and canary vs production (``divergence``: reported, decisive only
  when configured). A live metric that passes overrides them: labels decide.

One failing guardrail rolls the canary back in the same tick (canary removed, weight 0).
A step advances when every enabled guardrail passes (and ``min_requests`` and
``min_step_duration``, both off by default, are met; ``min_step_duration`` holds the
end-of-horizon advance too); after the last step the canary is promoted. No traffic
and no labels are no evidence: such a guardrail stays undecided, never failing or
passing for lack of data. An undecided step has a budget (``max_hold``, and
``max_hold_requests`` if set); when it is spent the end-of-horizon ``policy`` decides:
``bias_to_action`` (the default: advance, or promote at the last step, when no
guardrail was shown harmful and the canary got traffic at the step), ``strict`` (hold
and raise a ``rollout_stalled`` alert) or ``rollback``; the audit reason holds the
undecided guardrails' numbers.

**The split**: every tick compares the canary's share of the step's requests with its
weight (:func:`~mooring.monitoring._sample_ratio.sample_ratio`, a sequential test on the
counts); a sample-ratio mismatch holds the step (never advances or promotes it) and
raises a ``sample_ratio_mismatch`` alert; a guardrail shown failing still rolls back.

Examples:
    >>> [g.name for g in GUARDRAILS]
    ['load', 'errors', 'latency', 'outputs', 'live_metric']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from mooring.monitoring._evidence import Evidence
from mooring.monitoring._guardrail_errors import ERRORS
from mooring.monitoring._guardrail_latency import LATENCY
from mooring.monitoring._guardrail_live import LIVE_METRIC
from mooring.monitoring._guardrail_load import LOAD
from mooring.monitoring._guardrails import Guardrail, GuardrailResult, GuardrailsConfig
from mooring.monitoring._output_guardrails import OUTPUTS
from mooring.monitoring._rollout_state import (
    Action,
    RolloutConfig,
    RolloutDecision,
    RolloutStep,
    iso_time,
    labels_decide,
    parse_time,
    step_verdict,
)
from mooring.monitoring._sample_ratio import SampleRatio, sample_ratio

if TYPE_CHECKING:
    from mooring.registry import Deployment

__all__ = ["GUARDRAILS", "Decision", "Notice", "current_step", "decide", "judge"]

#: The guardrails of every tick, in the order their results are reported.
GUARDRAILS: tuple[Guardrail, ...] = (LOAD, ERRORS, LATENCY, OUTPUTS, LIVE_METRIC)


@dataclass(frozen=True, slots=True)
class Notice:
    """An alert a decision raises once applied (the controller sends it)."""

    kind: str
    severity: Literal["info", "ticket", "page"]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a tick decided: the ``record`` users see, the registry's ``change`` reason
    (advance, promote, rollback), the ``notice`` to raise, and the step as this tick
    leaves it (``judged``: kept when the registry refuses the change)."""

    record: RolloutDecision
    judged: RolloutStep
    change: str | None = None
    notice: Notice | None = None

    @property
    def action(self) -> Action:
        """``hold``, ``advance``, ``promote``, ``rollback`` or ``insufficient_data``."""
        return self.record.action


def judge(
    evidence: Evidence, rules: GuardrailsConfig, guardrails: tuple[Guardrail, ...] = GUARDRAILS
) -> list[GuardrailResult]:
    """Every guardrail's results on ``evidence``, in order, with the labels deciding what
    they judge better (:func:`~mooring.monitoring._rollout_state.labels_decide`)."""
    return labels_decide([r for g in guardrails for r in g.judge(evidence, rules)])


def current_step(
    dep: Deployment, stored: RolloutStep | None, now: float
) -> tuple[RolloutStep, bool]:
    """The step under way for ``dep``'s canary; True when it is new (started now or unknown).

    The stored step carries on while canary, revision and weight are the same; a new
    weight of the same canary starts a step now; without state for this canary (first
    sight, or a lost state file) the step began when the deployment record last changed.
    """
    if dep.canary is None:
        raise ValueError(f"deployment of {dep.name!r} has no canary (canary=None): no step")
    if (
        stored is not None
        and stored.canary == dep.canary
        and stored.revision == dep.revision
        and stored.weight == dep.canary_weight
    ):
        return stored, False
    steps_run: tuple[int, ...] = (dep.canary_weight,) if dep.canary_weight > 0 else ()
    if stored is not None and stored.canary == dep.canary:
        rollout_start = stored.rollout_started_at
        started = now
        ran = stored.steps_run
        steps_run = ran + steps_run if not ran or ran[-1] != dep.canary_weight else ran
    else:
        changed = parse_time(dep.updated_at)
        started = min(changed, now) if changed is not None else now
        rollout_start = started
    step = RolloutStep(
        canary=dep.canary,
        production=dep.production,
        weight=dep.canary_weight,
        revision=dep.revision,
        started_at=started,
        rollout_started_at=rollout_start,
        steps_run=steps_run,
    )
    return step, True


@dataclass(frozen=True, slots=True)
class _Tick:
    """One tick's judgement, as the actions below word it."""

    dep: Deployment
    step: RolloutStep
    rules: RolloutConfig
    now: float
    elapsed: float
    requests: float
    results: list[GuardrailResult]
    numbers: dict[str, Any]

    def record(
        self, action: Action, reasons: list[str], to_weight: int | None = None
    ) -> RolloutDecision:
        dep = self.dep
        return RolloutDecision(
            model=dep.name,
            action=action,
            production=dep.production,
            canary=dep.canary,
            from_weight=dep.canary_weight,
            to_weight=dep.canary_weight if to_weight is None else to_weight,
            reasons=reasons,
            guardrails=self.results,
            numbers=self.numbers,
            at=iso_time(self.now),
        )

    def stays(
        self, action: Action, reasons: list[str], notice: Notice | None = None
    ) -> tuple[Decision, RolloutStep]:
        return Decision(self.record(action, reasons), self.step, notice=notice), self.step


def decide(
    step: RolloutStep, deployment: Deployment, evidence: Evidence, rules: RolloutConfig, now: float
) -> tuple[Decision, RolloutStep | None]:
    """Judge the canary's step on ``evidence`` at ``now``: what to do, and the next step.

    The step returned is what the state file holds once the decision is applied: this
    one, a tick on (``hold``, ``insufficient_data``); the next weight's, started ``now``
    at the deployment's next revision (``advance``); None (``promote``, ``rollback``).

    Examples:
        >>> from mooring.monitoring._counters import VersionCounters
        >>> from mooring.registry import Deployment
        >>> staged = Deployment("income", production=1, canary=2, canary_weight=0, revision=4)
        >>> step, _ = current_step(staged, None, now=1000.0)
        >>> quiet = Evidence(VersionCounters(), VersionCounters())
        >>> decision, after = decide(step, staged, quiet, RolloutConfig(), now=1000.0)
        >>> decision.action, after.weight, after.revision
        ('advance', 5, 5)
    """
    dep = deployment
    if dep.canary is None or dep.canary != step.canary:
        raise ValueError(
            f"step of canary {step.canary} judged against deployment canary={dep.canary!r}: "
            "pass the step current_step() returns for this deployment"
        )
    split, split_from = _split(step, dep, evidence, rules)
    step = replace(step, ticks=step.ticks + 1, split_from=split_from)
    elapsed = now - step.started_at
    results = judge(evidence, rules.guardrails)
    numbers: dict[str, Any] = {
        "step_seconds": elapsed,
        "step_ticks": step.ticks,
        "step_started_at": iso_time(step.started_at),
        "rollout_started_at": iso_time(step.rollout_started_at),
        "canary_requests": evidence.canary.requests,
        "production_requests": evidence.production.requests,
        "sample_ratio": split.to_dict(),
    }
    tick = _Tick(dep, step, rules, now, elapsed, evidence.canary.requests, results, numbers)
    if step_verdict(results) == "fail":
        return _rollback(tick, [r for r in results if r.status == "breach"])
    if split.mismatch:
        reason = f"held at {dep.canary_weight}%: {split.message}"
        notice = Notice(
            "sample_ratio_mismatch",
            "ticket",
            f"{dep.name}@{dep.canary}: {reason}",
            {"sample_ratio": numbers["sample_ratio"], "numbers": numbers},
        )
        return tick.stays("hold", [reason], notice)
    if dep.canary_weight == 0:
        return _advance(tick, rules.steps[0])
    waiting = [
        f"{r.name}: {r.message}"
        for r in results
        if r.status == "insufficient_data" and not r.advisory
    ]
    if evidence.canary.requests < rules.min_requests:
        waiting.insert(
            0,
            f"requests: canary has {evidence.canary.requests:g} of {rules.min_requests} "
            f"needed at {dep.canary_weight}%",
        )
    if waiting:
        return _wait(tick, waiting)
    if elapsed < rules.min_step_duration:
        reason = (
            f"{elapsed:.0f}s of {rules.min_step_duration:g}s at "
            f"{dep.canary_weight}%; every guardrail passes so far"
        )
        return tick.stays("hold", [reason])
    return _next(tick)


def _split(
    step: RolloutStep, dep: Deployment, evidence: Evidence, rules: RolloutConfig
) -> tuple[SampleRatio, dict[str, float] | None]:
    """The step's split against its weight, counted from the tick the canary answered.

    A canary still loading when the step began gets no share until it is ready, and a
    replica applies a new weight a poll later: the counts start at the first tick that
    finds the canary answering, so neither reads as a mismatch. Returns the split and the
    counts it is counted from (None until then).
    """
    canary_total, production_total = evidence.canary_total, evidence.production_total
    if step.split_from is None:
        split_from = None
        if evidence.canary.requests > 0:
            split_from = {"canary": canary_total.requests, "production": production_total.requests}
        not_yet = SampleRatio(
            0.0,
            0.0,
            dep.canary_weight,
            1.0,
            False,
            f"split: not judged yet at {dep.canary_weight}%: counted from the first tick "
            "that finds the canary answering (a canary still loading gets no share)",
            judged=False,
        )
        return not_yet, split_from
    since_canary = canary_total.requests - step.split_from["canary"]
    since_production = production_total.requests - step.split_from["production"]
    if since_canary < 0 or since_production < 0:  # a server restarted: counters reset
        since_canary, since_production = canary_total.requests, production_total.requests
    split = sample_ratio(
        since_canary,
        since_production,
        dep.canary_weight,
        alpha=rules.guardrails.alpha,
        tolerance=rules.sample_ratio_tolerance,
    )
    return split, step.split_from


def _next(tick: _Tick, note: str = "") -> tuple[Decision, RolloutStep | None]:
    later = [s for s in tick.rules.steps if s > tick.dep.canary_weight]
    if later:
        return _advance(tick, later[0], note)
    return _promote(tick, note)


def _wait(tick: _Tick, waiting: list[str]) -> tuple[Decision, RolloutStep | None]:
    """Hold an undecided step; once its budget is spent, the end-of-horizon policy decides."""
    rules, dep = tick.rules, tick.dep
    reasons = [f"undecided at {dep.canary_weight}%: {len(waiting)} guardrail(s)", *waiting]
    spent = None
    if tick.elapsed >= rules.max_hold:
        spent = f"{tick.elapsed:.0f}s, past max_hold = {rules.max_hold:g}s"
    elif rules.max_hold_requests is not None and tick.requests >= rules.max_hold_requests:
        spent = f"{tick.requests:g} canary requests, max_hold_requests = {rules.max_hold_requests}"
    if spent is None:
        return tick.stays("insufficient_data", reasons)
    undecided = "; ".join(waiting)
    if rules.policy == "rollback":
        budget = GuardrailResult(
            "budget", "breach", f"undecided after {spent} (policy = rollback): {undecided}"
        )
        return _rollback(tick, [budget])
    if rules.policy == "bias_to_action" and tick.requests > 0:
        if tick.elapsed < rules.min_step_duration:
            # Never sooner than a step whose guardrails all pass (held to min_step_duration).
            return tick.stays("insufficient_data", reasons)
        last = not [s for s in rules.steps if s > dep.canary_weight]
        act = "promoted at the horizon" if last else "advanced on schedule"
        note = (
            f"{act}, undecided after {spent} (policy = bias_to_action: no guardrail was "
            f"shown harmful): {undecided}"
        )
        return _next(tick, note)
    if rules.policy == "bias_to_action":
        reasons[0] = (
            f"held at {dep.canary_weight}% for {spent}: the canary answered no request at "
            "this step, so there is nothing to act on (policy = bias_to_action advances a "
            "step that got traffic); check that the server routes to it"
        )
    else:
        reasons[0] = (
            f"held at {dep.canary_weight}% for {spent}, undecided on {len(waiting)} "
            "guardrail(s); policy = strict: the canary stays at its weight until the "
            "evidence decides or someone promotes or rolls it back"
        )
    notice = Notice(
        "rollout_stalled",
        "ticket",
        f"{dep.name}@{dep.canary}: " + reasons[0],
        {"waiting": waiting, "numbers": tick.numbers},
    )
    return tick.stays("insufficient_data", reasons, notice)


def _rollback(tick: _Tick, breaches: list[GuardrailResult]) -> tuple[Decision, RolloutStep | None]:
    dep = tick.dep
    reasons = [f"{b.name} [{b.state}]: {b.message}" for b in breaches]
    change = f"canary {dep.name}@{dep.canary} rolled back at {dep.canary_weight}%: " + "; ".join(
        reasons
    )
    record = tick.record("rollback", reasons, to_weight=0)
    notice = Notice("rollback", "page", change, record.to_dict())
    return Decision(record, tick.step, change, notice), None


def _advance(tick: _Tick, weight: int, note: str = "") -> tuple[Decision, RolloutStep | None]:
    dep, step, results = tick.dep, tick.step, tick.results
    healthy = "; ".join(
        f"{r.name} [{r.state}]: {r.message}"
        for r in results
        if r.status == "ok" or _not_waited_for(r)
    )
    judged = note or _all_pass(results)
    change = (
        f"canary {dep.name}@{dep.canary} at {dep.canary_weight}% for "
        f"{tick.elapsed:.0f}s, {step.ticks} tick(s) and "
        f"{tick.requests:g} requests, {judged}; advancing to {weight}%"
        + (f" ({healthy})" if healthy else "")
    )
    fresh = RolloutStep(
        canary=step.canary,
        production=dep.production,
        weight=weight,
        revision=dep.revision + 1,  # a deployment's revision grows by one at every change
        started_at=tick.now,
        rollout_started_at=step.rollout_started_at,
        rollout_baseline=step.rollout_baseline,
        steps_run=(*step.steps_run, weight),
    )
    return Decision(tick.record("advance", [change], to_weight=weight), step, change), fresh


def _promote(tick: _Tick, note: str = "") -> tuple[Decision, RolloutStep | None]:
    dep, step = tick.dep, tick.step
    judged = note or _all_pass(tick.results)
    ran = list(step.steps_run)
    if not ran or ran[-1] != dep.canary_weight:
        ran.append(dep.canary_weight)
    change = (
        f"canary {dep.name}@{dep.canary} passed every step it ran "
        f"({', '.join(f'{s}%' for s in ran)}); promoted to production "
        f"after {tick.elapsed:.0f}s and {tick.requests:g} requests "
        f"at {dep.canary_weight}%, {judged}"
    )
    record = tick.record("promote", [change], to_weight=100)
    return Decision(record, step, change, Notice("promote", "info", change, record.to_dict())), None


def _not_waited_for(result: GuardrailResult) -> bool:
    """Undecided, but leaning within its margin: the step does not wait for it."""
    return result.status == "insufficient_data" and result.advisory


def _all_pass(results: list[GuardrailResult]) -> str:
    """How the guardrails judged a step that moves on its evidence, in words.

    >>> _all_pass([GuardrailResult("latency", "insufficient_data", "p99 open", advisory=True)])
    'every guardrail passes but latency, undecided and leaning within its margin (not waited for)'
    """
    open_ = [r.name for r in results if _not_waited_for(r)]
    if not open_:
        return "every guardrail passes"
    return (
        f"every guardrail passes but {', '.join(open_)}, undecided and leaning within its "
        "margin (not waited for)"
    )
