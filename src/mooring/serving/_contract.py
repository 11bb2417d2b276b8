"""The version's data contract at the door: numeric ranges and categorical domains.

The signature says what type each input has; the contract stored with the version in
the registry (its schema, or one inferred from its training statistics) says what
values training saw. A request is checked against both. Values outside the contract
are *violations*: each is counted in ``mooring_contract_violations_total`` and, per
``[serving] out_of_range`` / ``unseen_category``, either served (the default) or
refused with a 400 naming the input, the value and the allowed range or domain.
Missing values (``null``, NaN, ``""``) are never violations here: the model has its
own rule for them.

Examples:
    >>> import numpy as np
    >>> from mooring.contract._schema import ColumnSchema, Schema
    >>> from mooring.formats._model import TensorInfo
    >>> schema = Schema(columns={"age": ColumnSchema("age", "integer", min=17, max=90)})
    >>> contract = InputContract.from_schema(
    ...     schema, {"age": TensorInfo("age", "float32", (None,))}, source="schema"
    ... )
    >>> [(v.input, v.kind, v.count) for v in contract.check({"age": np.array([30.0, 140.0])})]
    [('age', 'out_of_range', 1)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mooring.contract._schema import BOOL_FALSE, BOOL_TRUE, Schema
from mooring.formats._columns import describe
from mooring.formats._model import TensorInfo

__all__ = ["InputContract", "Violation", "violating_rows"]

OUT_OF_RANGE = "out_of_range"
UNSEEN = "unseen_category"
_TRAINED_BOOLEANS = frozenset({"true", "false", ""})
_BOOLEAN_SPELLINGS = {
    **dict.fromkeys(BOOL_TRUE, "true"),
    **dict.fromkeys(BOOL_FALSE, "false"),
}


@dataclass(frozen=True)
class Violation:
    """Values of one input outside the contract, in one request: how many, the first,
    and the rows (0-based, within the request) that hold them."""

    input: str
    kind: str
    count: int
    example: Any
    bounds: Any  # (lo, hi) or the domain; formatted only when a message is needed
    rows: tuple[int, ...] = ()

    @property
    def allowed(self) -> str:
        if self.kind == OUT_OF_RANGE:
            lo, hi = self.bounds
            return f"[{lo:g}, {hi:g}]"
        return _domain(self.bounds)

    def message(self, setting: str, *, critical: bool = False) -> str:
        """The 400 body when the policy refuses it: input, value, what is allowed, the fix
        (for a ``critical`` column of the contract, which always refuses, that one)."""
        what = "outside the range" if self.kind == OUT_OF_RANGE else "not in the domain"
        fix = (
            "leave it out of [contract] critical"
            if critical
            else f"serve such values with [serving] {setting} = 'serve'"
        )
        return (
            f"input {self.input!r}: {self.count} value(s) {what} {self.allowed} of the model's "
            f"contract{' (a critical column)' if critical else ''} (e.g. "
            f"{describe(self.example)}); fix the client, or widen the contract in the schema, "
            f"or {fix}"
        )


@dataclass(frozen=True)
class InputContract:
    """Ranges of numeric inputs and domains of string inputs, from a version's schema."""

    ranges: dict[str, tuple[float, float]]
    domains: dict[str, frozenset[str]]
    source: str
    #: The schema's columns that are not inputs (the label, excluded ids, the timestamp):
    #: a request may carry them, and they are ignored.
    known: frozenset[str] = frozenset()
    #: Text inputs whose column is boolean: spelled as the contract reads booleans.
    booleans: frozenset[str] = frozenset()
    #: Inputs whose column is ``[contract] critical``: a value outside is refused (400).
    critical: frozenset[str] = frozenset()

    @classmethod
    def from_schema(
        cls, schema: Schema, inputs: Mapping[str, TensorInfo], *, source: str
    ) -> InputContract:
        """Keep the rules of the columns that are signature inputs (not the label)."""
        ranges: dict[str, tuple[float, float]] = {}
        domains: dict[str, frozenset[str]] = {}
        booleans = set()
        critical = set()
        for name, info in inputs.items():
            column = schema.columns.get(name)
            if column is None:
                continue
            if column.critical:
                critical.add(name)
            if info.is_string and column.type == "boolean":
                booleans.add(name)
            if info.is_string and column.domain is not None:
                domains[name] = frozenset(str(v) for v in column.domain)
            elif not info.is_string and (column.min is not None or column.max is not None):
                lo = -math.inf if column.min is None else float(column.min)
                hi = math.inf if column.max is None else float(column.max)
                ranges[name] = (lo, hi)
        known = frozenset(name for name in schema.columns if name not in inputs)
        return cls(
            ranges=ranges,
            domains=domains,
            source=source,
            known=known,
            booleans=frozenset(booleans),
            critical=frozenset(critical),
        )

    def spell_booleans(self, columns: dict[str, Any]) -> None:
        """Boolean inputs as they were trained: ``"True"``, ``"yes"`` or ``"1"`` (any
        spelling the contract reads as a boolean, in any case) become ``"true"``, and the
        false ones ``"false"``, in place; other values are left to :meth:`check`.

        >>> contract = InputContract({}, {}, "schema", booleans=frozenset({"member"}))
        >>> columns = {"member": ["True", "no", "true", "banana", ""]}
        >>> contract.spell_booleans(columns)
        >>> columns["member"]
        ['true', 'false', 'true', 'banana', '']
        """
        for name in self.booleans:
            values = columns.get(name)
            if values is None:
                continue
            listed = _flat_strings(values)
            if _TRAINED_BOOLEANS.issuperset(listed):
                continue
            if isinstance(values, np.ndarray):
                spelled = [_spelled(v) for v in listed]
                columns[name] = np.array(spelled, dtype=object).reshape(values.shape)
            elif listed is values:
                columns[name] = [_spelled(v) for v in values]
            else:  # an input of shape [N, k]: one list per row
                columns[name] = [
                    [_spelled(v) for v in row] if isinstance(row, list) else _spelled(row)
                    for row in values
                ]

    def describe(self) -> dict[str, Any]:
        """JSON for the status endpoints."""
        return {
            "source": self.source,
            "ranges": {k: [lo, hi] for k, (lo, hi) in self.ranges.items()},
            "domains": {k: len(v) for k, v in self.domains.items()},
        }

    def check(self, columns: Mapping[str, Any]) -> list[Violation]:
        """Every input with values outside the contract (missing values are not checked).

        Columns are lists (the server's request path) or numpy arrays, one entry per row;
        an input of shape ``[N, k]`` (an imported model's ``[N, 1]``) counts the rows that
        hold a value outside, and names the first such value.
        """
        found: list[Violation] = []
        for name, (lo, hi) in self.ranges.items():
            values = columns.get(name)
            if values is None:
                continue
            if type(values) is list and not (values and isinstance(values[0], list)):
                # min/max skip a NaN unless it comes first, and then the test fails: the
                # scan below decides (NaN compares False both ways: never outside).
                if values and lo <= min(values) and max(values) <= hi:
                    continue
                outside = tuple(i for i, v in enumerate(values) if v < lo or v > hi)
                if outside:
                    example = float(values[outside[0]])
                    found.append(
                        Violation(name, OUT_OF_RANGE, len(outside), example, (lo, hi), outside)
                    )
                continue
            violation = _outside(name, values, lo, hi)
            if violation is not None:
                found.append(violation)
        for name, domain in self.domains.items():
            values = columns.get(name)
            if values is None:
                continue
            listed = _flat_strings(values)
            if domain.issuperset(listed):
                continue
            unseen = [v for v in listed if v and v not in domain]
            if unseen:
                rows = _unseen_rows(values, domain)
                found.append(Violation(name, UNSEEN, len(unseen), unseen[0], domain, rows))
        return found


