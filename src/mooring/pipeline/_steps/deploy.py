"""Step 7, deploy: the first model becomes production, later ones a canary at the first step.

With ``[rollout] start = "shadow"`` a later model becomes the shadow instead, copied
``[rollout.shadow] rate`` of the requests; the monitor moves it to the first canary step
once its shadow report is healthy.

A version the server would answer production's clients 400 from (its decoder refuses
a request they send: an input more or less, a changed type; a contract change accepted
since) is registered but not deployed, and the run says the door's answer and how to
override (``mooring models deploy --force -r REASON``).

An ungated version (no gate judged it) is registered, not deployed: the registry deploys
it only with ``--force`` and a reason. So is a version that would become production without
the approval ``[registry] production_requires = "approval"`` asks for: the step says who
may approve it, and the next run (or ``mooring models promote``) deploys it once approved.

A version this pipeline deployed before and that was since replaced or rolled back is
not deployed again (``mooring run --force`` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mooring.errors import ConflictError
from mooring.formats._gate import UNGATED
from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._outputs import DeployOutput
from mooring.pipeline._record import StepRecord
from mooring.registry._approval import ApprovalError

__all__ = ["run"]


def run(ctx: RunContext, record: StepRecord) -> DeployOutput | None:
    """The deploy step."""
    version = ctx.outputs.registered.version
    record.inputs = {"version": version}
    record.key = key = f"{ctx.name}-v{version}"
    if not ctx.config.pipeline.deploy:
        record.status, record.message = "skipped", "[pipeline] deploy = false: registered only"
        return None
    production, canary, weight = ctx.deployment()
    if production == version:
        record.status, record.message = "cached", f"version {version} is already production"
        return DeployOutput(deployed_as="production")
    if canary == version:
        record.status = "cached"
        record.message = f"version {version} is already the canary at {weight}%"
        return DeployOutput(deployed_as="canary", canary_weight=weight)
    if not ctx.outputs.evaluated.blessed:
        # Only an ungated model gets here (a failed gate stops the run at the gate step).
        record.status = "skipped"
        record.message = (
            f"version {version} is {UNGATED}: registered, not deployed; deploy it with "
            f"`mooring models promote {ctx.name} {version} --force --reason TEXT`"
        )
        return None
    earlier = ctx.cache.get("deploy", key)
    if earlier is not None:
        record.status = "skipped"
        record.message = (
            f"version {version} was deployed by run {earlier.get('run_id')} and has since "
            "been replaced or rolled back; not deploying it again (pass --force to)"
        )
        return DeployOutput()
    record.status, record.reusable = "done", True
    try:
        return _deploy(ctx, record, version, production, canary)
    except ApprovalError as exc:  # [registry] production_requires = "approval"
        record.status, record.reusable = "skipped", False
        record.message = f"version {version} is registered, not production: {exc}"
        return None


def _deploy(
    ctx: RunContext, record: StepRecord, version: int, production: int | None, canary: int | None
) -> DeployOutput:
    """Deploy ``version``: production when there is none, else the shadow or the canary at
    the first step (``[rollout] start`` and ``steps``), production when that step is 100%."""
    from mooring.registry._registry import default_actor

    actor, registry, name = default_actor(), ctx.registry, ctx.name
    if production is None:
        registry.deploy(
            name, production=version, actor=actor, reason=f"mooring run {ctx.run_id}: first model"
        )
        record.message = f"version {version} is production (first model)"
        return DeployOutput(deployed_as="production")
    rollout = ctx.config.rollout
    if rollout.start == "shadow":
        if registry.deployment(name).shadow == version:
            record.status = "cached"
            record.message = f"version {version} is already the shadow"
            return DeployOutput(deployed_as="shadow")
        rate = rollout.shadow.rate
        with _inputs_refused(version):
            registry.set_shadow(
                name,
                version=version,
                rate=rate,
                actor=actor,
                reason=f"mooring run {ctx.run_id}: shadow at {rate:.0%} "
                '([rollout] start = "shadow")',
            )
        record.message = (
            f"version {version} is the shadow of production {production}, copied {rate:.0%} "
            "of requests; the monitor moves it to the first canary step once healthy"
        )
        return DeployOutput(deployed_as="shadow")
    steps = rollout.steps
    start = steps[0] if steps else 100
    if start >= 100:
        with _inputs_refused(version):
            registry.promote(
                name,
                version=version,
                actor=actor,
                reason=f"mooring run {ctx.run_id}: [rollout] steps start at 100%",
            )
        record.message = f"version {version} is production ([rollout] steps start at 100)"
        return DeployOutput(deployed_as="production")
    replaced = f"; replaces canary {canary}" if canary is not None else ""
    with _inputs_refused(version):
        registry.deploy(
            name,
            production=production,
            canary=version,
            weight=start,
            actor=actor,
            reason=f"mooring run {ctx.run_id}: canary at {start}% "
            f"(rollout step 1 of {len(steps)}){replaced}",
        )
    record.message = (
        f"version {version} is the canary at {start}% next to production {production}{replaced}"
    )
    return DeployOutput(deployed_as="canary", canary_weight=start)


@contextlib.contextmanager
def _inputs_refused(version: int) -> Iterator[None]:
    """A version the server would answer production's clients 400 from is registered, not
    deployed: the run is rejected with the registry's reason (the door's answer) and the
    override."""
    try:
        yield
    except ConflictError as exc:
        raise RejectedError(
            f"version {version} is registered but not deployed beside production: {exc}"
        ) from None
