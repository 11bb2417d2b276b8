"""A registered version's record, typed: what its registration describes and its run record.

:class:`VersionRecord` is what :meth:`mooring.registry.Registry.register` takes and
``ModelVersion.record`` gives back: lineage, metrics, gate decision, training statistics,
parameters, the card's texts, the parent version, and the run record (:class:`RunRecord`,
stored as JSON in the version's ``run_record``): the schema, the features, the operating
threshold and its source, the model family (``kind``), the task, the candidates, the
frozen references (:class:`References`), the evaluation report folder, the pipeline run.

:meth:`RunRecord.read` reads any stored mapping without raising: a key that is missing,
null or of the wrong type reads as ``None`` and stays, as it was, in ``extra``, so
:meth:`RunRecord.to_dict` writes back the mapping it read. Where a version's task, model
family, candidate and report come from is decided here, once (:class:`VersionRecord`):
the run record first, then the parameters, then the lineage.

Examples:
    >>> run = RunRecord.read({"task": "binary", "threshold": 0.4, "seed": 7})
    >>> run.task, run.threshold, dict(run.extra)
    ('binary', 0.4, {'seed': 7})
    >>> run.to_dict() == {"task": "binary", "threshold": 0.4, "seed": 7}
    True
    >>> old = VersionRecord.read(params={"kind": "gbt"}, lineage={"task": "regression"})
    >>> old.kind, old.task, old.origin
    ('gbt', 'regression', 'imported')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Unpack

from mooring.formats._candidate import CandidateRecord
from mooring.formats._gate import DecisionRecord
from mooring.formats._lineage import Lineage
from mooring.formats._stored import Check, is_mapping, is_number, is_text, read_fields
from mooring.formats._training_run import TRAINING_FORMATS

__all__ = [
    "REFERENCES",
    "REPORT_KEYS",
    "TASKS",
    "Candidates",
    "Origin",
    "References",
    "RunFacts",
    "RunRecord",
    "VersionRecord",
    "recorded_candidate",
    "recorded_family",
    "recorded_report",
    "recorded_task",
]

#: ``trained``: mooring trained it (a pipeline run, a training run's record);
#: ``imported``: a SavedModel registered by hand.
Origin = Literal["trained", "imported"]
#: The tasks a version may record; any other value reads as not recorded.
TASKS = ("binary", "multiclass", "regression")
#: The run-record key holding a version's frozen references.
REFERENCES = "references"
#: Where a version may record its evaluation report (a folder holding report.html, or the file).
REPORT_KEYS = ("evaluation_report", "report")


def _is_rows(value: Any) -> bool:
    # An empty list stays in ``extra``: ``()`` means "not recorded".
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _split(
    data: Mapping[Any, Any], checks: Mapping[str, Check]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` as (the keys whose values pass their check, everything else as it was);
    no check passes ``None``, so a null stays in ``extra``."""
    typed, extra, _ = read_fields(data, checks)
    return typed, extra


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


_REFERENCE_KEYS = ("segments", "outputs", "evaluation", "calibration", "estimation", "settings")


@dataclass(frozen=True)
class References:
    """What a version is judged against, frozen at registration (``run_record["references"]``).

    ``segments`` (``{column: {value: statistics}}``), ``outputs`` (statistics of its outputs
    on the evaluation data), ``evaluation`` (its metrics and the data they were measured on),
    ``calibration`` (drift calibration), ``estimation`` (the score map its performance is
    estimated from without labels) and the ``settings`` it was calibrated with;
    :mod:`mooring.monitoring._baselines` writes and reads them.

    Examples:
        >>> References.read({"outputs": None, "evaluation": {"data": "eval.csv"}}).evaluation_data
        'eval.csv'
    """

    segments: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    evaluation: Mapping[str, Any] | None = None
    calibration: Mapping[str, Any] | None = None
    estimation: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, data: object) -> References:
        """The references of a stored mapping (anything else: none), never raising."""
        if not isinstance(data, Mapping):
            return cls()
        typed, extra = _split(data, dict.fromkeys(_REFERENCE_KEYS, is_mapping))
        return cls(**typed, extra=extra)

    @property
    def evaluation_fingerprint(self) -> str | None:
        """The sha256 of the data the evaluation metrics were measured on, if recorded."""
        value = (self.evaluation or {}).get("data_fingerprint")
        return str(value) if value else None

    @property
    def evaluation_data(self) -> str | None:
        """The name of the file the evaluation metrics were measured on, if recorded."""
        data = (self.evaluation or {}).get("data")
        return str(data) if data else None

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping: every field that is recorded, then ``extra`` as it was read."""
        out = dict(self.extra)
        for key in _REFERENCE_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = _plain(value)
        return out


@dataclass(frozen=True)
class Candidates:
    """A run of several candidates: the one chosen, the select rule, and every candidate's row.

    Stored as ``chosen_candidate``, ``select`` and ``candidates`` (each only when recorded).
    """

    chosen: str | None = None
    select: str | None = None
    results: tuple[CandidateRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The run-record keys it stands for (only those recorded)."""
        out: dict[str, Any] = {}
        if self.chosen is not None:
            out["chosen_candidate"] = self.chosen
        if self.select is not None:
            out["select"] = self.select
        if self.results:
            out["candidates"] = [row.to_dict() for row in self.results]
        return out


