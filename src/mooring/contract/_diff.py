"""What changed between two data contracts: columns added, removed, renamed, retyped, and
their domains, ranges and null policies.

A change is *breaking* when data written to the new contract could not feed a model
trained under the old one: a column the model reads is gone (or renamed), its type
changed beyond integer ↔ float, or the label changed. Everything else (a new column, a
wider range, a new category, a looser null policy) is reported but not breaking.

A removed column and an added one of the same type whose values look alike (the same
categories, or overlapping ranges) are reported once, as a likely rename.

Examples:
    >>> from mooring.contract._schema import ColumnSchema, Schema
    >>> old = Schema(columns={"workclass": ColumnSchema("workclass", "string",
    ...                                                 domain=["Private", "State-gov"])})
    >>> new = Schema(columns={"work_class": ColumnSchema("work_class", "string",
    ...                                                  domain=["Private", "State-gov"])})
    >>> [(c.kind, c.column, c.before, c.breaking) for c in diff_schemas(old, new).changes]
    [('renamed', 'work_class', 'workclass', True)]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from mooring.contract._schema import ColumnSchema, Schema

__all__ = ["Change", "SchemaDiff", "diff_schemas", "likely_rename", "types_compatible"]

#: How alike two columns' values must be (Jaccard of domains, overlap of ranges) to be
#: suggested as one column renamed.
RENAME_SIMILARITY = 0.8
_NUMBERS = frozenset({"integer", "float"})


@dataclass(frozen=True)
class Change:
    """One difference between contract A and contract B, with what fixes or accepts it."""

    kind: str  # added, removed, renamed, type, domain, range, nulls, required, label, timestamp
    column: str | None
    before: Any
    after: Any
    breaking: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchemaDiff:
    """Every change from ``before`` to ``after`` (each named by where it came from)."""

    before: str
    after: str
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "changes": [c.to_dict() for c in self.changes],
            "breaking": len(self.breaking),
        }

    def summary(self) -> str:
        """One line: how many changes, how many breaking, the breaking ones named."""
        if self.empty:
            return f"no changes from {self.before} to {self.after}"
        named = "; ".join(c.message for c in self.breaking[:3])
        return f"{len(self.changes)} change(s), {len(self.breaking)} breaking" + (
            f": {named}" if named else ""
        )


def types_compatible(before: str, after: str) -> bool:
    """Whether data of type ``after`` can feed a model trained on ``before`` (numbers
    stay numbers: integer ↔ float is a widening, not a break)."""
    return before == after or {before, after} <= _NUMBERS


def likely_rename(old: ColumnSchema, new: ColumnSchema) -> float:
    """How alike two columns' contracts are, 0..1 (0: not a rename candidate).

    The same type is required; then categorical domains are compared by Jaccard
    similarity and numeric ranges by their overlap over their union.
    """
    if not types_compatible(old.type, new.type):
        return 0.0
    if old.domain is not None and new.domain is not None:
        a, b = set(old.domain), set(new.domain)
        return len(a & b) / len(a | b) if a | b else 0.0
    if old.min is not None and old.max is not None and new.min is not None and new.max is not None:
        overlap = min(old.max, new.max) - max(old.min, new.min)
        span = max(old.max, new.max) - min(old.min, new.min)
        if span <= 0:
            return 1.0 if old.min == new.min else 0.0
        return max(0.0, overlap) / span
    return 0.0


def pair_renames(
    removed: Collection[str],
    added: Collection[str],
    similarity: Any,
) -> dict[str, str]:
    """Pair each removed name with at most one added name, best match first.

    ``similarity(removed, added)`` scores a pair 0..1; pairs below
    :data:`RENAME_SIMILARITY` are not renames. Returns ``{removed: added}``.
    """
    scored = sorted(
        ((similarity(r, a), r, a) for r in removed for a in added),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    for score, r, a in scored:
        if score < RENAME_SIMILARITY or r in pairs or a in taken:
            continue
        pairs[r] = a
        taken.add(a)
    return pairs


def diff_schemas(
    before: Schema,
    after: Schema,
    *,
    before_name: str = "A",
    after_name: str = "B",
    reads: Collection[str] | None = None,
) -> SchemaDiff:
    """Every change from ``before`` to ``after``.

    ``reads`` are the columns a model trained under ``before`` reads (its inputs and
    label); a change to a column outside it is never breaking. ``None``: every
    column of ``before`` counts as read.
    """
    read = set(before.columns) if reads is None else set(reads)
    if before.label is not None:
        read.add(before.label)
    out = SchemaDiff(before=before_name, after=after_name)
    add = out.changes.append
    if before.label != after.label:
        add(
            Change(
                "label",
                None,
                before.label,
                after.label,
                True,
                f"the label changes from {before.label!r} to {after.label!r}: a model trained "
                "on one cannot be judged on the other",
            )
        )
    if before.timestamp != after.timestamp:
        add(
            Change(
                "timestamp",
                None,
                before.timestamp,
                after.timestamp,
                False,
                f"the timestamp column changes from {before.timestamp!r} to {after.timestamp!r}",
            )
        )
    removed = [n for n in before.columns if n not in after.columns]
    added = [n for n in after.columns if n not in before.columns]
    renames = pair_renames(
        removed, added, lambda r, a: likely_rename(before.columns[r], after.columns[a])
    )
    renamed_to = set(renames.values())
    for name in removed:
        if name in renames:
            new = renames[name]
            add(
                Change(
                    "renamed",
                    new,
                    name,
                    new,
                    name in read,
                    f"{name!r} looks renamed to {new!r} (same type and values): a model "
                    f"reading {name!r} would not find it",
                )
            )
            continue
        breaking = name in read and before.columns[name].required
        add(
            Change(
                "removed",
                name,
                before.columns[name].type,
                None,
                breaking,
                f"column {name!r} ({before.columns[name].type}) is removed"
                + (": the model reads it" if breaking else ""),
            )
        )
    for name in added:
        if name in renamed_to:
            continue
        add(
            Change(
                "added",
                name,
                None,
                after.columns[name].type,
                False,
                f"column {name!r} ({after.columns[name].type}) is new",
            )
        )
    for name, old in before.columns.items():
        new_col = after.columns.get(name)
        if new_col is not None:
            _column_changes(name, old, new_col, name in read, add)
    return out


def _column_changes(name: str, old: ColumnSchema, new: ColumnSchema, read: bool, add: Any) -> None:
    if old.type != new.type:
        breaking = read and not types_compatible(old.type, new.type)
        add(
            Change(
                "type",
                name,
                old.type,
                new.type,
                breaking,
                f"{name!r} changes type from {old.type} to {new.type}"
                + (": the model reads it as " + old.type if breaking else ""),
            )
        )
    if old.domain != new.domain and (old.domain is not None or new.domain is not None):
        gained = sorted(set(new.domain or ()) - set(old.domain or ()))
        lost = sorted(set(old.domain or ()) - set(new.domain or ()))
        parts = [
            f"+{len(gained)} ({_few(gained)})" if gained else "",
            f"-{len(lost)}" if lost else "",
        ]
        what = ", ".join(p for p in parts if p) or "listed or unlisted"
        add(
            Change(
                "domain",
                name,
                old.domain,
                new.domain,
                False,
                f"{name!r} domain changes: {what}",
            )
        )
    if (old.min, old.max) != (new.min, new.max):
        add(
            Change(
                "range",
                name,
                [old.min, old.max],
                [new.min, new.max],
                False,
                f"{name!r} range changes from [{_num(old.min)}, {_num(old.max)}] to "
                f"[{_num(new.min)}, {_num(new.max)}]",
            )
        )
    if old.max_null_fraction != new.max_null_fraction:
        add(
            Change(
                "nulls",
                name,
                old.max_null_fraction,
                new.max_null_fraction,
                False,
                f"{name!r} may be missing in {100 * new.max_null_fraction:.2f}% of rows "
                f"(was {100 * old.max_null_fraction:.2f}%)",
            )
        )
    if old.required != new.required:
        add(
            Change(
                "required",
                name,
                old.required,
                new.required,
                False,
                f"{name!r} becomes {'required' if new.required else 'optional'}",
            )
        )


def _few(values: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (", …" if len(values) > n else "")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
