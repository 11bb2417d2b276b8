"""What each step of a run produces: frozen, JSON-ready records, one class per step.

A step's output goes into the pipeline run's record (``run.json``) and the step cache as
``to_dict()``; a cached step's output comes back with ``from_dict``. Later steps read
earlier ones through :class:`RunOutputs`, by attribute, never by string keys; what a
step hands on is typed all the way down (the gate decision a
:class:`~mooring.formats._gate.DecisionRecord`, each candidate a record).

Examples:
    >>> out = DeployOutput(deployed_as="canary", canary_weight=5)
    >>> DeployOutput.from_dict(out.to_dict()) == out
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self, TypeVar

from mooring.formats._candidate import CandidateRecord
from mooring.formats._gate import DecisionRecord
from mooring.formats._stored import plain
from mooring.pipeline._replay import ReplayReport

__all__ = [
    "DeployOutput",
    "EvaluateOutput",
    "GateOutput",
    "RegisterOutput",
    "RunOutputs",
    "StepOutput",
    "TrainOutput",
    "ValidateOutput",
]


def _stored(value: object) -> object:
    """``value`` as JSON-ready data: a record by its ``to_dict``, recursively."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, Mapping):
        return {k: _stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    return plain(value)


class _Record:
    """to_dict / from_dict for the output dataclasses (unknown keys are ignored); a field
    holding records is read back by its entry in ``_readers``."""

    _readers: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def to_dict(self) -> dict[str, object]:
        return {f.name: _stored(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        read = cls._readers
        return cls(**{k: read[k](v) if k in read else v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ValidateOutput(_Record):
    """The data contract held: sizes, warnings and the fingerprints later steps key on."""

    ok: bool
    report: str
    rows: int | None = None
    eval_rows: int | None = None
    #: Rows without a label (null, or NaN in a number column), left out of training and
    #: of the evaluation.
    unlabelled: int = 0
    eval_unlabelled: int = 0
    warnings: int = 0
    schema_fingerprint: str | None = None
    statistics_hash: str | None = None


@dataclass(frozen=True)
class TrainOutput(_Record):
    """The exported model folder and what training recorded about it."""

    model_dir: str
    training_record: str
    task: str
    epochs: int
    last_epoch: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None
    feature_spec_hash: str | None = None
    statistics_hash: str | None = None
    schema_hash: str | None = None
    parity_max_abs_diff: float | None = None
    resumed_from_epoch: int | None = None
    #: The model kind (mlp, linear, gbt) and, in a run of several, the candidate's name.
    kind: str | None = None
    name: str | None = None
    #: The input fingerprint this model is cached under (the registered lineage's model_key).
    model_key: str | None = None
    #: ``[[model.candidates]]``: every candidate's own output, by name (empty for one model).
    candidates: Mapping[str, TrainOutput] = field(default_factory=dict)

    _readers: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "candidates": lambda stored: {
            str(name): TrainOutput.from_dict(one) for name, one in dict(stored).items()
        }
    }

    def candidate(self, name: str | None) -> TrainOutput:
        """One candidate's output (this one when there are no candidates or no name)."""
        if name is None or not self.candidates:
            return self
        return self.candidates[name]


@dataclass(frozen=True)
class EvaluateOutput(_Record):
    """The evaluation report, its headline metrics, the operating threshold and the decision."""

    report: str
    report_json: str
    rows: int
    metrics: dict[str, float]
    blessed: bool
    decision: DecisionRecord
    threshold: float | None = None
    threshold_source: str | None = None
    baseline_version: int | None = None
    #: Statistics of the model's outputs on the eval data (JSON), frozen at registration.
    outputs: str | None = None
    #: The score map its performance is estimated from without labels (JSON; binary only).
    estimation: str | None = None
    #: Production's metrics on the same eval data (``baseline_version``), when compared.
    baseline_metrics: dict[str, float] | None = None
    #: ``[[model.candidates]]``: the one picked (``None``: none passed), the metric it was
    #: picked by, and every candidate's row (metrics, gates, serving figures, why).
    chosen: str | None = None
    select: str | None = None
    candidates: tuple[CandidateRecord, ...] = ()

    _readers: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "decision": DecisionRecord.read,
        "candidates": lambda rows: tuple(CandidateRecord.read(row) for row in rows),
    }


@dataclass(frozen=True)
class GateOutput(_Record):
    """The gate decision: blessed or not, and the failed gates' messages."""

    blessed: bool
    gates: int
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegisterOutput(_Record):
    """The registered version."""

    version: int
    manifest_sha256: str
    files: int | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class DeployOutput(_Record):
    """How the version was deployed: ``production``, ``canary`` (with its weight), ``shadow``
    or not."""

    deployed_as: str | None = None
    canary_weight: int | None = None


_T = TypeVar("_T")

StepOutput = (
    ValidateOutput
    | TrainOutput
    | EvaluateOutput
    | GateOutput
    | RegisterOutput
    | ReplayReport
    | DeployOutput
)


@dataclass
class RunOutputs:
    """The outputs of the steps completed so far in a run (``None``: not run, or skipped)."""

    validate: ValidateOutput | None = None
    train: TrainOutput | None = None
    evaluate: EvaluateOutput | None = None
    gate: GateOutput | None = None
    register: RegisterOutput | None = None
    replay: ReplayReport | None = None
    deploy: DeployOutput | None = None

    @property
    def validated(self) -> ValidateOutput:
        return _done(self.validate, "validate")

    @property
    def trained(self) -> TrainOutput:
        return _done(self.train, "train")

    @property
    def evaluated(self) -> EvaluateOutput:
        return _done(self.evaluate, "evaluate")

    @property
    def chosen(self) -> TrainOutput:
        """The trained model the run goes on with: the picked candidate, or the one model."""
        return self.trained.candidate(self.evaluated.chosen)

    @property
    def registered(self) -> RegisterOutput:
        return _done(self.register, "register")


def _done(output: _T | None, step: str) -> _T:
    if output is None:
        raise RuntimeError(f"the {step} step has not completed; the pipeline runs it before")
    return output
