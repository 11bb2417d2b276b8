"""A training run's record, typed: the ``run.json`` written beside a trained model.

Every model kind writes one (``"format": "mooring.training-run"``): when it ran, the
installed ``versions``, the model ``params``, ``kind``, ``seed`` and ``task``, the
``label`` encoding, the ``features`` and ``crosses``, the spec's, statistics' and
schema's hashes, the ``data`` counts, the training ``plan``, each epoch's metrics, the
best epoch and whether it stopped early or resumed, the ``timings``, the ``warnings``,
the export ``parity`` check, the ``model_dir``, and what a kind adds (``trees`` and
``feature_importances``, ``linear_fit``, ``distributed``). The register step starts a
version's run record from it.

Records written before the format had its own name say ``"format": "mooring.run"`` (the
pipeline run's ``kind``); they read the same. :meth:`TrainingRun.read` reads any stored
mapping without raising: a key it lacks reads as its default, a key it does not know or
whose value has the wrong type is kept as it was (``extra``), and
:meth:`TrainingRun.to_dict` writes back the mapping it read.

Examples:
    >>> old = TrainingRun.read({"format": "mooring.run", "kind": "gbt", "trees": 40, "x": 1})
    >>> old.kind, old.trees, old.epochs, dict(old.extra), old.is_training_run
    ('gbt', 40, (), {'x': 1}, True)
    >>> old.to_dict()
    {'format': 'mooring.run', 'kind': 'gbt', 'trees': 40, 'x': 1}
    >>> TrainingRun.read({"kind": "mlp"}).updated(distributed={"workers": 2}).to_dict()
    {'kind': 'mlp', 'distributed': {'workers': 2}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mooring.formats._stored import (
    Check,
    is_bool,
    is_mapping,
    is_optional_text,
    is_text,
    is_texts,
    read_fields,
    write_fields,
)

__all__ = ["LEGACY_TRAINING_FORMAT", "TRAINING_FORMAT", "TRAINING_FORMATS", "TrainingRun"]

#: The ``format`` of a training run's record.
TRAINING_FORMAT = "mooring.training-run"
#: The ``format`` such records had before (the pipeline run's ``kind`` too); read the same.
LEGACY_TRAINING_FORMAT = "mooring.run"
TRAINING_FORMATS = (TRAINING_FORMAT, LEGACY_TRAINING_FORMAT)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_optional_count(value: Any) -> bool:
    return value is None or _is_count(value)


def _is_optional_mapping(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


_CHECKS: dict[str, Check] = {
    "format": is_text,
    "version": _is_count,
    "started": is_optional_text,
    "finished": is_optional_text,
    "versions": is_mapping,
    "params": is_mapping,
    "kind": is_text,
    "seed": _is_optional_count,
    "task": is_text,
    "label": is_mapping,
    "features": is_mapping,
    "crosses": is_texts,
    "feature_spec_hash": is_optional_text,
    "statistics_hash": is_optional_text,
    "schema_hash": is_optional_text,
    "data": is_mapping,
    "plan": is_mapping,
    "epochs": _is_rows,
    "best_epoch": _is_optional_count,
    "stopped_early": is_bool,
    "resumed_from": _is_optional_count,
    "timings": is_mapping,
    "warnings": is_texts,
    "trees": _is_optional_count,
    "feature_importances": _is_optional_mapping,
    "linear_fit": _is_optional_mapping,
    "distributed": _is_optional_mapping,
    "parity": _is_optional_mapping,
    "model_dir": is_text,
}
_SEQUENCES = ("crosses", "epochs", "warnings")


@dataclass(frozen=True)
class TrainingRun:
    """What one training run recorded (see the module for each field); read from a
    mapping without a ``format``, its ``format`` is ``""``.

    Examples:
        >>> TrainingRun.read({"timings": {"fit_seconds": 2.5}}).timings["fit_seconds"]
        2.5
    """

    format: str = TRAINING_FORMAT
    version: int = 1
    started: str | None = None
    finished: str | None = None
    versions: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = ""
    seed: int | None = None
    task: str = ""
    label: Mapping[str, Any] = field(default_factory=dict)
    features: Mapping[str, Any] = field(default_factory=dict)
    crosses: tuple[str, ...] = ()
    feature_spec_hash: str | None = None
    statistics_hash: str | None = None
    schema_hash: str | None = None
    #: Row counts: ``train_rows``, ``validation_rows``, ``dropped_rows_without_label``...
    data: Mapping[str, Any] = field(default_factory=dict)
    plan: Mapping[str, Any] = field(default_factory=dict)
    #: Each epoch's metrics, in order.
    epochs: tuple[Mapping[str, Any], ...] = ()
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from: int | None = None
    timings: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    trees: int | None = None
    feature_importances: Mapping[str, Any] | None = None
    linear_fit: Mapping[str, Any] | None = None
    distributed: Mapping[str, Any] | None = None
    parity: Mapping[str, Any] | None = None
    model_dir: str = ""
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields the stored mapping lacked (left out again on writing).
    missing: frozenset[str] = frozenset()

    @classmethod
    def read(cls, data: object) -> TrainingRun:
        """The record of a stored mapping (anything else: an empty record), never raising."""
        if not isinstance(data, Mapping):
            return cls(missing=frozenset(_CHECKS))
        typed, extra, missing = read_fields(data, _CHECKS)
        for name in _SEQUENCES:
            if name in typed:
                typed[name] = tuple(typed[name])
        typed.setdefault("format", "")  # not recorded: not known to be a training run
        return cls(**typed, extra=extra, missing=missing)

    @classmethod
    def load(cls, path: Path) -> TrainingRun:
        """The record in the file ``path`` (an empty record when it is absent or not JSON)."""
        try:
            return cls.read(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            return cls.read(None)

    @property
    def is_training_run(self) -> bool:
        """Its ``format`` is a training run's (today's or the older name)."""
        return self.format in TRAINING_FORMATS

    def updated(self, **facts: Any) -> TrainingRun:
        """This record with ``facts`` written over it, as a dict assignment would."""
        return TrainingRun.read({**self.to_dict(), **facts})

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _CHECKS}
        return write_fields(values, self.extra, self.missing)
