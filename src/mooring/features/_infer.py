"""From ``[features]``, the schema and the statistics to a resolved :class:`FeatureSpec`.

Which columns become features:

* no ``[features]`` table, or ``include = "all"`` (the default): every column of
  the schema except the label, the timestamp and ``exclude``; a listed column
  takes its listed options, the others take inferred defaults;
* ``include = "listed"``: only the listed columns.

Defaults, decided by the data rather than by the column's name:

* number columns are ``numeric``; text and boolean columns are ``categorical``;
  timestamp columns are left out unless listed (listing one is an error for now);
* numeric transform: ``bucketize`` (quantile boundaries) for spiky or
  heavy-tailed columns — more than half zeros, an interquartile range of zero,
  or a 99th percentile more than 10 interquartile ranges above the median —
  otherwise ``normalize``;
* numeric missing values: the mean is imputed, plus an is-missing input
  (``indicator``) when the training data had missing values;
* categorical encoding: ``one_hot`` up to 50 values, ``embedding`` up to
  10,000, ``hashing`` beyond (or when the statistics' frequency table overflowed);
  missing values get their own category when the training data had any.

All state comes from the statistics: no pass over the data.
"""

from __future__ import annotations

import difflib
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from mooring.config._model import CrossConfig, FeatureConfig, FeaturesConfig
from mooring.errors import ConfigError, DataError
from mooring.features._spec import (
    CategoricalFeature,
    CrossFeature,
    Feature,
    FeatureSpec,
    NumericFeature,
)

if TYPE_CHECKING:
    from mooring.contract._schema import Schema
    from mooring.contract._statistics import ColumnStatistics, DatasetStatistics, NumericSummary

__all__ = ["FeatureWarning", "build_feature_spec", "quantile_boundaries"]

ONE_HOT_MAX = 50
EMBEDDING_MAX = 10_000
DEFAULT_BUCKETS = 10
DEFAULT_CLIP = 5.0
CROSS_BUCKETS = 10
_NUMERIC_TYPES = ("integer", "float")


class FeatureWarning(UserWarning):
    """A feature was built, but with a guard (e.g. a constant column)."""


def build_feature_spec(
    config: FeaturesConfig | None,
    *,
    statistics: DatasetStatistics,
    schema: Schema | None = None,
    label: str | None = None,
    timestamp: str | None = None,
) -> FeatureSpec:
    """Resolve the feature spec: options from ``config``, defaults and state from ``statistics``.

    Raises:
        ConfigError: a listed feature is not a column, is the label, or has options
            that do not fit its type; a cross names a column that is not a feature.
        DataError: a feature has no values at all in the training data.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> stats = compute_statistics(pa.table({"age": [20.0, 30.0, 40.0], "y": ["a", "b", "a"]}))
        >>> spec = build_feature_spec(None, statistics=stats, label="y")
        >>> spec.names, spec["age"].transform, spec["age"].mean
        (['age'], 'normalize', 30.0)
    """
    config = config or FeaturesConfig()
    label = label if label is not None else (schema.label if schema is not None else None)
    if timestamp is None and schema is not None:
        timestamp = schema.timestamp
    types = _column_types(statistics, schema)
    messages: list[str] = []
    # A column both listed and excluded is excluded: `exclude` is the later, deliberate
    # edit (e.g. to a file `mooring init` proposed line by line), not a conflict.
    listed = {n: f for n, f in config.features.items() if n not in config.exclude}
    messages += [
        f"[features] lists {n!r} and also excludes it: it is excluded; delete its line to "
        "silence this"
        for n in config.features
        if n in config.exclude
    ]
    _check_listed(listed, config, types, label)
    names = _feature_names(config, types, label, timestamp)
    features: list[Feature] = []
    for name in names:
        options = listed.get(name, FeatureConfig())
        col = statistics[name]
        kind = options.kind or ("numeric" if types[name] in _NUMERIC_TYPES else "categorical")
        if types[name] == "timestamp":
            raise ConfigError(
                f"[features] {name!r} is a timestamp column; timestamps are not model inputs "
                "yet — derive a numeric column (e.g. hour of day) or remove it from [features]"
            )
        if col.present == 0 or (col.numeric is None and col.strings is None):
            raise DataError(
                f"feature {name!r} has no values in the training data ({col.count} rows, all "
                f"missing); fix the source or add it to [features] exclude = [{name!r}]"
            )
        if kind == "numeric":
            if col.numeric is None or col.numeric.count == 0:
                raise ConfigError(
                    f"[features.{name}] kind = 'numeric' but the column holds text "
                    f"(type {types[name]}); use kind = 'categorical' or fix the data"
                )
            features.append(_numeric(name, options, col, messages))
        else:
            features.append(_categorical(name, options, col, types[name]))
    by_name = {f.name: f for f in features}
    crosses = tuple(_cross(c, by_name, statistics) for c in config.crosses)
    for message in messages:
        warnings.warn(message, FeatureWarning, stacklevel=2)
    if not features:
        raise ConfigError(
            "no features: every column is the label, the timestamp or excluded; list features "
            "in [features] or shorten [features] exclude"
        )
    return FeatureSpec(
        features=tuple(features),
        crosses=crosses,
        statistics_fingerprint=statistics.fingerprint(),
        schema_fingerprint=schema.fingerprint() if schema is not None else "",
        warnings=tuple(messages),
    )


