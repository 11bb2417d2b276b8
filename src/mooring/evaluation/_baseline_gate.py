"""The ``kind = "baseline"`` gate: one candidate against another evaluated in the same run.

Here, below both :mod:`mooring.evaluation._gates` (which runs the configured gates) and
:mod:`mooring.evaluation._defaults` (whose default gates include it), so neither imports
the other for it.

>>> fmt(0.123456789), fmt(None)
('0.123457', 'n/a')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mooring.config._evaluation import GateConfig
from mooring.config._model import METRIC_HIGHER_IS_BETTER
from mooring.evaluation._result import EvaluationResult
from mooring.formats._gate import GateRecord


def where(gate: GateConfig) -> str:
    """The gate's metric and slice as messages name them: ``auc [sex=Female]``."""
    return f"{gate.metric}" + (f" [{gate.slice}]" if gate.slice else "")


def fmt(value: float | None) -> str:
    """A number as gate messages print it (six significant digits; ``n/a`` for none)."""
    return "n/a" if value is None else f"{value:.6g}"


def baseline_gate(
    gate: GateConfig,
    candidate: EvaluationResult,
    name: str | None,
    candidates: Mapping[str, EvaluationResult],
) -> GateRecord:
    """A ``kind = "baseline"`` gate: ``candidate`` (called ``name``) against the named one."""
    reference = str(gate.baseline)
    higher = METRIC_HIGHER_IS_BETTER.get(gate.metric, True)
    title = f"{where(gate)} no worse than candidate '{reference}'"
    bound: dict[str, Any] = {"baseline": reference, "direction": "higher" if higher else "lower"}

    def result(passed: bool, message: str, **extra: Any) -> GateRecord:
        return GateRecord(
            title,
            gate.metric,
            gate.slice,
            "baseline",
            extra.get("value"),
            bound,
            passed,
            message,
            skipped=extra.get("skipped", False),
            baseline=extra.get("base"),
            diff=extra.get("diff"),
        )

    if name == reference:
        return result(True, f"skipped: this is the baseline candidate '{reference}'", skipped=True)
    other = candidates.get(reference)
    if other is None:
        return result(
            False,
            f"failed: the baseline candidate '{reference}' was not evaluated in this run "
            f"(evaluated: {', '.join(candidates) or 'none'})",
        )
    if candidate.data_fingerprint != other.data_fingerprint:
        return result(False, f"failed: '{reference}' was evaluated on different records")
    value, why = candidate.lookup(gate.metric, gate.slice)
    if value is None:
        return result(False, f"failed: {where(gate)} was not computed: {why}")
    base, base_why = other.lookup(gate.metric, gate.slice)
    if base is None:
        return result(False, f"failed: {where(gate)} of '{reference}': {base_why}", value=value)
    interval = other.intervals.get(gate.metric) if gate.slice in (None, "overall") else None
    if interval is not None:
        limit = interval.lower if higher else interval.upper
        within = (
            f"its {interval.confidence:.0%} interval [{interval.lower:.6g}, {interval.upper:.6g}]"
        )
    else:
        limit, within = base, "its value (no interval: [evaluation.bootstrap] samples = 0)"
    bound["limit"] = limit
    passed = value >= limit if higher else value <= limit
    return result(
        passed,
        f"{'passed' if passed else 'failed'}: {where(gate)} {fmt(value)} vs '{reference}' "
        f"{fmt(base)}; the bound is the {'lower' if higher else 'upper'} end of {within}, "
        f"{fmt(limit)} ({'higher' if higher else 'lower'} is better)",
        value=value,
        base=base,
        diff=value - base,
    )
