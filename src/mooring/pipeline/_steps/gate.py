"""Step 4, gate: the evaluation's decision; a model that is not blessed stops the run.

An *ungated* model (no gate judged it: ``[evaluation] default_gates = false`` and no
configured gate that applies) does not stop the run: the step is skipped, the model is
registered as ungated and the deploy step deploys nothing (the registry deploys it only
with ``--force`` and a reason).
"""

from __future__ import annotations

from mooring.formats._gate import UNGATED, DecisionRecord
from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._leaks import hold_perfect
from mooring.pipeline._outputs import GateOutput
from mooring.pipeline._record import StepRecord

__all__ = ["run"]


def _blessed_message(decision: DecisionRecord, chosen: str | None) -> str:
    """Which gates judged: the default ones by name and outcome, else how many passed."""
    judged = decision.judged
    skipped = len(decision.gates) - len(judged)
    by = f" by candidate {chosen}" if chosen else ""
    if decision.defaults:
        shown = "; ".join(f"{g.name} ({g.message})" for g in judged)
        left = [f"{g.name} ({g.message})" for g in decision.skipped]
        return f"blessed{by} by the default gates (no [[evaluation.gates]] judged): {shown}" + (
            f"; not applied: {'; '.join(left)}" if left else ""
        )
    return (
        f"blessed: {len(judged)} gate(s) passed" + (f", {skipped} skipped" if skipped else "") + by
    )


def run(ctx: RunContext, record: StepRecord) -> GateOutput:
    """The gate step (never cached itself: it follows the evaluate step's status)."""
    evaluated = ctx.outputs.evaluated
    decision = evaluated.decision
    record.key = ctx.keys["evaluate"]
    record.inputs = {"evaluation_key": record.key}
    failures = decision.failures
    output = GateOutput(
        blessed=decision.blessed,
        gates=len(decision.gates),
        failed=[g.message for g in failures],
        warnings=list(decision.warnings),
    )
    if not output.blessed and decision.is_ungated:
        record.status = "skipped"
        record.message = (
            f"{UNGATED}{f' (candidate {evaluated.chosen})' if evaluated.chosen else ''}: "
            "[evaluation] default_gates = false and no [[evaluation.gates]] applies, so it is "
            "not blessed; it will be registered, not deployed"
        )
        return output
    if not output.blessed:
        record.outputs = output.to_dict()
        shown = "; ".join(message.removeprefix("failed: ") for message in output.failed)
        judges = "default gate(s)" if decision.defaults else "gate(s)"
        if evaluated.candidates:
            shown = "; ".join(
                f"candidate {c.name} ({c.kind}): "
                + ("ungated" if c.ungated else ("; ".join(c.failures) or "passed"))
                for c in evaluated.candidates
            )
            raise RejectedError(
                f"not blessed: no candidate passed its gates — {shown} "
                f"(report: {evaluated.report}); nothing was deployed"
            )
        raise RejectedError(
            f"not blessed: {len(failures)} {judges} failed: {shown} "
            f"(report: {evaluated.report}); nothing was deployed"
        )
    # A near-perfect evaluation is held unless acknowledged (a leak, most often).
    acknowledged = hold_perfect(ctx, evaluated)
    record.status = "cached" if ctx.cached("evaluate") else "done"
    record.message = _blessed_message(decision, evaluated.chosen)
    if acknowledged:
        record.message += f"; {acknowledged}"
    return output
