"""Validation: every anomaly of a dataset against a schema (and a baseline), in one pass.

:func:`validate` reads the data once, computing statistics with the schema's
types and bounds, then :func:`validate_statistics` turns statistics into
anomalies. The same function compares serving data with training data (skew):
pass the training statistics as ``baseline``. Distribution distances are always
recorded, even below their thresholds, so users can see how close they are; never on
the time axis (the timestamp, any date or time column).

These distances are fixed floors, blind to how many rows were compared: ``mooring run``
and ``mooring validate`` replace them by the drift check's verdict, floors over each
distance's sampling noise with "too few rows" where a file cannot tell
(:func:`mooring.pipeline._steps.validate.judge_distributions`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from mooring.config._base import parse_duration
from mooring.config._data import ContractConfig
from mooring.config._model import FeaturesConfig
from mooring.contract._anomalies import Anomaly, AnomalyKind, Distance, ValidationResult
from mooring.contract._distance import (
    categorical_distributions,
    jensen_shannon,
    linf,
    numeric_distributions,
    psi,
)
from mooring.contract._io import ReadOptions, is_number
from mooring.contract._schema import ColumnSchema, Schema
from mooring.contract._statistics import (
    ColumnStatistics,
    DatasetStatistics,
    compute_statistics,
    newest_timestamp,
)
from mooring.errors import UsageError

#: The environments of TFDV: training data carries the label, serving data does not.
TRAINING, SERVING = "training", "serving"
ENVIRONMENTS = (TRAINING, SERVING)

__all__ = [
    "Anomaly",
    "AnomalyKind",
    "Distance",
    "ValidationResult",
    "feature_coverage",
    "validate",
    "validate_statistics",
]


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
    reads: Collection[str] | None = None,
    environment: str = TRAINING,
) -> ValidationResult:
    """Read ``source`` once and report every anomaly against ``schema``.

    ``reads`` and ``environment`` are :func:`validate_statistics`'s.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> from mooring.contract._schema import infer_schema
        >>> schema = infer_schema(compute_statistics(pa.table({"age": [20, 30, 40]})))
        >>> result = validate(pa.table({"age": [25, 35, 400]}), schema)
        >>> result.ok, [a.kind.value for a in result.anomalies]
        (True, ['out_of_range'])
    """
    stats = compute_statistics(source, options, schema=schema)
    return validate_statistics(
        stats,
        schema,
        baseline=baseline,
        contract=contract,
        skip_columns=skip_columns,
        now=now,
        reads=reads,
        environment=environment,
    )


def validate_statistics(
    stats: DatasetStatistics,
    schema: Schema,
    *,
    baseline: DatasetStatistics | None = None,
    contract: ContractConfig | None = None,
    skip_columns: Iterable[str] = (),
    now: dt.datetime | None = None,
    reads: Collection[str] | None = None,
    environment: str = TRAINING,
) -> ValidationResult:
    """Turn statistics into anomalies against ``schema`` (and ``baseline``, when given).

    ``reads`` names the columns the model under this contract reads (its inputs; the
    label is always read): a missing column outside it is a warning, not an error, and
    it is not compared with ``baseline`` (nor is the timestamp, which always moves on).
    ``None`` treats every column as read. ``environment`` is ``"training"`` (the label
    is required) or ``"serving"`` (the label is absent and not checked), as in TFDV.
    """
    if environment not in ENVIRONMENTS:
        raise UsageError(
            f"environment {environment!r} is not one of {list(ENVIRONMENTS)}; use 'training' "
            "for data with labels, 'serving' for requests without them"
        )
    contract = contract or ContractConfig()
    skip = set(skip_columns)
    if environment == SERVING and schema.label is not None:
        skip.add(schema.label)
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
    missing = [
        n
        for n, c in schema.columns.items()
        if n not in stats.columns and n not in skip and c.required
    ]
    unexpected = [n for n in stats.columns if n not in schema.columns and n not in skip]
    read = _read_columns(schema, reads)
    renames = _renames(stats, schema, missing, unexpected)
    for name in missing:
        is_read = name in read
        if name in renames:
            new = renames[name]
            add(
                Anomaly(
                    AnomalyKind.RENAMED_COLUMN,
                    "error" if is_read else contract.severity,
                    name,
                    f"column {name!r} is missing and the new column {new!r} holds values "
                    f"like its own (a rename?); rename {new!r} back to {name!r} upstream, "
                    "or accept a contract with the new name (mooring schema accept)",
                    examples=(new,),
                )
            )
            continue
        # Structural: what the schema requires is not there.
        what = "the label column" if name == schema.label else "required column"
        add(
            Anomaly(
                AnomalyKind.MISSING_COLUMN,
                "error" if is_read else contract.severity,
                name,
                f"{what} {name!r} is missing"
                + ("" if is_read else " (the model does not read it)")
                + "; add it to the data (check the delimiter and the header), or accept a "
                "contract without it (mooring schema accept)",
            )
        )
    for name in unexpected:
        if name in renames.values():
            continue
        add(
            Anomaly(
                AnomalyKind.UNEXPECTED_COLUMN,
                contract.severity,
                name,
                f"column {name!r} ({stats[name].type}) is not in the contract, so no model "
                "reads it; to train on it, accept a contract that lists it "
                "(mooring schema accept), or drop it from the data",
            )
        )
    if stats.num_rows:
        for name, col in schema.columns.items():
            if name in stats.columns and name not in skip:
                _check_column(stats[name], col, contract, add, label=name == schema.label)
    if baseline is not None:
        # Distances only where they can mean something: the event time always moves on,
        # and a column the model does not read (an id, an excluded one) moves no answer.
        unread = {n for n in schema.columns if n not in read}
        _check_baseline(
            stats,
            baseline,
            schema,
            contract,
            skip | unread | ({schema.timestamp} if schema.timestamp else set()),
            result,
        )
    if schema.timestamp and contract.max_age and schema.timestamp in stats.columns:
        _check_freshness(stats[schema.timestamp], schema, contract, now, add)
    return result


def _read_columns(schema: Schema, reads: Collection[str] | None) -> set[str]:
    read = set(schema.columns) if reads is None else set(reads)
    if schema.label is not None:
        read.add(schema.label)
    return read


def _renames(
    stats: DatasetStatistics, schema: Schema, missing: list[str], unexpected: list[str]
) -> dict[str, str]:
    """Missing contract columns paired with a new column whose values look the same."""
    if not missing or not unexpected:
        return {}
    from mooring.contract._diff import likely_rename, pair_renames
    from mooring.contract._schema import infer_schema

    subset = DatasetStatistics(
        num_rows=stats.num_rows, columns={n: stats.columns[n] for n in unexpected}
    )
    # Inferred the way the contract was: the same data gives the same bounds.
    observed = infer_schema(subset, contract=ContractConfig())
    return pair_renames(
        missing,
        unexpected,
        lambda r, a: likely_rename(schema.columns[r], observed.columns[a]),
    )


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
    # One cause once: values of the wrong type are read as missing, but they are
    # reported as a type mismatch above, not again as missing values.
    missing = stats.missing - stats.type_mismatch
    null_fraction = missing / stats.count if stats.count else 0.0
    # Structural when every value is missing from a column that had values: the column
    # is as good as absent (a broken join, a renamed source field).
    absent = stats.count > 0 and missing == stats.count and col.max_null_fraction < 1.0
    if null_fraction > col.max_null_fraction + 1e-12:
        add(
            Anomaly(
                AnomalyKind.NULL_FRACTION,
                "error" if absent else severity,
                name,
                f"{_pct(null_fraction)} missing ({missing:,} of {stats.count:,}), "
                f"above the allowed {_pct(col.max_null_fraction)}; fix the source or raise "
                "max_null_fraction in the schema",
                count=missing,
                fraction=null_fraction,
                value=null_fraction,
                threshold=col.max_null_fraction,
            )
        )
    _check_constant(stats, col, severity, add)
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


def _check_constant(stats: ColumnStatistics, col: ColumnSchema, severity: str, add: Any) -> None:
    """A column whose contract allows several values but whose data holds one: a feed
    stuck on a default (``0``, ``"unknown"``) teaches the model nothing."""
    if stats.present < 2:
        return
    value: Any = None
    if col.domain is not None and len(col.domain) > 1 and stats.strings is not None:
        counts = stats.strings.frequencies.counts
        if stats.strings.frequencies.exact and len(counts) == 1:
            value = next(iter(counts))
    elif (
        stats.numeric is not None
        and stats.numeric.count >= 2
        and col.min is not None
        and col.max is not None
        and col.min < col.max
        and stats.numeric.min == stats.numeric.max
    ):
        value = f"{stats.numeric.min:g}"
    if value is None:
        return
    add(
        Anomaly(
            AnomalyKind.CONSTANT_COLUMN,
            severity,
            col.name,
            f"every one of the {stats.present:,} values is {value!r}, where the contract "
            "allows several; check the source for a stuck default or a broken join",
            count=stats.present,
            examples=(value,),
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
        if col.type == "timestamp":
            # A date or time column is the time axis, not a feature: later data always
            # lies past the baseline's times (Jensen-Shannon 1.0 on every new month).
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

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> from mooring.contract._schema import infer_schema
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
