"""Validation gates and the blessing decision, with TensorFlow Model Analysis semantics.

- A value threshold passes when ``lower <= value <= upper`` (both inclusive, either
  optional). ``lower = "majority"`` on accuracy is the most frequent class's share in
  the evaluated rows, recorded in the bound as a number with ``reference = "majority"``.
- A change threshold compares with the baseline (the production model) evaluated on the
  same records: ``diff = candidate - baseline``. With ``direction = "higher"`` it passes
  when ``diff >= absolute`` and ``diff / baseline >= relative``; with ``"lower"`` when
  ``diff <= absolute`` and ``diff / baseline <= relative`` (each only when configured).
  A relative threshold against a baseline of 0 fails: the ratio is undefined.
- A metric that was not computed fails its gate, with a message saying why.
- Without a baseline (the first model), change thresholds and gates on the comparison
  metrics (``flip_rate``, ``mean_abs_diff``) are skipped, each one saying so.
- A baseline gate (``kind = "baseline"``) compares a run's candidate with the candidate
  named ``baseline``, evaluated on the same records: it fails when the candidate's value
  is worse than the baseline's beyond the baseline's bootstrap interval (below its lower
  end when higher is better, above its upper end otherwise). Without an interval
  (``bootstrap samples = 0``) the baseline's value itself is the bound, with a warning.
  The baseline candidate passes its own gate.
- When no configured gate judges the model (none configured, or every one skipped), the
  default gates judge it (:mod:`mooring.evaluation._defaults`: the headline metric beats
  chance beyond its interval; better than the training label's prior; for binary models
  precision, recall or cost only at an operating threshold the evaluation chose; no
  worse than a ``linear`` candidate; no worse than production by more than
  ``[evaluation] default_margin``), marked ``default`` in the
  decision. With ``[evaluation] default_gates = false`` such a model is *ungated*: not
  blessed, whatever else the decision says, and deployable only by force with a reason.
- A :class:`Waiver` (``mooring run --waive-change -r REASON``) makes the failed gates that
  compare with production pass as ``waived: REASON``, their values kept; no other gate.
- Blessed means at least one gate judged and none failed.

Examples:
    >>> decision = decide(result, baseline=None,
    ...                   gates=[GateConfig(metric="auc", lower=0.8)])  # doctest: +SKIP
    >>> decision.blessed, decision.gates[0].message  # doctest: +SKIP
    (True, 'auc = 0.912 within [0.8, inf]')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mooring.config._evaluation import ChangeThresholdConfig, GateConfig
from mooring.evaluation._baseline_gate import baseline_gate
from mooring.evaluation._baseline_gate import fmt as _fmt
from mooring.evaluation._baseline_gate import where as _where
from mooring.evaluation._result import Comparison, EvaluationResult
from mooring.formats._gate import DecisionRecord, GateRecord

__all__ = [
    "Waiver",
    "baseline_gate",
    "decide",
    "describe_bound",
    "waivable",
    "waive",
]

COMPARISON_METRICS = ("flip_rate", "mean_abs_diff")
# The keys of a recorded bound that are limits (a change gate's bound has none of them).
_LIMITS = ("lower", "upper", "max_drop", "max_increase", "max")


def describe_bound(bound: Any, number: Callable[[float], str] | None = None) -> str:
    """A recorded gate bound for people: its limits, or else its set keys; never a ``None``.

    ``number`` formats finite numbers (four significant digits by default).

    >>> describe_bound({"lower": 0.7, "upper": None})
    'lower 0.7'
    >>> describe_bound({"direction": "lower", "absolute": None, "relative": 0.02})
    'direction lower, relative 0.02'
    """
    show = number or (lambda value: f"{value:.4g}")

    def one(value: Any) -> str:
        finite = isinstance(value, int | float) and not isinstance(value, bool)
        return show(float(value)) if finite and math.isfinite(value) else str(value)

    if isinstance(bound, Mapping):
        limits = [(key, bound[key]) for key in _LIMITS if bound.get(key) is not None]
        items = limits or [(key, value) for key, value in bound.items() if value is not None]
        return ", ".join(f"{key} {one(value)}" for key, value in items)
    return "" if bound is None else one(bound)


def _majority(candidate: EvaluationResult) -> tuple[float | None, str]:
    """The most frequent class's share in the evaluated labels, or (None, why not)."""
    if candidate.task == "regression":
        return None, "a regression model has no classes"
    from mooring.evaluation._defaults import chance_level

    return chance_level(candidate, majority=True)


