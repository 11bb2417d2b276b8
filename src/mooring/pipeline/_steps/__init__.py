"""The steps of ``mooring run``, in order: one module each, one ``run(ctx, record)`` function.

``PIPELINE`` is the whole run, read top to bottom. Each step takes the run's
:class:`~mooring.pipeline._context.RunContext` and its
:class:`~mooring.pipeline._record.StepRecord` (where it sets the fingerprint of its
inputs, its status and a message), and returns its frozen output (``None`` when it was
skipped); a failed check raises :class:`~mooring.pipeline._context.RejectedError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from mooring.pipeline._context import RunContext
from mooring.pipeline._outputs import StepOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import deploy, evaluate, gate, register, replay, train, validate

__all__ = ["PIPELINE", "Step", "step_name"]

Step: TypeAlias = Callable[[RunContext, StepRecord], StepOutput | None]

PIPELINE: tuple[Step, ...] = (
    validate.run,
    train.run,
    evaluate.run,
    gate.run,
    register.run,
    replay.run,
    deploy.run,
)


def step_name(step: Step) -> str:
    """A step's name: its module's (``mooring.pipeline._steps.train`` → ``train``)."""
    return step.__module__.rsplit(".", 1)[-1]
