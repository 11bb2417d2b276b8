"""Step 4, gate: the evaluation's decision; a model that is not blessed stops the run."""

from __future__ import annotations

from mooring.pipeline.context import RejectedError, RunContext
from mooring.pipeline.outputs import GateOutput
from mooring.pipeline.record import StepRecord

__all__ = ["run"]


def run(ctx: RunContext, record: StepRecord) -> GateOutput:
    """The gate step (never cached itself: it follows the evaluate step's status)."""
    evaluated = ctx.outputs.evaluated
    decision = evaluated.decision
    record.key = ctx.keys["evaluate"]
    record.inputs = {"evaluation_key": record.key}
    gates = decision.get("gates", [])
    failures = [g for g in gates if not g.get("passed")]
    output = GateOutput(
        blessed=bool(decision.get("blessed")),
        gates=len(gates),
        failed=[str(g.get("message")) for g in failures],
        warnings=list(decision.get("warnings", [])),
    )
    if not output.blessed:
        record.outputs = output.to_dict()
        shown = "; ".join(output.failed)
        if evaluated.candidates:
            shown = "; ".join(
                f"candidate {c['name']} ({c['kind']}): " + ("; ".join(c["failures"]) or "passed")
                for c in evaluated.candidates
            )
            raise RejectedError(
                f"not blessed: no candidate passed its gates — {shown} "
                f"(report: {evaluated.report}); nothing was deployed"
            )
        raise RejectedError(
            f"not blessed: {len(failures)} gate(s) failed: {shown} "
            f"(report: {evaluated.report}); nothing was deployed"
        )
    record.status = "cached" if ctx.cached("evaluate") else "done"
    record.message = f"blessed: {len(gates)} gate(s) passed" + (
        f" by candidate {evaluated.chosen}" if evaluated.chosen else ""
    )
    return output
