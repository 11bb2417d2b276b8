"""The data contract: a schema inferred from statistics, saved as editable YAML.

A :class:`Schema` says, per column: its type, whether it is required, the null
fraction it may have, its numeric range, its categorical domain, whether it is
critical (any anomaly on it is an error: fail closed), and per-column drift
thresholds. It is inferred from :class:`~mooring.contract.DatasetStatistics`,
written as YAML a person can edit, and anything in it can be overridden from
``[contract.columns.NAME]`` in mooring.toml.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from mooring.config._data import ColumnOverride, ContractConfig
from mooring.errors import NotFoundError, SchemaError
from mooring.formats._files import atomic_write

if TYPE_CHECKING:
    from mooring.contract._statistics import DatasetStatistics

__all__ = ["ColumnSchema", "Schema", "infer_schema"]

COLUMN_TYPES = ("integer", "float", "string", "boolean", "timestamp")
#: How a boolean column may be spelled as text (in any case); its values are trained as
#: the text "true" / "false".
BOOL_TRUE = frozenset({"true", "t", "yes", "y", "1"})
BOOL_FALSE = frozenset({"false", "f", "no", "n", "0"})
SCHEMA_VERSION = 1


@dataclass
class ColumnSchema:
    """What one column must look like.

    ``severity`` is the severity of anomalies on this column (``error`` when
    ``critical``); ``None`` means the contract's default.
    """

    name: str
    type: str
    required: bool = True
    max_null_fraction: float = 0.0
    min: float | None = None
    max: float | None = None
    domain: list[str] | None = None
    critical: bool = False
    severity: str | None = None
    js_threshold: float | None = None
    linf_threshold: float | None = None
    psi_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SchemaError(
                f"column {self.name!r}: type {self.type!r} is not one of {list(COLUMN_TYPES)}; "
                "fix the schema file"
            )
        if not 0.0 <= self.max_null_fraction <= 1.0:
            raise SchemaError(
                f"column {self.name!r}: max_null_fraction {self.max_null_fraction} must be in "
                "[0, 1]; fix the schema file"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(
                f"column {self.name!r}: min {self.min} is above max {self.max}; fix the range"
            )
        if self.severity not in (None, "error", "warning"):
            raise SchemaError(
                f"column {self.name!r}: severity {self.severity!r} must be 'error' or 'warning'"
            )

    @property
    def is_numeric(self) -> bool:
        return self.type in ("integer", "float", "timestamp")

    @property
    def is_categorical(self) -> bool:
        return self.type in ("string", "boolean")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "name"}
        # Keep the file short: leave out what is at its default.
        defaults = ColumnSchema(name=self.name, type=self.type)
        return {k: v for k, v in out.items() if k == "type" or v != getattr(defaults, k)}


@dataclass
class Schema:
    """Columns in order, plus the label column's name.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> stats = compute_statistics(pa.table({"age": [20, 30, 40], "y": ["a", "b", "a"]}))
        >>> schema = infer_schema(stats, label="y")
        >>> schema.columns["age"].type, schema.columns["y"].domain
        ('integer', ['a', 'b'])
    """

    columns: dict[str, ColumnSchema] = field(default_factory=dict)
    label: str | None = None
    timestamp: str | None = None
    version: int = SCHEMA_VERSION

    @property
    def feature_names(self) -> list[str]:
        """Columns that are model inputs: everything but the label and the timestamp."""
        return [n for n in self.columns if n not in (self.label, self.timestamp)]

    def column(self, name: str) -> ColumnSchema:
        try:
            return self.columns[name]
        except KeyError:
            raise SchemaError(
                f"column {name!r} is not in the schema; known columns: {list(self.columns)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mooring.schema",
            "version": self.version,
            "label": self.label,
            "timestamp": self.timestamp,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "schema") -> Schema:
        if not isinstance(data, Mapping) or data.get("format") != "mooring.schema":
            raise SchemaError(f"{source}: not a mooring schema (expected 'format: mooring.schema')")
        raw_columns = data.get("columns")
        if not isinstance(raw_columns, Mapping) or not raw_columns:
            raise SchemaError(f"{source}: 'columns' must map column names to their rules")
        known = {f.name for f in fields(ColumnSchema)} - {"name"}
        columns: dict[str, ColumnSchema] = {}
        for name, spec in raw_columns.items():
            if not isinstance(spec, Mapping) or "type" not in spec:
                raise SchemaError(f"{source}: column {name!r} needs at least a 'type'")
            unknown = sorted(set(spec) - known)
            if unknown:
                raise SchemaError(
                    f"{source}: column {name!r} has unknown keys {unknown}; known: {sorted(known)}"
                )
            columns[str(name)] = ColumnSchema(name=str(name), **dict(spec))
        label = data.get("label")
        if label is not None and label not in columns:
            raise SchemaError(f"{source}: label {label!r} is not one of the columns")
        return cls(
            columns=columns,
            label=label,
            timestamp=data.get("timestamp"),
            version=int(data.get("version", SCHEMA_VERSION)),
        )

    def save(self, path: str | Path) -> Path:
        """Write the schema as YAML (atomically)."""
        text = (
            "# mooring data contract: types, ranges, domains, null fractions, critical columns.\n"
            "# `mooring validate` checks data against it. A project's contract changes by\n"
            "# `mooring schema accept FILE -r REASON` (edit a copy, then accept it).\n"
            + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)
        )
        return atomic_write(Path(path), text.encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        file = Path(path)
        if not file.is_file():
            raise NotFoundError(
                f"schema file '{file}' does not exist; create it with `mooring schema infer`"
            )
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SchemaError(f"{file}: not valid YAML ({exc}); fix the syntax") from None
        return cls.from_dict(data, source=str(file))

    def fingerprint(self) -> str:
        """sha256 of the canonical form: the schema hash recorded with models."""
        return hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()

    def with_overrides(self, contract: ContractConfig) -> Schema:
        """Apply ``[contract]`` settings: critical columns and per-column overrides."""
        columns = {n: ColumnSchema(**asdict(c)) for n, c in self.columns.items()}
        for name in contract.critical:
            if name not in columns:
                raise SchemaError(
                    f"[contract] critical column {name!r} is not in the data; "
                    f"columns are {list(columns)}"
                )
            columns[name].critical = True
        for name, override in contract.columns.items():
            if name not in columns:
                raise SchemaError(
                    f"[contract.columns.{name}] names a column that is not in the data; "
                    f"columns are {list(columns)}"
                )
            _apply(columns[name], override)
        return Schema(
            columns=columns, label=self.label, timestamp=self.timestamp, version=self.version
        )


def _apply(column: ColumnSchema, override: ColumnOverride) -> None:
    for key, value in override.model_dump(exclude_none=True).items():
        setattr(column, key, value)
    column.__post_init__()


def _round_out(value: float, up: bool) -> float:
    """Round a bound outward to a readable number (2 significant digits of its scale)."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    steps = math.ceil(value / scale) if up else math.floor(value / scale)
    return round(steps * scale, 12)


