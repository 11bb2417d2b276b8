"""A pipeline run's record, typed: what one ``mooring run`` did (``<home>/runs/<id>/run.json``).

``{"kind": "mooring.run", "run_id", "model", "created_at", "inputs", "inputs_key",
"code", "force", "status", "attempts", "reason", "error", "steps", "updated_at", ...}``,
written by the pipeline after every step and read back to resume a run, to reuse an
earlier run's steps, and by ``mooring status``. Its ``result`` (:class:`RunOutcome`)
says which version was registered and how it was deployed.

Not to be confused with a training record (the ``run.json`` beside a trained model,
:class:`~mooring.formats._training_run.TrainingRun`, ``"format": "mooring.training-run"``;
older ones said ``"format": "mooring.run"``) nor with a version's run record
(:class:`~mooring.formats._version_record.RunRecord`): a pipeline run's record says
``kind``, a training record ``format``.

:meth:`PipelineRun.read` reads any stored mapping without raising: a key it lacks stays
absent, a key it does not know or whose value has the wrong type is kept as it was
(``extra``), and :meth:`PipelineRun.to_dict` writes back the mapping it read.

Examples:
    >>> run = PipelineRun.read({"kind": "mooring.run", "run_id": "r1", "status": "failed"})
    >>> run.is_pipeline_run, run.run_id, run.status, run.result
    (True, 'r1', 'failed', None)
    >>> run.to_dict()
    {'kind': 'mooring.run', 'run_id': 'r1', 'status': 'failed'}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

from mooring.formats._stored import (
    Check,
    is_optional_text,
    read_fields,
    write_fields,
)

__all__ = ["PIPELINE_RUN_KIND", "PipelineRun", "PipelineRunFacts", "RunOutcome"]

#: The ``kind`` of a pipeline run's record.
PIPELINE_RUN_KIND = "mooring.run"
#: The step statuses a resumed run does not run again.
FINISHED_STEPS = ("done", "cached", "skipped")


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _write(record: Any, checks: Mapping[str, Check], values: Mapping[str, Any]) -> dict[str, Any]:
    missing = record.missing
    if missing is None:
        missing = frozenset(name for name in checks if getattr(record, name) is None)
    return write_fields(values, record.extra, missing)


_OUTCOME_CHECKS: dict[str, Check] = {
    "version": _optional(_is_count),
    "blessed": _optional(_is_bool),
    "candidate": is_optional_text,
    "metrics": _optional(_is_mapping),
    "report": is_optional_text,
    "deployed_as": is_optional_text,
    "canary_weight": _optional(_is_count),
    "deployment": _optional(_is_mapping),
}


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run left: the ``version`` it registered, whether the evaluation
    ``blessed`` it, the ``candidate`` chosen, the headline ``metrics``, the evaluation
    ``report``, how it was deployed (``deployed_as``, ``canary_weight``) and the
    ``deployment`` after it (production, canary, canary weight).

    Examples:
        >>> RunOutcome.read({"version": 3, "deployed_as": None}).to_dict()
        {'version': 3, 'deployed_as': None}
    """

    version: int | None = None
    blessed: bool | None = None
    candidate: str | None = None
    metrics: Mapping[str, Any] | None = None
    report: str | None = None
    deployed_as: str | None = None
    canary_weight: int | None = None
    deployment: Mapping[str, Any] | None = None
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields not recorded (left out on writing); ``None``: the fields that are ``None``.
    missing: frozenset[str] | None = None

    @classmethod
    def read(cls, data: Mapping[Any, Any]) -> RunOutcome:
        """The outcome of a stored mapping, never raising."""
        typed, extra, missing = read_fields(data, _OUTCOME_CHECKS)
        return cls(**typed, extra=extra, missing=missing)

    @classmethod
    def of(
        cls,
        *,
        version: int | None,
        blessed: bool | None,
        candidate: str | None,
        metrics: Mapping[str, Any] | None,
        report: str | None,
        deployed_as: str | None,
        canary_weight: int | None,
        deployment: Mapping[str, Any] | None,
    ) -> RunOutcome:
        """An outcome recording every field (a ``None`` one as null)."""
        return cls(
            version=version,
            blessed=blessed,
            candidate=candidate,
            metrics=metrics,
            report=report,
            deployed_as=deployed_as,
            canary_weight=canary_weight,
            deployment=deployment,
            missing=frozenset(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _OUTCOME_CHECKS}
        return _write(self, _OUTCOME_CHECKS, values)


class PipelineRunFacts(TypedDict, total=False):
    """The facts :meth:`PipelineRun.of` and :meth:`PipelineRun.updated` record."""

    kind: str | None
    run_id: str | None
    model: str | None
    created_at: str | None
    inputs: Mapping[str, Any] | None
    inputs_key: str | None
    code: Mapping[str, Any] | None
    force: bool | None
    status: str | None
    attempts: tuple[Mapping[str, Any], ...] | None
    reason: str | None
    error: Mapping[str, Any] | None
    steps: tuple[Mapping[str, Any], ...] | None
    resumed_after: str | None
    updated_at: str | None
    finished_at: str | None
    duration_s: float | None
    cpu_seconds: float | None
    cached_steps: tuple[str, ...] | None
    cost: Mapping[str, Any] | None
    result: RunOutcome | None


_RUN_CHECKS: dict[str, Check] = {
    "kind": is_optional_text,
    "run_id": is_optional_text,
    "model": is_optional_text,
    "created_at": is_optional_text,
    "inputs": _optional(_is_mapping),
    "inputs_key": is_optional_text,
    "code": _optional(_is_mapping),
    "force": _optional(_is_bool),
    "status": is_optional_text,
    "attempts": _optional(_is_rows),
    "reason": is_optional_text,
    "error": _optional(_is_mapping),
    "steps": _optional(_is_rows),
    "resumed_after": is_optional_text,
    "updated_at": is_optional_text,
    "finished_at": is_optional_text,
    "duration_s": _optional(_is_number),
    "cpu_seconds": _optional(_is_number),
    "cached_steps": _optional(_is_texts),
    "cost": _optional(_is_mapping),
    "result": _optional(_is_mapping),
}
_SEQUENCES = ("attempts", "steps", "cached_steps")


@dataclass(frozen=True)
class PipelineRun:
    """One ``mooring run``: its id, model, when it started (``created_at``), the
    ``inputs`` it was keyed on (``inputs_key``), the ``code`` it ran, whether it was
    forced, its ``status`` (``running``, ``succeeded``, ``rejected``, ``failed``,
    ``interrupted``) and why (``reason``, ``error``), every process that ran it
    (``attempts``), every step's record (``steps``), the last step an earlier attempt
    finished (``resumed_after``), when it last wrote, finished and how long it took, the
    steps it reused (``cached_steps``), its ``cost`` and its ``result``.

    Examples:
        >>> run = PipelineRun.of(kind=PIPELINE_RUN_KIND, run_id="r1", reason=None)
        >>> run.updated(status="running").to_dict()
        {'kind': 'mooring.run', 'run_id': 'r1', 'status': 'running', 'reason': None}
    """

    kind: str | None = None
    run_id: str | None = None
    model: str | None = None
    created_at: str | None = None
    inputs: Mapping[str, Any] | None = None
    inputs_key: str | None = None
    code: Mapping[str, Any] | None = None
    force: bool | None = None
    status: str | None = None
    attempts: tuple[Mapping[str, Any], ...] | None = None
    reason: str | None = None
    error: Mapping[str, Any] | None = None
    steps: tuple[Mapping[str, Any], ...] | None = None
    resumed_after: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    cpu_seconds: float | None = None
    cached_steps: tuple[str, ...] | None = None
    cost: Mapping[str, Any] | None = None
    result: RunOutcome | None = None
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields not recorded (left out on writing); ``None``: the fields that are ``None``.
    missing: frozenset[str] | None = None

    @classmethod
    def read(cls, data: object) -> PipelineRun:
        """The run of a stored mapping (anything else: an empty one), never raising."""
        if not isinstance(data, Mapping):
            return cls()
        typed, extra, missing = read_fields(data, _RUN_CHECKS)
        for name in _SEQUENCES:
            if typed.get(name) is not None:
                typed[name] = tuple(typed[name])
        if typed.get("result") is not None:
            typed["result"] = RunOutcome.read(typed["result"])
        return cls(**typed, extra=extra, missing=missing)

    @classmethod
    def of(cls, **facts: Unpack[PipelineRunFacts]) -> PipelineRun:
        """A run recording ``facts``: each is written, a ``None`` one as null."""
        return cls(**facts, missing=frozenset(_RUN_CHECKS) - set(facts))

    def updated(self, **facts: Unpack[PipelineRunFacts]) -> PipelineRun:
        """This run with ``facts`` recorded (a ``None`` one as null)."""
        given = set(facts)
        extra = {k: v for k, v in self.extra.items() if k not in given}
        missing = self.missing
        if missing is None:
            missing = frozenset(n for n in _RUN_CHECKS if getattr(self, n) is None)
        return replace(self, **facts, extra=extra, missing=missing - given)

    @property
    def is_pipeline_run(self) -> bool:
        """Its ``kind`` says it is a pipeline run's record (not a training record)."""
        return self.kind == PIPELINE_RUN_KIND

    @property
    def activity(self) -> tuple[str, str]:
        """When it was last active (its last write, else its start) and its id: the key
        runs are ordered by, most recently active first."""
        return (self.updated_at or self.created_at or "", self.run_id or "")

    @property
    def finished_steps(self) -> list[str]:
        """The steps it finished (done, reused or skipped), in order."""
        return [
            str(step.get("name"))
            for step in self.steps or ()
            if step.get("status") in FINISHED_STEPS
        ]

    def step(self, name: str) -> Mapping[str, Any] | None:
        """The record of its step ``name`` (as stored), if it has one."""
        return next((s for s in self.steps or () if s.get("name") == name), None)

    @property
    def last_attempt_status(self) -> str | None:
        """The status of its last attempt (``running`` when its process died unheard)."""
        last = (self.attempts or ())[-1:]
        status = last[0].get("status") if last else None
        return status if isinstance(status, str) else None

    def attempt_ended(self, status: str, duration_s: float | None = None) -> PipelineRun:
        """This run with its last attempt's ``status`` (and ``duration_s``) recorded."""
        attempts = list(self.attempts or ())
        if not attempts:
            return self
        ended: dict[str, Any] = {**attempts[-1], "status": status}
        if duration_s is not None:
            ended["duration_s"] = duration_s
        return self.updated(attempts=(*attempts[:-1], ended))

    def attempt_started(self, started_at: str, process: Mapping[str, Any]) -> PipelineRun:
        """This run with one more attempt, running from ``started_at`` in ``process``."""
        started = {"started_at": started_at, "status": "running", **process}
        return self.updated(attempts=(*(self.attempts or ()), started))

    def stopped(
        self, status: str, *, step: str, error: str, message: str, user_error: bool, at: str
    ) -> PipelineRun:
        """This run stopped by an error in ``step`` (its type ``error`` and ``message``;
        ``user_error``: a :class:`~mooring.errors.MooringError`), its last attempt too.

        Examples:
            >>> PipelineRun.of(run_id="r").stopped(
            ...     "failed", step="train", error="DataError", message="no rows",
            ...     user_error=True, at="t").error_message
            'no rows'
        """
        stored = {"step": step, "type": error, "message": message, "user_error": user_error}
        return self.attempt_ended(status).updated(status=status, error=stored, finished_at=at)

    @property
    def error_message(self) -> str | None:
        """The message of the error that stopped it, if one did."""
        message = (self.error or {}).get("message")
        return None if message is None else str(message)

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _RUN_CHECKS}
        if self.result is not None:
            values["result"] = self.result.to_dict()
        return _write(self, _RUN_CHECKS, values)
