"""The registry's records: what a version, a deployment and an audit event hold.

Plain frozen dataclasses, so the serving and monitoring layers can read them
without touching the database types. ``to_dict()`` gives the JSON shape the CLI
prints with ``--json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from mooring.formats._gate import DecisionRecord
from mooring.formats._lineage import Lineage
from mooring.formats._version_record import VersionRecord

__all__ = [
    "AuditEvent",
    "AuditProblem",
    "AuditReport",
    "Deployment",
    "ModelSummary",
    "ModelVersion",
    "VersionArtifact",
]


@dataclass(frozen=True)
class ModelVersion:
    """One immutable registered version of a model.

    ``statistics``, ``manifest`` and ``model_card`` are filled by
    :meth:`Registry.get` and left ``None`` in listings, where they would be heavy.
    ``run_record`` is the stored JSON; :attr:`record` reads it, typed. ``lineage`` is
    typed (:class:`~mooring.formats._lineage.Lineage`, read by attribute:
    ``mv.lineage.eval_data``; ``mv.lineage.to_dict()`` is its stored form); ``gate`` is the stored
    decision, :attr:`decision` the same typed.
    """

    name: str
    version: int
    status: str
    created_at: str
    created_by: str
    artifact_key: str
    manifest_sha256: str
    file_count: int
    size_bytes: int
    blessed: bool
    parent_version: int | None
    description: str | None
    lineage: Lineage
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    params: dict[str, Any]
    run_record: dict[str, Any]
    aliases: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = None
    statistics: dict[str, Any] | None = None
    model_card: str | None = None

    def __post_init__(self) -> None:
        # A stored mapping given as the lineage is read as one (it reads the same).
        object.__setattr__(self, "lineage", Lineage.read(self.lineage))

    @cached_property
    def decision(self) -> DecisionRecord | None:
        """The stored gate decision, typed (:class:`~mooring.formats._gate.DecisionRecord`);
        ``None`` for a version registered without mooring's evaluation."""
        return DecisionRecord.of(self.gate)

    @property
    def ungated(self) -> bool:
        """Not blessed because no gate judged it (:attr:`DecisionRecord.is_ungated`)."""
        return not self.blessed and self.decision is not None and self.decision.is_ungated

    @property
    def verdict(self) -> str:
        """``blessed``, ``not blessed`` (a gate failed), ``ungated`` or ``unevaluated``."""
        if self.blessed:
            return "blessed"
        return "unevaluated" if self.decision is None else self.decision.verdict

    @property
    def ref(self) -> str:
        """``name@version``, the way the CLI and logs name a version."""
        return f"{self.name}@{self.version}"

    @cached_property
    def record(self) -> VersionRecord:
        """What the version records, typed and read tolerantly (:class:`VersionRecord`):
        its run record's schema, features, threshold, task, model family, references….

        Examples:
            >>> mv.record.task, mv.record.kind, mv.record.run.pipeline_run  # doctest: +SKIP
            ('binary', 'gbt', '20240501-120000-ab12')
        """
        return VersionRecord.read(
            lineage=self.lineage,
            metrics=self.metrics,
            gate=self.gate,
            statistics=self.statistics,
            params=self.params,
            run_record=self.run_record,
            description=self.description,
            parent_version=self.parent_version,
        )

    @property
    def inputs(self) -> dict[str, str] | None:
        """The columns this version reads and their contract types (``integer``,
        ``float``, ``string``…), from its run record; ``None`` when it records neither its
        features nor its contract (a version registered without a run record)."""
        return self.record.inputs

    @property
    def operating_threshold(self) -> float | None:
        """The decision threshold chosen at evaluation and registered with the version.

        ``None`` for versions registered without one (their ``mooring.json`` says 0.5).
        """
        return self.record.operating_threshold

    def to_dict(self, *, heavy: bool = False) -> dict[str, Any]:
        """JSON-ready mapping; ``heavy=True`` includes manifest, statistics and card."""
        data = asdict(self)
        data["lineage"] = self.lineage.to_dict()
        data["aliases"] = list(self.aliases)
        data["ungated"] = self.ungated
        if not heavy:
            for key in ("manifest", "statistics", "model_card"):
                data.pop(key)
        return data


@dataclass(frozen=True)
class VersionArtifact:
    """A file set attached to a version after registration (e.g. a TF Lite export).

    It lives under its own artifact key with its own manifest (the sha256 of
    every file); the version's own manifest is never changed. ``details`` is
    what the producer recorded (for an export: sizes, metric deltas, latency).
    """

    model: str
    version: int
    artifact: str
    created_at: str
    created_by: str
    artifact_key: str
    manifest: dict[str, Any]
    manifest_sha256: str
    size_bytes: int
    details: dict[str, Any]

    @property
    def ref(self) -> str:
        """``name@version:artifact``."""
        return f"{self.model}@{self.version}:{self.artifact}"

    @property
    def files(self) -> dict[str, str]:
        """Relative path → sha256 of every stored file."""
        return {path: str(entry["sha256"]) for path, entry in self.manifest["files"].items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (with ``files``: path → sha256)."""
        data = asdict(self)
        data["files"] = self.files
        return data


@dataclass(frozen=True)
class Deployment:
    """What serves a model: the production version, an optional canary and its share.

    ``revision`` grows by one at every change, so a server can poll cheaply for
    a new deployment. ``previous`` holds earlier production versions, newest
    last: ``rollback`` restores the last one. ``shadow`` is a version that receives a
    copy of ``shadow_rate`` (0 < rate <= 1) of the requests production answers and
    never answers a client (``None``, rate 0: no shadow).
    """

    name: str
    production: int | None = None
    canary: int | None = None
    canary_weight: int = 0
    revision: int = 0
    updated_at: str | None = None
    previous: tuple[int, ...] = ()
    shadow: int | None = None
    shadow_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        data["previous"] = list(self.previous)
        return data


@dataclass(frozen=True)
class ModelSummary:
    """One line of ``mooring models list``."""

    name: str
    created_at: str
    latest_version: int | None
    versions: int
    production: int | None
    canary: int | None
    canary_weight: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class AuditEvent:
    """One row of the append-only audit log, linked to the previous row by its hash."""

    seq: int
    created_at: str
    actor: str
    action: str
    model: str | None
    version: int | None
    reason: str | None
    forced: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class AuditProblem:
    """A place where the audit chain is broken, or where the registry holds what its
    events do not explain: which event, what kind, what it means and how to fix it.

    Kinds: ``edited``, ``deleted``, ``reordered``, ``unkeyed``, ``unsealed`` (the chain);
    ``head`` (the recorded head's row is missing); ``state`` (a version, deployment or
    alias no event explains; ``seq`` is the event whose result was overridden, 0 when
    none was).
    """

    seq: int
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class AuditReport:
    """Result of verifying the audit chain and the registry's state against it."""

    events: int
    head_seq: int
    problems: tuple[AuditProblem, ...] = field(default_factory=tuple)
    #: True when the chain was checked with the audit key (HMAC), not plain sha256.
    keyed: bool = False
    #: Plain sha256 events written before the registry had a key (a prefix bound by
    #: the keyed event after it); reported, not a problem.
    legacy_events: int = 0

    @property
    def ok(self) -> bool:
        """True when every event matches its hash, the links are intact and the events
        explain every version, deployment and alias."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "keyed": self.keyed,
            "legacy_events": self.legacy_events,
            "problems": [p.to_dict() for p in self.problems],
        }