def _value_gate(gate: GateConfig, candidate: EvaluationResult, first_model: bool) -> GateRecord:
    majority = gate.lower == "majority"
    shown_lower = "majority share" if majority else _fmt(gate.lower)  # type: ignore[arg-type]
    bound: dict[str, Any] = {"lower": gate.lower, "upper": gate.upper}
    name = f"{_where(gate)} in [{shown_lower if gate.lower is not None else '-inf'}, " + (
        f"{_fmt(gate.upper) if gate.upper is not None else 'inf'}]"
    )
    if gate.metric in COMPARISON_METRICS and first_model:
        return GateRecord(
            name,
            gate.metric,
            gate.slice,
            "value",
            None,
            bound,
            True,
            f"skipped: {gate.metric} compares with the production model and there is none "
            "yet (first model)",
            skipped=True,
        )
    value, why = candidate.lookup(gate.metric, gate.slice)
    if value is None:
        return GateRecord(
            name,
            gate.metric,
            gate.slice,
            "value",
            None,
            bound,
            False,
            f"failed: {_where(gate)} was not computed: {why}",
        )
    if majority:
        share, trivial = _majority(candidate)
        if share is None:
            return GateRecord(
                name,
                gate.metric,
                gate.slice,
                "value",
                value,
                bound,
                False,
                f"failed: {_where(gate)}: lower = 'majority' has no value: {trivial}",
            )
        bound.update(lower=share, reference="majority")
    lower = -math.inf if bound["lower"] is None else float(bound["lower"])
    upper = math.inf if gate.upper is None else gate.upper
    passed = lower <= value <= upper
    verdict = "within" if passed else "outside"
    message = f"{_where(gate)} = {_fmt(value)} {verdict} [{lower:g}, {upper:g}]"
    if majority:
        message += " (lower: the most frequent class's share, the accuracy of always answering it)"
    return GateRecord(name, gate.metric, gate.slice, "value", value, bound, passed, message)


def _change_name(gate: GateConfig, change: ChangeThresholdConfig) -> str:
    op = ">=" if change.direction == "higher" else "<="
    parts = []
    if change.absolute is not None:
        parts.append(f"diff {op} {change.absolute:g}")
    if change.relative is not None:
        parts.append(f"diff/baseline {op} {change.relative:g}")
    return f"{_where(gate)} change: " + " and ".join(parts)


