"""What production's clients would get from another version: the door's own answer.

A version put beside production (canary, shadow) or in its place (promote) answers the
requests production's clients send. Those requests carry production's inputs (the door
refuses a request without one of them), so one such request is built from production's
signature, and the server's own decoder (:mod:`mooring.formats._columns` for a columnar
model, :mod:`mooring.formats._tensors` for tensor inputs: the functions the REST, v2 and
gRPC front ends call) is run on it against the other version's signature, taking the
fields that version's contract lets a request carry besides its inputs (its label,
excluded columns: taken and ignored, as the server does). When the decoder refuses it,
its message is the 400 the clients would get; when it decodes, the server answers them.

A version's signature comes from its ``mooring.json`` (``signature.inputs``: dtype and
shape per column, as every model mooring trains or imports records it); a version whose
artifact records none is described by its run record's inputs (numbers as ``float32``,
everything else as text: how mooring exports a trained model's columns). A version that
records neither is not judged.

Values are checked by type only: a value outside the version's contract ranges is a
question of data, not of the request's shape, and is answered by ``[serving]
out_of_range``/``unseen`` and ``[contract] critical`` at the door.

Examples:
    >>> from mooring.formats._model import METADATA_FILE, TensorInfo
    >>> old = Door({"age": TensorInfo("age", "float32", (None,)),
    ...             "reject": TensorInfo("reject", "float32", (None,))})
    >>> new = Door({"age": TensorInfo("age", "float32", (None,))}, frozenset({"reject"}))
    >>> new.answer(old.request()) is None  # `reject` is a column new's contract knows
    True
    >>> Door({"age": TensorInfo("age", "float32", (None,))}).answer(old.request())
    "instances[0]: unexpected field 'reject'; the model's inputs are: age"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mooring.errors import InvalidRequestError
from mooring.formats._columns import InputPolicy, columns_from_rows
from mooring.formats._model import METADATA_FILE, TensorInfo
from mooring.formats._tensors import tensors_from_rows
from mooring.formats._version_record import RunRecord

__all__ = ["Door", "door_of"]

_NUMBERS = frozenset({"integer", "float"})
_SAMPLE = {"string": "a", "bool": True}


@dataclass(frozen=True)
class Door:
    """A version's door: its signature's inputs by column name, and the other fields its
    contract lets a request carry (taken and ignored)."""

    inputs: dict[str, TensorInfo]
    ignored: frozenset[str] = frozenset()
    #: Where the inputs were read: ``mooring.json`` or the run record.
    source: str = METADATA_FILE
    #: One value per column this version's contract names, for the request's values.
    domains: Mapping[str, Any] = field(default_factory=dict)

    @property
    def columnar(self) -> bool:
        """Every input is one ``[None]`` column, decoded as the server decodes such a model."""
        return all(info.is_column for info in self.inputs.values())

    def request(self) -> dict[str, Any]:
        """A predict body this version's clients send: one row, every input with a value of
        its type (a value of its domain when the contract names one)."""
        row = {name: self.domains.get(name, _value(info)) for name, info in self.inputs.items()}
        return {"instances": [row]}

    def answer(self, body: Mapping[str, Any]) -> str | None:
        """The door's verdict on ``body`` (``{"instances": [...]}``): ``None`` when the
        server decodes it (and answers), else the 400's message."""
        policy = InputPolicy(ignored=self.ignored)
        decode = columns_from_rows if self.columnar else tensors_from_rows
        try:
            decode(body["instances"], self.inputs, where="instances", policy=policy)
        except InvalidRequestError as exc:
            return str(exc)
        return None


def _value(info: TensorInfo) -> Any:
    """A value of ``info``'s dtype and shape (a number, text or a boolean; nested lists)."""
    if info.is_string or info.dtype in _SAMPLE:
        one: Any = _SAMPLE.get(info.dtype, _SAMPLE["string"])
    elif info.dtype.startswith(("int", "uint")):
        one = 1
    else:
        one = 0.5
    for size in reversed(info.inner):
        one = [one] * (size if size is not None else 1)
    return one


def door_of(
    metadata: Mapping[str, Any], run: RunRecord, statistics: Mapping[str, Any] | None
) -> Door | None:
    """A version's door from its ``mooring.json`` (``metadata``), its run record and its
    training statistics (whose columns are its contract when the record keeps no schema,
    as the server infers it); ``None`` when nothing says what it reads."""
    described = (metadata.get("signature") or {}).get("inputs")
    schema = run.schema if isinstance(run.schema, Mapping) else {}
    columns = schema.get("columns")
    known: list[str] = list(columns) if isinstance(columns, Mapping) else []
    if not known and isinstance(statistics, Mapping):
        stats = statistics.get("columns")
        known = list(stats) if isinstance(stats, Mapping) else []
    if isinstance(described, Mapping) and described:
        inputs = {
            str(name): TensorInfo(
                str(name),
                str(entry.get("dtype", "float32")),
                tuple(entry.get("shape") or (None,)),
            )
            for name, entry in described.items()
            if isinstance(entry, Mapping)
        }
        source = METADATA_FILE
    elif run.inputs is not None:
        inputs = {
            name: TensorInfo(name, "float32" if kind in _NUMBERS else "string", (None,))
            for name, kind in run.inputs.items()
        }
        source = "run record"
    else:
        return None
    inputs = dict(sorted(inputs.items()))  # as the loader lists a signature's inputs
    domains = {}
    for name, info in inputs.items():
        column = columns.get(name) if isinstance(columns, Mapping) else None
        domain = column.get("domain") if isinstance(column, Mapping) else None
        if info.is_string and info.is_column and isinstance(domain, list) and domain:
            domains[name] = str(domain[0])
    ignored = frozenset(name for name in known if name not in inputs)
    return Door(inputs=inputs, ignored=ignored, source=source, domains=domains)
