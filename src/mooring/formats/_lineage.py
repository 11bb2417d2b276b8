"""A registered version's lineage, typed: where its model, data and code came from.

The register step records what a trained version was trained and evaluated on (the data
files and their sha256, the contract, statistics and feature-spec hashes, the pipeline
run, the code, how many workers trained it); an import records the file it came from
(its path, format, sha256 and signature, who imported it and why); every registration
adds the installed package versions and the statistics' hash. :class:`Lineage` holds
each of them as a field (``None``: not recorded), read by attribute only
(``lineage.eval_data``); :meth:`Lineage.to_dict` is the stored mapping.

:meth:`Lineage.read` reads any stored mapping without raising: a key it lacks stays
absent, a key it does not know or whose value has the wrong type is kept as it was
(``extra``), and :meth:`Lineage.to_dict` writes back the mapping it read.

Examples:
    >>> lineage = Lineage.read({"eval_data": "eval.csv", "training_workers": 2, "gpu": "a"})
    >>> lineage.eval_data, lineage.training_workers, lineage.run_id, dict(lineage.extra)
    ('eval.csv', 2, None, {'gpu': 'a'})
    >>> "run_id" in lineage.to_dict()
    False
    >>> Lineage.of(run_id="r1", reason=None).to_dict()
    {'run_id': 'r1', 'reason': None}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

from mooring.formats._stored import Check, is_optional_text, read_fields, write_fields

__all__ = ["VERSIONED_PACKAGES", "Lineage", "LineageFacts"]

#: The packages whose installed versions every registration records, by lineage field.
VERSIONED_PACKAGES = {
    "mooring": "mooring_version",
    "tensorflow": "tensorflow_version",
    "keras": "keras_version",
}


def _is_optional_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _is_optional_rows(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, Mapping) for v in value))


class LineageFacts(TypedDict, total=False):
    """The facts a lineage may record (each optional; ``None`` is stored as null)."""

    data_fingerprint: str | None
    eval_fingerprint: str | None
    train_data: str | None
    eval_data: str | None
    statistics_hash: str | None
    schema_hash: str | None
    schema_fingerprint: str | None
    contract_fingerprint: str | None
    feature_spec_hash: str | None
    model_key: str | None
    code_version: str | None
    source_sha256: str | None
    run_id: str | None
    training_workers: int | None
    training_engine: str | None
    training_restarts: int | None
    origin: str | None
    source_path: str | None
    source_format: str | None
    signature: str | None
    actor: str | None
    reason: str | None
    task: str | None
    allowed_ops: tuple[Mapping[str, Any], ...] | None
    label: str | None
    mooring_version: str | None
    tensorflow_version: str | None
    keras_version: str | None


_COUNTS = ("training_workers", "training_restarts")
_CHECKS: dict[str, Check] = {
    name: _is_optional_count
    if name in _COUNTS
    else _is_optional_rows
    if name == "allowed_ops"
    else is_optional_text
    for name in LineageFacts.__annotations__
}
#: The fields the model card's data section shows, in its order (beside older records'
#: ``data_files``, ``train`` and ``eval``, kept in ``extra``).
_DATA_KEYS = (
    "data_fingerprint",
    "statistics_hash",
    "schema_hash",
    "feature_spec_hash",
    "data_files",
    "train",
    "eval",
    "train_data",
    "eval_data",
    "eval_fingerprint",
)


@dataclass(frozen=True, eq=False)
class Lineage:
    """Where a registered version came from, field by field (equal when stored alike).

    Trained versions: ``data_fingerprint`` and ``eval_fingerprint`` (sha256 of the
    training and evaluation files named by ``train_data`` and ``eval_data``), the
    ``statistics_hash``, ``schema_hash``, ``schema_fingerprint``, ``contract_fingerprint``
    and ``feature_spec_hash`` it was built from, the pipeline's ``model_key`` and
    ``run_id``, the ``code_version`` and the code's ``source_sha256``, and
    ``training_workers``, ``training_engine`` and ``training_restarts``. Imported
    versions: ``origin`` (``imported``), ``source_path``, ``source_format``, the model
    file's ``source_sha256``, its ``signature``, the ``actor`` and ``reason``, its
    ``task`` and ``allowed_ops`` (``{"op", "reason"}`` each); evaluated on import:
    ``eval_data``, ``eval_fingerprint`` and the ``label`` column. Every version:
    ``mooring_version``, ``tensorflow_version`` and ``keras_version``.

    Examples:
        >>> Lineage(run_id="r1") == Lineage.read({"run_id": "r1"})
        True
    """

    data_fingerprint: str | None = None
    eval_fingerprint: str | None = None
    train_data: str | None = None
    eval_data: str | None = None
    statistics_hash: str | None = None
    schema_hash: str | None = None
    schema_fingerprint: str | None = None
    contract_fingerprint: str | None = None
    feature_spec_hash: str | None = None
    model_key: str | None = None
    code_version: str | None = None
    source_sha256: str | None = None
    run_id: str | None = None
    training_workers: int | None = None
    training_engine: str | None = None
    training_restarts: int | None = None
    origin: str | None = None
    source_path: str | None = None
    source_format: str | None = None
    signature: str | None = None
    actor: str | None = None
    reason: str | None = None
    task: str | None = None
    allowed_ops: tuple[Mapping[str, Any], ...] | None = None
    label: str | None = None
    mooring_version: str | None = None
    tensorflow_version: str | None = None
    keras_version: str | None = None
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields not recorded (left out on writing); ``None``: the fields that are ``None``.
    missing: frozenset[str] | None = None

    @classmethod
    def read(cls, data: object) -> Lineage:
        """The lineage of a stored mapping (anything else: an empty one), never raising."""
        if isinstance(data, Lineage):
            return data
        if not isinstance(data, Mapping):
            return cls()
        typed, extra, missing = read_fields(data, _CHECKS)
        if typed.get("allowed_ops") is not None:
            typed["allowed_ops"] = tuple(typed["allowed_ops"])
        return cls(**typed, extra=extra, missing=missing)

    @classmethod
    def of(cls, **facts: Unpack[LineageFacts]) -> Lineage:
        """A lineage recording ``facts``: each is written, a ``None`` one as null.

        Examples:
            >>> Lineage.of(contract_fingerprint=None).to_dict()
            {'contract_fingerprint': None}
        """
        return cls(**facts, missing=frozenset(_CHECKS) - set(facts))

    def updated(self, **facts: Unpack[LineageFacts]) -> Lineage:
        """This lineage with ``facts`` recorded too (a ``None`` one as null).

        Examples:
            >>> Lineage.of(run_id="r1").updated(label="y").to_dict()
            {'run_id': 'r1', 'label': 'y'}
        """
        given = set(facts)
        extra = {k: v for k, v in self.extra.items() if k not in given}
        return replace(self, **facts, extra=extra, missing=self._missing() - given)

    def merged(self, other: Lineage) -> Lineage:
        """This lineage with everything ``other`` records written over it (``{**a, **b}``)."""
        return Lineage.read({**self.to_dict(), **other.to_dict()})

    def stamped(self, installed: Mapping[str, str | None], statistics_hash: str) -> Lineage:
        """This lineage with what the caller did not record filled in: each package's
        ``installed`` version (by package name, :data:`VERSIONED_PACKAGES`) where none is
        recorded, and ``statistics_hash`` where none (or an empty one) is.

        Examples:
            >>> Lineage.of(keras_version="3").stamped({"keras": "4", "mooring": "1"}, "ab")
            Lineage({'statistics_hash': 'ab', 'mooring_version': '1', 'keras_version': '3'})
        """
        stored = self.to_dict()
        for package, key in VERSIONED_PACKAGES.items():
            if stored.get(key) is None and package in installed:
                stored[key] = installed[package]
        if statistics_hash and not stored.get("statistics_hash"):
            stored["statistics_hash"] = statistics_hash
        return Lineage.read(stored)

    def _missing(self) -> frozenset[str]:
        if self.missing is not None:
            return self.missing
        return frozenset(name for name in _CHECKS if getattr(self, name) is None)

    @property
    def data(self) -> dict[str, Any]:
        """What it records about the version's data, as the model card shows it."""
        stored = self.to_dict()
        return {k: stored[k] for k in _DATA_KEYS if k in stored}

    @property
    def package_versions(self) -> dict[str, str | None]:
        """The recorded version of each of :data:`VERSIONED_PACKAGES`, by package."""
        return {package: getattr(self, key) for package, key in VERSIONED_PACKAGES.items()}

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _CHECKS}
        return write_fields(values, self.extra, self._missing())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lineage):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Lineage({self.to_dict()!r})"
