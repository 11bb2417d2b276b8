"""One candidate's row of a run of several (``[[model.candidates]]``), typed.

The evaluate step writes a row per candidate: its ``name`` and model ``kind``, its
``model_dir``, headline ``metrics`` and their bootstrap ``intervals``, the calibration
error, the decision cost, the serving figures (``seconds_per_1000``, ``cost_per_1000``,
``size_bytes``), whether its gates ``blessed`` it or left it ``ungated``, the messages of
the gates it ``failed``, whether it was ``chosen`` and why (``reason``). The pipeline's
run record and step cache, the gate step and the registered run record read it back.

:meth:`CandidateRecord.read` reads any stored mapping without raising: a key it lacks
reads as its default, a key it does not know or whose value has the wrong type is kept as
it was (``extra``), and :meth:`CandidateRecord.to_dict` writes back the mapping it read.

Examples:
    >>> row = CandidateRecord.read({"name": "trees", "kind": "gbt", "blessed": True, "gpu": 1})
    >>> row.name, row.kind, row.blessed, row.failures, dict(row.extra)
    ('trees', 'gbt', True, (), {'gpu': 1})
    >>> row.to_dict()
    {'name': 'trees', 'kind': 'gbt', 'blessed': True, 'gpu': 1}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mooring.formats._stored import (
    Check,
    is_bool,
    is_mapping,
    is_optional_number,
    is_text,
    is_texts,
    read_fields,
    write_fields,
)

__all__ = ["CandidateRecord"]


def _is_optional_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


_CHECKS: dict[str, Check] = {
    "name": is_text,
    "kind": is_text,
    "model_dir": is_text,
    "metrics": is_mapping,
    "intervals": is_mapping,
    "calibration_ece": is_optional_number,
    "decision_cost_per_1000": is_optional_number,
    "seconds_per_1000": is_optional_number,
    "cost_per_1000": is_optional_number,
    "size_bytes": _is_optional_count,
    "blessed": is_bool,
    "ungated": is_bool,
    "failures": is_texts,
    "chosen": is_bool,
    "reason": is_text,
}


@dataclass(frozen=True)
class CandidateRecord:
    """A candidate's row: what it is, how it scored, served and was judged (see the module).

    Examples:
        >>> CandidateRecord(name="linear", failures=("auc low",)).to_dict()["failures"]
        ['auc low']
    """

    name: str = ""
    kind: str = ""
    model_dir: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    intervals: Mapping[str, Any] = field(default_factory=dict)
    calibration_ece: float | None = None
    decision_cost_per_1000: float | None = None
    seconds_per_1000: float | None = None
    cost_per_1000: float | None = None
    size_bytes: int | None = None
    blessed: bool = False
    ungated: bool = False
    failures: tuple[str, ...] = ()
    chosen: bool = False
    reason: str = ""
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields the stored mapping lacked (left out again on writing).
    missing: frozenset[str] = frozenset()

    @classmethod
    def read(cls, data: object) -> CandidateRecord:
        """The row of a stored mapping (anything else: an empty row), never raising."""
        if isinstance(data, CandidateRecord):
            return data
        if not isinstance(data, Mapping):
            return cls(missing=frozenset(_CHECKS))
        typed, extra, missing = read_fields(data, _CHECKS)
        failures = tuple(typed.pop("failures", ()))
        return cls(**typed, failures=failures, extra=extra, missing=missing)

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _CHECKS}
        return write_fields(values, self.extra, self.missing)