def _column_types(statistics: DatasetStatistics, schema: Schema | None) -> dict[str, str]:
    if schema is None:
        return {name: col.type for name, col in statistics.columns.items()}
    # The contract decides the columns: one the data has and the contract lacks is new,
    # and no model trains on it until a contract that lists it is accepted.
    return {n: col.type for n, col in schema.columns.items() if n in statistics.columns}


def _check_listed(
    listed: dict[str, FeatureConfig],
    config: FeaturesConfig,
    types: dict[str, str],
    label: str | None,
) -> None:
    for name in [*listed, *config.exclude, *(c for x in config.crosses for c in x.columns)]:
        if name not in types:
            close = difflib.get_close_matches(name, list(types), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"[features] names {name!r}, which is not a column of the training data "
                f"and its contract; {hint}columns are {list(types)} (a column new in the data "
                "joins once a contract that lists it is accepted: mooring schema accept)"
            )
    if label is not None and label in listed:
        raise ConfigError(
            f"[features] lists {label!r}, which is the label ([data] label); "
            "a model cannot take its own answer as input — remove it from [features]"
        )


def _feature_names(
    config: FeaturesConfig, types: dict[str, str], label: str | None, timestamp: str | None
) -> list[str]:
    if config.include == "listed":
        names = [n for n in config.features if n not in config.exclude]
    else:
        names = [
            n
            for n, t in types.items()
            if n not in (label, timestamp)
            and n not in config.exclude
            and (t != "timestamp" or n in config.features)
        ]
    # Any name works: Keras and TensorFlow see safe names (features.layers._safe,
    # formats.model.signature_names); requests, reports and the contract keep this one.
    return names


def quantile_boundaries(summary: NumericSummary, buckets: int) -> tuple[float, ...]:
    """Up to ``buckets - 1`` distinct boundaries at equal fractions of the data.

    A column with a spike (most values 0) collapses to few distinct quantiles, so
    the grid is refined until the tail is split too; the boundaries are then
    thinned evenly. Deterministic for the same sketch.

    Examples:
        >>> from mooring.contract._statistics import NumericSummary
        >>> s = NumericSummary(); s.update(np.arange(100, dtype=float))
        >>> quantile_boundaries(s, 4)
        (24.0, 49.0, 74.0)
    """
    wanted = buckets - 1
    unique: list[float] = []
    for factor in (1, 2, 4, 8, 16, 32, 64):
        grid = np.linspace(0.0, 1.0, buckets * factor + 1)[1:-1]
        unique = sorted({float(v) for v in summary.quantiles(grid)})
        if len(unique) >= wanted:
            break
    # The minimum as a boundary only splits off nothing.
    unique = [v for v in unique if v > summary.min]
    if len(unique) > wanted:
        picks = np.round(np.linspace(0, len(unique) - 1, wanted)).astype(int)
        unique = [unique[i] for i in sorted(set(picks.tolist()))]
    return tuple(unique)


def _default_transform(summary: NumericSummary) -> str:
    if summary.min == summary.max:
        return "normalize"
    p25, p50, p75, p99 = summary.quantiles([0.25, 0.5, 0.75, 0.99])
    iqr = p75 - p25
    spiky = summary.zeros / max(1, summary.count) > 0.5 or iqr <= 0.0
    heavy = (p99 - p50) > 10.0 * iqr
    return "bucketize" if spiky or heavy else "normalize"


def _log_moments(summary: NumericSummary) -> tuple[float, float]:
    """Mean and variance of sign(x)·log1p(|x|), from the quantile sketch (no data pass)."""
    grid = (np.arange(2000) + 0.5) / 2000.0
    values = np.asarray(summary.quantiles(grid), dtype=np.float64)
    logged = np.sign(values) * np.log1p(np.abs(values))
    return float(logged.mean()), float(logged.var())