def violating_rows(violations: list[Violation], rows: int) -> list[list[str] | None]:
    """Per row of a request, the inputs whose value lies outside the contract (None: no
    input does): what the prediction log keeps of :meth:`InputContract.check`'s findings.

    >>> contract = InputContract({"age": (17.0, 90.0)}, {}, "schema")
    >>> violating_rows(contract.check({"age": [30.0, 150.0, -5.0]}), 3)
    [None, ['age'], ['age']]
    """
    flagged: list[list[str] | None] = [None] * rows
    for v in violations:
        for i in v.rows:
            names = flagged[i]
            if names is None:
                flagged[i] = [v.input]
            elif v.input not in names:
                names.append(v.input)
    return flagged


def _spelled(value: Any) -> Any:
    """``value`` as a boolean column is trained, when it spells a boolean."""
    return _BOOLEAN_SPELLINGS.get(value.lower(), value) if type(value) is str else value


def _outside(name: str, values: Any, lo: float, hi: float) -> Violation | None:
    """The rows of a numeric column of any rank with a value outside ``[lo, hi]``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        array = values
    else:
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            return None  # ragged or not numbers: the signature's own checks answer it
    mask = (array < lo) | (array > hi)
    if not mask.any():
        return None
    rows = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1) if mask.ndim > 1 else mask)
    example = float(array[mask][0])
    return Violation(name, OUT_OF_RANGE, len(rows), example, (lo, hi), tuple(rows.tolist()))


def _unseen_rows(values: Any, domain: frozenset[str]) -> tuple[int, ...]:
    """The rows of a text column of any rank holding a value outside ``domain`` (missing
    values, ``""`` or None, are not outside)."""
    listed = values if type(values) is list else np.asarray(values, dtype=object).tolist()
    return tuple(
        i
        for i, row in enumerate(listed)
        if any(v and v not in domain for v in (row if isinstance(row, list) else (row,)))
    )


def _flat_strings(values: Any) -> list[Any]:
    """A string column's values, one list, whatever its rank."""
    listed = values if type(values) is list else np.asarray(values, dtype=object).tolist()
    if listed and isinstance(listed[0], list):
        return [v for row in listed for v in (row if isinstance(row, list) else [row])]
    return listed


def _domain(domain: frozenset[str]) -> str:
    listed = sorted(domain)
    shown = ", ".join(repr(v) for v in listed[:8])
    more = f", … ({len(listed)} values)" if len(listed) > 8 else ""
    return "{" + shown + more + "}"