def _change_gate(
    gate: GateConfig,
    change: ChangeThresholdConfig,
    candidate: EvaluationResult,
    baseline: EvaluationResult | None,
) -> GateRecord:
    name = _change_name(gate, change)
    bound = {
        "direction": change.direction,
        "absolute": change.absolute,
        "relative": change.relative,
    }

    def fail(message: str, **extra: Any) -> GateRecord:
        return GateRecord(
            name,
            gate.metric,
            gate.slice,
            "change",
            extra.get("value"),
            bound,
            False,
            f"failed: {message}",
            baseline=extra.get("baseline"),
        )

    if baseline is None:
        return GateRecord(
            name,
            gate.metric,
            gate.slice,
            "change",
            candidate.metric(gate.metric, gate.slice),
            bound,
            True,
            "skipped: first model — there is no production model to compare with, so change "
            "thresholds do not apply yet",
            skipped=True,
        )
    if candidate.data_fingerprint != baseline.data_fingerprint:
        return fail(
            "the baseline was evaluated on different records (fingerprint "
            f"{baseline.data_fingerprint} vs {candidate.data_fingerprint}); re-evaluate the "
            "production model on this evaluation data"
        )
    value, why = candidate.lookup(gate.metric, gate.slice)
    if value is None:
        return fail(f"{_where(gate)} was not computed for the candidate: {why}")
    base, base_why = baseline.lookup(gate.metric, gate.slice)
    if base is None:
        return fail(f"{_where(gate)} was not computed for the baseline: {base_why}", value=value)
    diff = value - base
    ratio = math.nan if math.isclose(base, 0.0) else diff / base
    higher = change.direction == "higher"
    checks: list[bool] = []
    if change.absolute is not None:
        checks.append(diff >= change.absolute if higher else diff <= change.absolute)
    if change.relative is not None:
        if math.isnan(ratio):
            return fail(
                f"{_where(gate)}: the baseline value is 0, so a relative change is undefined; "
                "use an absolute threshold for this metric",
                value=value,
                baseline=base,
            )
        checks.append(ratio >= change.relative if higher else ratio <= change.relative)
    passed = all(checks)
    rel = "" if math.isnan(ratio) else f", relative {ratio:+.4%}"
    return GateRecord(
        name,
        gate.metric,
        gate.slice,
        "change",
        value,
        bound,
        passed,
        f"{'passed' if passed else 'failed'}: {_where(gate)} {_fmt(value)} vs production "
        f"{_fmt(base)} (diff {diff:+.6g}{rel}; {'higher' if higher else 'lower'} is better)",
        baseline=base,
        diff=diff,
    )


@dataclass(frozen=True)
class Waiver:
    """A waiver of the gates that compare a model with production, for a ``reason``.

    When production itself is wrong (it read a leaking column, say), an honest model is
    "worse" than it and its change gates fail. ``mooring run --waive-change -r REASON``
    waives them: each failed gate that compares with production (a change threshold, the
    default "no worse than production" gate, a flip-rate or mean-difference bound) passes
    as ``waived: REASON``, its values kept. Gates that judge the model itself (beats
    chance, quality bounds, the linear baseline) are never waived. The registry's audit
    log records the waiver with the version (actor, reason, gates).

    Examples:
        >>> Waiver(reason="production v1 read `reject`, a leak").shown
        'waived: production v1 read `reject`, a leak'
    """

    reason: str
    actor: str | None = None

    @property
    def shown(self) -> str:
        """How a waived gate's message begins."""
        return f"waived: {self.reason}"


def waivable(gate: GateRecord) -> bool:
    """Whether ``gate`` compares with production (the only gates a :class:`Waiver` waives)."""
    return gate.kind == "change" or gate.metric in COMPARISON_METRICS


def waive(decision: DecisionRecord, waiver: Waiver) -> DecisionRecord:
    """``decision`` with its failed comparisons with production waived (:class:`Waiver`);
    blessed again when no other gate failed. A waiver that waives nothing says so."""
    waived = [g for g in decision.gates if not g.passed and not g.skipped and waivable(g)]
    if not waived:
        return decision.warned(
            f"--waive-change ({waiver.reason}) waived nothing: no gate comparing with "
            "production failed"
        )
    gates = [
        replace(g, passed=True, waived=waiver.reason, message=f"{waiver.shown} ({g.message})")
        if g in waived
        else g
        for g in decision.gates
    ]
    return DecisionRecord.judging(
        gates,
        warnings=[
            *decision.warnings,
            f"{len(waived)} gate(s) comparing with production waived ({waiver.reason}): "
            + "; ".join(g.name for g in waived),
        ],
        defaults=decision.defaults,
    )