def _numeric(
    name: str, options: FeatureConfig, col: ColumnStatistics, messages: list[str]
) -> NumericFeature:
    summary = col.numeric
    assert summary is not None  # checked by the caller
    transform = options.transform or _default_transform(summary)
    missing = options.missing or ("indicator" if col.missing > 0 else "impute")
    if missing not in ("impute", "indicator"):
        raise ConfigError(
            f"[features.{name}] missing = {missing!r} is for categorical features; "
            "use 'impute' or 'indicator'"
        )
    clip = options.clip or DEFAULT_CLIP
    mean, variance = summary.mean, summary.variance
    if transform == "log_normalize":
        mean, variance = _log_moments(summary)
    # Relative to the values' spread, not their size: ids beyond 2^53 vary by millions
    # around 9e15, and are not constant however small that is beside their mean.
    spread = summary.max - summary.min
    constant = summary.min == summary.max or variance <= 1e-12 * spread * spread
    if constant:
        messages.append(
            f"feature {name!r} is constant in the training data (value {summary.mean:g}); its "
            f"normalised value is kept finite (variance 1) and clipped to ±{clip:g}; consider "
            f"[features] exclude = [{name!r}]"
        )
        variance = 1.0
    boundaries: tuple[float, ...] = ()
    if transform == "bucketize":
        boundaries = quantile_boundaries(summary, options.buckets or DEFAULT_BUCKETS)
    impute = summary.mean
    return NumericFeature(
        name=name,
        transform=transform,  # type: ignore[arg-type]
        missing=missing,
        clip=float(clip),
        impute=float(impute),
        mean=float(mean),
        variance=float(variance),
        boundaries=boundaries,
        lower=float(summary.min),
        upper=float(summary.max),
        constant=constant,
    )


def _embedding_dim(size: int) -> int:
    # A common rule of thumb (fast.ai): grows sub-linearly with cardinality.
    return int(min(32, max(4, round(1.6 * size**0.56))))


def _categorical(
    name: str, options: FeatureConfig, col: ColumnStatistics, col_type: str
) -> CategoricalFeature:
    missing = options.missing or ("category" if col.missing > 0 else "oov")
    if missing not in ("category", "oov"):
        raise ConfigError(
            f"[features.{name}] missing = {missing!r} is for numeric features; "
            "use 'category' or 'oov'"
        )
    oov = options.oov or 1
    if col_type in _NUMERIC_TYPES or col.strings is None:
        return _integer_categorical(name, options, col, missing, oov)
    strings = col.strings
    assert strings is not None  # checked by the caller
    min_count = options.min_count or 1
    limit = options.max_tokens or EMBEDDING_MAX
    vocabulary = tuple(v for v, c in strings.top(limit) if c >= min_count)
    exact = strings.frequencies.exact
    encoding = options.encoding or (
        "hashing"
        if not exact or strings.distinct > EMBEDDING_MAX
        else "one_hot"
        if len(vocabulary) <= ONE_HOT_MAX
        else "embedding"
    )
    if encoding == "hashing":
        bins = options.bins or int(
            min(1 << 20, max(64, 2 ** math.ceil(math.log2(max(2, strings.distinct) * 2))))
        )
        return CategoricalFeature(
            name=name,
            encoding="hashing",
            missing=missing,
            bins=bins,
            dim=options.dim or _embedding_dim(bins),
            oov=oov,
        )
    feature = CategoricalFeature(
        name=name,
        encoding=encoding,
        missing=missing,
        vocabulary=vocabulary,
        oov=oov,
    )
    if encoding == "embedding":
        feature = _with(feature, dim=options.dim or _embedding_dim(feature.size))
    return feature


def _integer_categorical(
    name: str, options: FeatureConfig, col: ColumnStatistics, missing: str, oov: int
) -> CategoricalFeature:
    summary = col.numeric
    assert summary is not None
    lo, hi = summary.min, summary.max
    span = hi - lo
    if options.encoding == "hashing" or span > EMBEDDING_MAX:
        bins = options.bins or 1024
        return CategoricalFeature(
            name=name,
            encoding="hashing",
            missing=missing,  # type: ignore[arg-type]
            source="integer",
            bins=bins,
            dim=options.dim or _embedding_dim(bins),
            oov=oov,
        )
    # Integer codes: the vocabulary is the observed range, in ascending order.
    vocabulary = tuple(str(v) for v in range(math.floor(lo), math.ceil(hi) + 1))
    encoding = options.encoding or ("one_hot" if len(vocabulary) <= ONE_HOT_MAX else "embedding")
    feature = CategoricalFeature(
        name=name,
        encoding=encoding,
        missing=missing,  # type: ignore[arg-type]
        source="integer",
        vocabulary=vocabulary,
        oov=oov,
    )
    if encoding == "embedding":
        feature = _with(feature, dim=options.dim or _embedding_dim(feature.size))
    return feature


def _with(feature: CategoricalFeature, **changes: Any) -> CategoricalFeature:
    from dataclasses import replace

    return replace(feature, **changes)


def _cross(
    config: CrossConfig, features: dict[str, Feature], statistics: DatasetStatistics
) -> CrossFeature:
    boundaries: list[tuple[float, ...]] = []
    for name in config.columns:
        feature = features.get(name)
        if feature is None:
            raise ConfigError(
                f"[[features.crosses]] columns {config.columns}: {name!r} is not a feature "
                "(excluded, or not listed with include = 'listed'); make it a feature first"
            )
        if isinstance(feature, NumericFeature):
            summary = statistics[name].numeric
            assert summary is not None
            boundaries.append(feature.boundaries or quantile_boundaries(summary, CROSS_BUCKETS))
        else:
            boundaries.append(())
    return CrossFeature(
        columns=tuple(config.columns),
        bins=config.bins,
        dim=config.dim or None,
        boundaries=tuple(boundaries),
    )