def infer_schema(
    stats: DatasetStatistics,
    *,
    label: str | None = None,
    timestamp: str | None = None,
    contract: ContractConfig | None = None,
    critical: Iterable[str] = (),
) -> Schema:
    """Infer a schema from statistics.

    Rules: the type is the statistics' type; a column is required when it is
    present in the data; the allowed null fraction is the observed one plus
    ``null_slack`` (0 stays 0 for complete columns, so a new gap is noticed);
    numeric ranges widen the observed range by ``range_margin`` of its span;
    string columns with at most ``max_domain_size`` distinct values get a domain.
    """
    contract = contract or ContractConfig()
    columns: dict[str, ColumnSchema] = {}
    for name, col in stats.columns.items():
        col_type = "string" if col.type == "null" else col.type
        null_fraction = col.null_fraction
        allowed = 0.0 if null_fraction == 0 else min(1.0, null_fraction + contract.null_slack)
        if contract.max_null_fraction is not None:
            allowed = contract.max_null_fraction
        schema_col = ColumnSchema(name=name, type=col_type, max_null_fraction=round(allowed, 6))
        if col.numeric is not None and col.numeric.count and col_type != "timestamp":
            lo, hi = col.numeric.min, col.numeric.max
            span = hi - lo if hi > lo else max(abs(hi), 1.0)
            lo_bound, hi_bound = (
                lo - contract.range_margin * span,
                hi + contract.range_margin * span,
            )
            if col_type == "integer" or lo >= 0:
                # Counts, ages and amounts observed non-negative stay non-negative.
                lo_bound = max(lo_bound, 0.0) if lo >= 0 else lo_bound
            schema_col.min = _round_out(lo_bound, up=False)
            schema_col.max = _round_out(hi_bound, up=True)
            if col_type == "integer":
                schema_col.min, schema_col.max = (
                    math.floor(schema_col.min),
                    math.ceil(schema_col.max),
                )
        strings = col.strings
        if (
            strings is not None
            and col_type in ("string", "boolean")
            and strings.frequencies.exact
            and strings.distinct <= contract.max_domain_size
        ):
            schema_col.domain = sorted(strings.frequencies.counts)
        columns[name] = schema_col
    if label is not None and label not in columns:
        raise SchemaError(
            f"[data] label {label!r} is not a column of the data; columns are {list(columns)}"
        )
    if timestamp is not None and timestamp not in columns:
        raise SchemaError(
            f"[data] timestamp {timestamp!r} is not a column of the data; "
            f"columns are {list(columns)}"
        )
    schema = Schema(columns=columns, label=label, timestamp=timestamp)
    contract_with_critical = contract.model_copy(
        update={"critical": list(dict.fromkeys([*contract.critical, *critical]))}
    )
    return schema.with_overrides(contract_with_critical)