_CANDIDATE_KEYS = ("chosen_candidate", "select", "candidates")
_RUN_CHECKS: dict[str, Check] = {
    "schema": is_mapping,
    "features": is_mapping,
    "threshold": is_number,
    "threshold_source": is_text,
    "kind": is_text,
    "task": is_text,
    "chosen_candidate": is_text,
    "select": is_text,
    "candidates": _is_rows,
    REFERENCES: is_mapping,
    "evaluation_report": is_text,
    "pipeline_run": is_text,
    "prediction_statistics": is_mapping,
}
# The fields stored under their own name, as they are.
_PLAIN_FIELDS = (
    "schema",
    "features",
    "threshold",
    "threshold_source",
    "kind",
    "task",
    "evaluation_report",
    "pipeline_run",
    "prediction_statistics",
)


class RunFacts(TypedDict, total=False):
    """The facts :meth:`RunRecord.updated` records (each optional)."""

    schema: Mapping[str, Any] | None
    features: Mapping[str, Any] | None
    threshold: float | None
    threshold_source: str | None
    kind: str | None
    task: str | None
    candidates: Candidates | None
    references: References | None
    evaluation_report: str | None
    pipeline_run: str | None
    prediction_statistics: Mapping[str, Any] | None


@dataclass(frozen=True)
class RunRecord:
    """A version's run record: what its training and evaluation recorded.

    ``None`` means not recorded. ``kind`` is the model family (``mlp``, ``gbt``,
    ``linear``…); ``schema`` the ``mooring.schema`` mapping the data was validated with;
    ``features`` the features the model reads (name → description); ``threshold`` the
    operating threshold the evaluation chose and ``threshold_source`` how;
    ``evaluation_report`` the evaluation report's folder; ``pipeline_run`` the id of the
    ``mooring run`` that registered it; ``prediction_statistics`` output statistics stored
    before references existed. ``extra`` holds every other key as it was stored (the
    training run's ``seed``, ``epochs``, ``timings``…, and any key stored null or with a
    value of the wrong type).

    Examples:
        >>> RunRecord(kind="gbt", extra={"seed": 1}).to_dict() == {"seed": 1, "kind": "gbt"}
        True
    """

    schema: Mapping[str, Any] | None = None
    features: Mapping[str, Any] | None = None
    threshold: float | None = None
    threshold_source: str | None = None
    kind: str | None = None
    task: str | None = None
    candidates: Candidates | None = None
    references: References | None = None
    evaluation_report: str | None = None
    pipeline_run: str | None = None
    prediction_statistics: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, data: object) -> RunRecord:
        """The record of a stored mapping (anything else: an empty record), never raising.

        Examples:
            >>> RunRecord.read({"threshold": "high", "kind": None}).threshold is None
            True
            >>> RunRecord.read(["not", "a", "mapping"]) == RunRecord()
            True
        """
        if not isinstance(data, Mapping):
            return cls()
        typed, extra = _split(data, _RUN_CHECKS)
        chosen, select, rows = (typed.pop(key, None) for key in _CANDIDATE_KEYS)
        candidates = (
            None
            if chosen is None and select is None and rows is None
            else Candidates(
                chosen=chosen,
                select=select,
                results=tuple(CandidateRecord.read(row) for row in rows or ()),
            )
        )
        references = typed.pop(REFERENCES, None)
        return cls(
            **typed,
            candidates=candidates,
            references=None if references is None else References.read(references),
            extra=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping: ``extra``, then every field that is recorded.

        ``RunRecord.read(data).to_dict() == data`` for every JSON mapping ``data``.
        """
        out = dict(self.extra)
        for key in _PLAIN_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = _plain(value)
        if self.candidates is not None:
            out.update(self.candidates.to_dict())
        if self.references is not None:
            out[REFERENCES] = self.references.to_dict()
        return out

    def updated(self, **facts: Unpack[RunFacts]) -> RunRecord:
        """This record with ``facts`` recorded as a dict assignment would: a fact given as
        ``None`` is stored as null (its key is kept), ``candidates`` sets all three keys.

        Examples:
            >>> RunRecord().updated(threshold=None, kind="gbt").to_dict()
            {'threshold': None, 'kind': 'gbt'}
        """
        data = self.to_dict()
        for name, value in facts.items():
            if name == "candidates":
                given = value if isinstance(value, Candidates) else Candidates()
                data["chosen_candidate"], data["select"] = given.chosen, given.select
                data["candidates"] = [row.to_dict() for row in given.results] if value else None
            elif isinstance(value, References):
                data[name] = value.to_dict()
            else:
                data[name] = _plain(value)
        return RunRecord.read(data)

    @property
    def origin(self) -> Origin:
        """``trained`` when a pipeline run registered it or it is a training run's record."""
        trained = self.pipeline_run is not None or self.extra.get("format") in TRAINING_FORMATS
        return "trained" if trained else "imported"

    @property
    def operating_threshold(self) -> float | None:
        """The threshold as a float (``None`` when not recorded)."""
        return None if self.threshold is None else float(self.threshold)

    @property
    def inputs(self) -> dict[str, str] | None:
        """The columns the model reads and their contract types (``integer``, ``float``,
        ``string``…); ``None`` without both the features and the schema's columns.

        Examples:
            >>> schema = {"columns": {"age": {"type": "integer"}}}
            >>> RunRecord(schema=schema, features={"age": {}, "x": {}}).inputs
            {'age': 'integer', 'x': 'unknown'}
        """
        if self.features is None or self.schema is None:
            return None
        columns = self.schema.get("columns")
        if not isinstance(columns, Mapping):
            return None
        out: dict[str, str] = {}
        for name in self.features:
            column = columns.get(name)
            out[str(name)] = str(
                column.get("type", "unknown") if isinstance(column, Mapping) else "unknown"
            )
        return out


def _named(key: str, sources: Sequence[Mapping[str, Any] | None], accept: Check) -> str | None:
    """The first source's ``key`` that is a string ``accept`` takes."""
    for source in sources:
        value = source.get(key) if isinstance(source, Mapping) else None
        if isinstance(value, str) and accept(value):
            return value
    return None


def recorded_task(*sources: Mapping[str, Any] | None) -> str | None:
    """The first task among ``sources`` that is one of :data:`TASKS`.

    Examples:
        >>> recorded_task({"task": "ranking"}, {"task": "binary"}), recorded_task(None)
        ('binary', None)
    """
    return _named("task", sources, lambda task: task in TASKS)


def recorded_family(*sources: Mapping[str, Any] | None) -> str | None:
    """The first model family (``kind``) among ``sources``; ``mlp`` for mooring's own MLP
    parameters from before the kind was recorded (``hidden`` layers, ``builder = "mlp"``).

    Examples:
        >>> recorded_family({}, {"kind": "gbt"}), recorded_family({"hidden": [8]})
        ('gbt', 'mlp')
        >>> recorded_family() is None
        True
    """
    kind = _named("kind", sources, bool)
    if kind is not None:
        return kind
    maps = [s for s in sources if isinstance(s, Mapping)]
    return "mlp" if any("hidden" in s or s.get("builder") == "mlp" for s in maps) else None


def recorded_candidate(*sources: Mapping[str, Any] | None) -> str | None:
    """The candidate a run of several chose: the first ``candidate`` or ``chosen_candidate``.

    Examples:
        >>> recorded_candidate({"chosen_candidate": "trees"}, {"candidate": "linear"})
        'trees'
    """
    for source in sources:
        found = _named("candidate", [source], bool) or _named("chosen_candidate", [source], bool)
        if found is not None:
            return found
    return None


def recorded_report(*sources: Mapping[str, Any] | None) -> str | None:
    """The first evaluation report a source names (:data:`REPORT_KEYS`, or ``report``,
    ``folder`` or ``path`` under ``evaluation``).

    Examples:
        >>> recorded_report({}, {"evaluation": {"folder": "reports/v3"}})
        'reports/v3'
    """
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        nested = source.get("evaluation")
        found = _named_any(source, REPORT_KEYS) or (
            _named_any(nested, ("report", "folder", "path"))
            if isinstance(nested, Mapping)
            else None
        )
        if found is not None:
            return found
    return None


def _named_any(source: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    return next((v for k in keys if isinstance(v := source.get(k), str) and v), None)


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class VersionRecord:
    """What a version's registration describes: lineage (a
    :class:`~mooring.formats._lineage.Lineage`; a mapping given is read as one), metrics,
    gate decision (a :class:`~mooring.formats._gate.DecisionRecord` or its stored mapping;
    ``None``: not blessed), training statistics (the drift baseline), parameters, the run
    record, the card's ``description``, ``intended_use`` and ``limitations``, and the
    parent version.

    Examples:
        >>> VersionRecord(run=RunRecord(task="binary"), params={"task": "regression"}).task
        'binary'
    """

    lineage: Lineage = field(default_factory=Lineage)
    metrics: Mapping[str, Any] | None = None
    gate: DecisionRecord | Mapping[str, Any] | None = None
    statistics: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    run: RunRecord = field(default_factory=RunRecord)
    description: str | None = None
    intended_use: str | None = None
    limitations: Sequence[str] | None = None
    parent_version: int | None = None

    def __post_init__(self) -> None:
        # A stored mapping given as the lineage is read as one (it records the same).
        object.__setattr__(self, "lineage", Lineage.read(self.lineage))

    @classmethod
    def read(
        cls,
        *,
        lineage: object = None,
        metrics: object = None,
        gate: object = None,
        statistics: object = None,
        params: object = None,
        run_record: object = None,
        description: object = None,
        parent_version: object = None,
    ) -> VersionRecord:
        """The record of a stored version, never raising: a value of the wrong type reads
        as empty (mappings) or ``None``."""
        parent = parent_version
        return cls(
            lineage=Lineage.read(lineage),
            metrics=_mapping(metrics),
            gate=DecisionRecord.of(gate),
            statistics=dict(statistics) if isinstance(statistics, Mapping) else None,
            params=_mapping(params),
            run=RunRecord.read(run_record),
            description=description if isinstance(description, str) else None,
            parent_version=parent
            if isinstance(parent, int) and not isinstance(parent, bool)
            else None,
        )

    @property
    def decision(self) -> DecisionRecord | None:
        """The gate decision, typed (a stored mapping read); ``None`` when not evaluated."""
        return DecisionRecord.of(self.gate)

    def _sources(self) -> tuple[Mapping[str, Any] | None, ...]:
        """Where task, family and candidate are looked for, in order."""
        return (self.run.to_dict(), self.params, self.lineage.to_dict())

    @property
    def task(self) -> str | None:
        """The task (one of :data:`TASKS`): the run record's, else the parameters', else
        the lineage's."""
        return recorded_task(*self._sources())

    @property
    def kind(self) -> str | None:
        """The model family, from the same places in the same order as :attr:`task`."""
        return recorded_family(*self._sources())

    @property
    def candidate(self) -> str | None:
        """The candidate chosen when a run trained several (same places as :attr:`task`)."""
        return recorded_candidate(*self._sources())

    @property
    def origin(self) -> Origin:
        """``trained`` or ``imported`` (:attr:`RunRecord.origin`)."""
        return self.run.origin

    @property
    def report(self) -> str | None:
        """The evaluation report it names: the run record's, else the lineage's."""
        return recorded_report(self.run.to_dict(), self.lineage.to_dict())

    @property
    def inputs(self) -> dict[str, str] | None:
        """The columns it reads and their contract types (:attr:`RunRecord.inputs`)."""
        return self.run.inputs

    @property
    def operating_threshold(self) -> float | None:
        """The decision threshold chosen at evaluation, ``None`` when none was recorded."""
        return self.run.operating_threshold