def decide(
    candidate: EvaluationResult,
    *,
    baseline: EvaluationResult | None = None,
    gates: Sequence[GateConfig] | None = None,
    candidate_vs_baseline: Comparison | None = None,
    name: str | None = None,
    candidates: Mapping[str, EvaluationResult] | None = None,
    waiver: Waiver | None = None,
) -> DecisionRecord:
    """Check every gate; blessed only when at least one judged and none failed.

    When no configured gate judges (none configured, or all skipped), the default gates
    judge instead (``[evaluation] default_gates``, the candidate's config); with them
    off the decision is ungated, and not blessed.

    Args:
        candidate: the evaluation of the model being considered.
        baseline: the production model evaluated on the same records, or ``None`` for
            the first model.
        name: the candidate's name in a run of several (``[[model.candidates]]``).
        candidates: every candidate of the run by name, for baseline gates.
        gates: the gates; default ``candidate.config.gates``.
        candidate_vs_baseline: flip rate and mean absolute difference (see
            :func:`mooring.evaluation._compare`); default ``candidate.comparison``.
        waiver: waive the failed gates that compare with production (:class:`Waiver`).
    """
    configured = list(candidate.config.gates if gates is None else gates)
    if candidate_vs_baseline is not None:
        candidate.comparison = candidate_vs_baseline
    judged: list[GateRecord] = []
    warnings: list[str] = []
    first_model = baseline is None
    if first_model and any(g.change is not None for g in configured):
        warnings.append(
            "first model: no production model exists, so every change threshold was skipped"
        )
    for gate in configured:
        if gate.kind == "baseline":
            if candidates is None:
                warnings.append(
                    f"baseline gate on '{gate.metric}' skipped: it compares candidates of one "
                    "`mooring run`, and this evaluation has none"
                )
            else:
                judged.append(baseline_gate(gate, candidate, name, candidates))
            continue
        if gate.lower is not None or gate.upper is not None:
            judged.append(_value_gate(gate, candidate, first_model))
        if gate.change is not None:
            judged.append(_change_gate(gate, gate.change, candidate, baseline))
    defaults = not any(g.judged for g in judged)
    if defaults:
        defaults = _judge_by_default(
            judged, warnings, candidate, baseline, configured, name, candidates
        )
    decision = DecisionRecord.judging(judged, warnings=warnings, defaults=defaults)
    return decision if waiver is None else waive(decision, waiver)


def _judge_by_default(
    gates: list[GateRecord],
    warnings: list[str],
    candidate: EvaluationResult,
    baseline: EvaluationResult | None,
    configured: Sequence[GateConfig],
    name: str | None,
    candidates: Mapping[str, EvaluationResult] | None,
) -> bool:
    """No configured gate judged: the default gates do (added to ``gates``; ``True``), or
    the decision is ungated (``False``); ``warnings`` says which."""
    settings = candidate.config
    why = (
        "no [[evaluation.gates]] configured"
        if not configured
        else f"none of the {len(configured)} configured gate(s) could judge this model"
    )
    if not settings.default_gates:
        warnings.append(
            f"ungated: no gate judged this model ({why}, and [evaluation] default_gates = "
            "false), so it is not blessed; declare [[evaluation.gates]] (e.g. metric = "
            '"auc", lower = 0.8) or set default_gates = true. Deploying it needs --force and '
            "a reason"
        )
        return False
    from mooring.evaluation._defaults import default_gates

    gates += default_gates(
        candidate,
        baseline=baseline,
        margin=settings.default_margin,
        min_recall=settings.default_min_recall,
        name=name,
        candidates=candidates,
    )
    warnings.append(
        f"{why}: judged by the default gates (beats chance beyond its interval; better "
        "than the training label's prior; "
        + (
            "precision, recall or cost at the operating threshold when the evaluation chose it; "
            if candidate.task == "binary"
            else ""
        )
        + "no worse than a linear candidate; no worse than production by more than "
        f"{settings.default_margin:g}); declare [[evaluation.gates]] to choose your own, or "
        "set [evaluation] default_gates = false"
    )
    return True
