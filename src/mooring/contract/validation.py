"""Validation: every anomaly of a dataset against a schema (and a baseline), in one pass.

:func:`validate` reads the data once, computing statistics with the schema's
types and bounds, then :func:`validate_statistics` turns statistics into
anomalies. The same function compares serving data with training data (skew):
pass the training statistics as ``baseline``. Distribution distances are always
recorded, even below their thresholds, so users can see how close they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from mooring.config import ContractConfig, FeaturesConfig, parse_duration
from mooring.contract.distance import (
    categorical_distributions,
    jensen_shannon,
    linf,
    numeric_distributions,
    psi,
)
from mooring.contract.io import ReadOptions, is_number
from mooring.contract.schema import ColumnSchema, Schema
from mooring.contract.statistics import (
    ColumnStatistics,
    DatasetStatistics,
    compute_statistics,
    newest_timestamp,
)
from mooring.formats.files import atomic_write

__all__ = [
    "Anomaly",
    "AnomalyKind",
    "Distance",
    "ValidationResult",
    "feature_coverage",
    "validate",
    "validate_statistics",
]


class AnomalyKind(StrEnum):
    EMPTY_DATASET = "empty_dataset"
    MISSING_COLUMN = "missing_column"
    UNEXPECTED_COLUMN = "unexpected_column"
    TYPE_MISMATCH = "type_mismatch"
    NULL_FRACTION = "null_fraction"
    OUT_OF_RANGE = "out_of_range"
    UNSEEN_CATEGORY = "unseen_category"
    ROW_COUNT_CHANGE = "row_count_change"
    STALE_DATA = "stale_data"
    DISTRIBUTION_DRIFT = "distribution_drift"


@dataclass(frozen=True)
class Anomaly:
    """One problem found in the data, with the numbers behind it."""

    kind: AnomalyKind
    severity: str
    column: str | None
    message: str
    count: int | None = None
    fraction: float | None = None
    examples: tuple[Any, ...] = ()
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = str(self.kind)
        out["examples"] = list(self.examples)
        return {k: v for k, v in out.items() if v is not None and v != []}


@dataclass(frozen=True)
class Distance:
    """A distribution distance between the data and the baseline for one column."""

    column: str
    metric: str
    value: float
    threshold: float | None
    exceeded: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationResult:
    """All anomalies and distances of one dataset. ``ok`` is False when any is an error."""

    source: str
    num_rows: int
    anomalies: list[Anomaly] = field(default_factory=list)
    distances: list[Distance] = field(default_factory=list)
    schema_fingerprint: str = ""
    baseline_source: str | None = None
    statistics: DatasetStatistics | None = field(default=None, repr=False, compare=False)

    @property
    def errors(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, kind: AnomalyKind | str, column: str | None = None) -> int:
        """How many anomalies of ``kind`` (optionally on ``column``) were found."""
        return sum(
            1 for a in self.anomalies if a.kind == kind and (column is None or a.column == column)
        )

    def find(self, kind: AnomalyKind | str, column: str | None = None) -> Anomaly:
        for anomaly in self.anomalies:
            if anomaly.kind == kind and (column is None or anomaly.column == column):
                return anomaly
        raise KeyError(f"no {kind} anomaly" + (f" on {column!r}" if column else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "num_rows": self.num_rows,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "schema_fingerprint": self.schema_fingerprint,
            "baseline": self.baseline_source,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "distances": [d.to_dict() for d in self.distances],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    def save(self, path: str | Path) -> Path:
        return atomic_write(Path(path), self.to_json())

    def render_text(self) -> str:
        """A readable report: a headline, then one line per anomaly, then distances."""
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [
            f"{verdict}: {self.source} — {self.num_rows:,} rows, "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        ]
        for a in sorted(self.anomalies, key=lambda a: (a.severity != "error", a.column or "")):
            lines.append(f"  {a.severity.upper():7} {a.kind:18} {a.column or '-':20} {a.message}")
        if self.distances:
            lines.append(f"  distances to baseline {self.baseline_source}:")
            for d in self.distances:
                mark = "!" if d.exceeded else " "
                bound = f" (threshold {d.threshold:g})" if d.threshold is not None else ""
                lines.append(f"   {mark} {d.column:20} {d.metric:15} {d.value:.4f}{bound}")
        return "\n".join(lines)


def _severity(col: ColumnSchema | None, contract: ContractConfig) -> str:
    if col is not None and col.critical:
        return "error"
    if col is not None and col.severity is not None:
        return col.severity
    return contract.severity


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def validate(
    source: Any,
    schema: Schema,
    *,
    options: ReadOptions | None = None,
    baseline: DatasetStatistics | None = None,
    contract: ContractConfig | None = None,
    skip_columns: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> ValidationResult:
    """Read ``source`` once and report every anomaly against ``schema``.

    Example:
        >>> import pyarrow as pa
        >>> from mooring.contract import compute_statistics
        >>> from mooring.contract.schema import infer_schema
        >>> schema = infer_schema(compute_statistics(pa.table({"age": [20, 30, 40]})))
        >>> result = validate(pa.table({"age": [25, 35, 400]}), schema)
        >>> result.ok, [a.kind.value for a in result.anomalies]
        (True, ['out_of_range'])
    """
    stats = compute_statistics(source, options, schema=schema)
    return validate_statistics(
        stats, schema, baseline=baseline, contract=contract, skip_columns=skip_columns, now=now
    )


def validate_statistics(
    stats: DatasetStatistics,
    schema: Schema,
    *,
    baseline: DatasetStatistics | None = None,
    contract: ContractConfig | None = None,
    skip_columns: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> ValidationResult:
    """Turn statistics into anomalies against ``schema`` (and ``baseline``, when given)."""
    contract = contract or ContractConfig()
    skip = set(skip_columns)
    result = ValidationResult(
        source=stats.source,
        num_rows=stats.num_rows,
        schema_fingerprint=schema.fingerprint(),
        baseline_source=baseline.source if baseline is not None else None,
        statistics=stats,
    )
    add = result.anomalies.append
    if stats.num_rows == 0:
        add(
            Anomaly(
                AnomalyKind.EMPTY_DATASET,
                "error",
                None,
                "the dataset has no rows; check the file and the upstream job",
                count=0,
            )
        )
    for name, col in schema.columns.items():
        if name not in stats.columns and name not in skip and col.required:
            # Structural: what the schema requires is not there. Always an error.
            what = "the label column" if name == schema.label else "required column"
            add(
                Anomaly(
                    AnomalyKind.MISSING_COLUMN,
                    "error",
                    name,
                    f"{what} {name!r} is missing; add it to the data (check the delimiter "
                    "and the header), or set required = false for it in the schema",
                )
            )
    for name in stats.columns:
        if name not in schema.columns and name not in skip:
            add(
                Anomaly(
                    AnomalyKind.UNEXPECTED_COLUMN,
                    contract.severity,
                    name,
                    f"column {name!r} is not in the schema; add it to the schema "
                    "(mooring schema infer) or drop it from the data",
                )
            )
    if stats.num_rows:
        for name, col in schema.columns.items():
            if name in stats.columns and name not in skip:
                _check_column(stats[name], col, contract, add, label=name == schema.label)
    if baseline is not None:
        _check_baseline(stats, baseline, schema, contract, skip, result)
    if schema.timestamp and contract.max_age and schema.timestamp in stats.columns:
        _check_freshness(stats[schema.timestamp], schema, contract, now, add)
    return result


def _check_column(
    stats: ColumnStatistics,
    col: ColumnSchema,
    contract: ContractConfig,
    add: Any,
    *,
    label: bool = False,
) -> None:
    severity = _severity(col, contract)
    name = col.name
    if stats.type_mismatch:
        # Structural past type_tolerance: values the model cannot consume. A handful
        # within it (a stray header line, a typo) is reported and tolerated.
        fraction = stats.type_mismatch / max(1, stats.count)
        within = fraction <= contract.type_tolerance
        add(
            Anomaly(
                AnomalyKind.TYPE_MISMATCH,
                severity if within else "error",
                name,
                f"{stats.type_mismatch:,} values ({_pct(fraction)}) are not {col.type} "
                f"(e.g. {', '.join(repr(e) for e in stats.mismatch_examples[:3])}), "
                + (
                    f"within type_tolerance {_pct(contract.type_tolerance)}: they are read "
                    "as missing; fix the source"
                    if within
                    else f"above type_tolerance {_pct(contract.type_tolerance)}; fix the "
                    "source or change the column's type in the schema"
                ),
                count=stats.type_mismatch,
                fraction=fraction,
                examples=tuple(stats.mismatch_examples),
                threshold=contract.type_tolerance,
            )
        )
    _check_mixed(stats, col, contract, add)
    # Structural when every value is missing from a column that had values: the column
    # is as good as absent (a broken join, a renamed source field).
    absent = stats.count > 0 and stats.present == 0 and col.max_null_fraction < 1.0
    if stats.null_fraction > col.max_null_fraction + 1e-12:
        add(
            Anomaly(
                AnomalyKind.NULL_FRACTION,
                "error" if absent else severity,
                name,
                f"{_pct(stats.null_fraction)} missing ({stats.missing:,} of {stats.count:,}), "
                f"above the allowed {_pct(col.max_null_fraction)}; fix the source or raise "
                "max_null_fraction in the schema",
                count=stats.missing,
                fraction=stats.null_fraction,
                value=stats.null_fraction,
                threshold=col.max_null_fraction,
            )
        )
    bad = stats.below_range + stats.above_range
    if bad:
        present = max(1, stats.present)
        add(
            Anomaly(
                AnomalyKind.OUT_OF_RANGE,
                severity,
                name,
                f"{bad:,} values outside [{col.min:g}, {col.max:g}] "
                f"({stats.below_range:,} below, {stats.above_range:,} above; e.g. "
                f"{', '.join(f'{v:g}' for v in stats.range_examples[:3])}); widen the range "
                "in the schema or fix the source",
                count=bad,
                fraction=bad / present,
                examples=tuple(stats.range_examples),
            )
        )
    if col.domain is not None and stats.strings is not None:
        domain = set(col.domain)
        unseen = {v: c for v, c in stats.strings.frequencies.counts.items() if v not in domain}
        if unseen:
            total = sum(unseen.values())
            top = sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            add(
                Anomaly(
                    AnomalyKind.UNSEEN_CATEGORY,
                    "error" if label else severity,  # a label class the model has no output for
                    name,
                    f"{total:,} values ({_pct(total / max(1, stats.strings.count))}) in "
                    f"{len(unseen)} categories not in the domain (e.g. "
                    f"{', '.join(repr(v) for v, _ in top[:3])}); add them to the domain "
                    "in the schema or fix the source",
                    count=total,
                    fraction=total / max(1, stats.strings.count),
                    examples=tuple(v for v, _ in top),
                )
            )


def _check_mixed(
    stats: ColumnStatistics, col: ColumnSchema, contract: ContractConfig, add: Any
) -> None:
    """A text column whose values are mostly numbers and partly words ('40', 'forty'):
    a numeric column broken upstream, read as text. Structural: the model would learn
    the numbers as categories. A column declared with ``severity = "warning"`` opts out
    (codes that are mostly digits)."""
    strings = stats.strings
    if col.type != "string" or strings is None or not strings.count:
        return
    if not strings.frequencies.exact:
        return
    counts = strings.frequencies.counts
    numbers = sum(c for v, c in counts.items() if is_number(v))
    text = strings.count - numbers
    if numbers < text or text / strings.count <= contract.type_tolerance:
        return
    words = sorted((v for v in counts if not is_number(v)), key=lambda v: -counts[v])[:3]
    add(
        Anomaly(
            AnomalyKind.TYPE_MISMATCH,
            col.severity or "error",
            col.name,
            f"{col.name!r} mixes numbers ({_pct(numbers / strings.count)}) and text "
            f"({_pct(text / strings.count)}, e.g. {', '.join(map(repr, words))}): a number "
            "column broken upstream would be learned as categories; fix the source, or set "
            f'severity = "warning" for {col.name!r} in the schema if it really is text',
            count=text,
            fraction=text / strings.count,
            examples=tuple(words),
            threshold=contract.type_tolerance,
        )
    )


def _check_baseline(
    stats: DatasetStatistics,
    baseline: DatasetStatistics,
    schema: Schema,
    contract: ContractConfig,
    skip: set[str],
    result: ValidationResult,
) -> None:
    add = result.anomalies.append
    if baseline.num_rows:
        ratio = stats.num_rows / baseline.num_rows
        if not contract.min_row_ratio <= ratio <= contract.max_row_ratio:
            add(
                Anomaly(
                    AnomalyKind.ROW_COUNT_CHANGE,
                    contract.severity,
                    None,
                    f"{stats.num_rows:,} rows is {ratio:.3g}× the baseline's "
                    f"{baseline.num_rows:,}, outside [{contract.min_row_ratio:g}, "
                    f"{contract.max_row_ratio:g}]; check for a partial or duplicated load, "
                    "or adjust min_row_ratio / max_row_ratio",
                    count=stats.num_rows,
                    value=ratio,
                )
            )
    for name, col in schema.columns.items():
        if name in skip or name not in stats.columns or name not in baseline.columns:
            continue
        current, base = stats[name], baseline[name]
        if col.is_numeric:
            dists = numeric_distributions(base, current)
            metrics = [
                ("jensen_shannon", jensen_shannon, col.js_threshold or contract.js_threshold),
                ("psi", psi, col.psi_threshold or contract.psi_threshold),
            ]
        else:
            dists = categorical_distributions(base, current)
            metrics = [
                ("jensen_shannon", jensen_shannon, col.js_threshold or contract.js_threshold),
                ("linf", linf, col.linf_threshold or contract.linf_threshold),
            ]
        if dists is None:
            continue
        for metric, fn, threshold in metrics:
            value = fn(dists.baseline, dists.current)
            exceeded = value > threshold
            result.distances.append(Distance(name, metric, value, threshold, exceeded))
            if exceeded:
                add(
                    Anomaly(
                        AnomalyKind.DISTRIBUTION_DRIFT,
                        _severity(col, contract),
                        name,
                        f"{metric} distance to the baseline is {value:.4f}, above "
                        f"{threshold:g}; investigate the source or raise {metric} threshold "
                        f"for {name!r}",
                        value=value,
                        threshold=threshold,
                    )
                )


def _check_freshness(
    stats: ColumnStatistics,
    schema: Schema,
    contract: ContractConfig,
    now: dt.datetime | None,
    add: Any,
) -> None:
    if contract.max_age is None or schema.timestamp is None:
        return
    newest = newest_timestamp(stats)
    if newest is None:
        return
    now = now or dt.datetime.now(tz=dt.UTC)
    age = (now - newest).total_seconds()
    limit = parse_duration(contract.max_age)
    if age > limit:
        col = schema.columns.get(schema.timestamp)
        add(
            Anomaly(
                AnomalyKind.STALE_DATA,
                _severity(col, contract),
                schema.timestamp,
                f"newest {schema.timestamp!r} is {newest.isoformat()}, {age / 3600:.1f} h "
                f"old, older than max_age {contract.max_age}; check the upstream job",
                value=age,
                threshold=limit,
            )
        )


def feature_coverage(schema: Schema, features: FeaturesConfig) -> list[Anomaly]:
    """Errors for a feature spec the data cannot feed: a configured feature (or a crossed
    column) the schema has no column for, or a numeric feature on a text column.

    Training would otherwise start and fail deep inside (or silently learn from text);
    the pipeline's validate step adds these to the training data's result.

    Example:
        >>> import pyarrow as pa
        >>> from mooring.contract import compute_statistics
        >>> from mooring.contract.schema import infer_schema
        >>> schema = infer_schema(compute_statistics(pa.table({"age": ["x", "y"]})))
        >>> cfg = FeaturesConfig.model_validate({"age": {"transform": "bucketize"}, "hours": {}})
        >>> [(a.kind.value, a.column) for a in feature_coverage(schema, cfg)]
        [('missing_column', 'hours'), ('type_mismatch', 'age')]
    """
    out: list[Anomaly] = []
    excluded = set(features.exclude)
    listed = {n: f for n, f in features.features.items() if n not in excluded}
    crossed = [c for cross in features.crosses for c in cross.columns if c not in listed]
    for name in [*listed, *dict.fromkeys(crossed)]:
        if name not in schema.columns:
            out.append(
                Anomaly(
                    AnomalyKind.MISSING_COLUMN,
                    "error",
                    name,
                    f"feature {name!r} is configured in [features] but the data has no such "
                    "column; restore it upstream, or remove it from [features] (or add it to "
                    "exclude) to train without it",
                )
            )
    for name, feature in listed.items():
        col = schema.columns.get(name)
        numeric = feature.kind == "numeric" or feature.transform is not None
        if col is not None and numeric and not col.is_numeric:
            out.append(
                Anomaly(
                    AnomalyKind.TYPE_MISMATCH,
                    "error",
                    name,
                    f"feature {name!r} is numeric in [features] but the column holds "
                    f"{col.type} values; fix the source, or make it categorical in [features]",
                )
            )
    return out
