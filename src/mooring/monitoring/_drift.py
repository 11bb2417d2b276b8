"""Drift: a window of the prediction log against the training statistics stored with the version.

The current window is summarised by the contract layer's :func:`compute_statistics` (the
same one-pass, sketch-based statistics the baseline was made with), then each feature is
compared with its baseline:

* numbers: PSI and Jensen-Shannon distance over the baseline's quantile bins (ties merged,
  open outer bins for values outside the training range), Wasserstein distance divided by
  the baseline's standard deviation, and the Kolmogorov-Smirnov statistic;
* categories: Jensen-Shannon distance, PSI and L-infinity over the categories, with
  training categories rarer than ``rare_share`` merged into one bin so that a handful of
  rows in a rare category cannot raise an alarm on their own;
* always: the share of numbers outside the training ``[min, max]``, the share of
  categories never seen in training and the change in the missing share. Each can decide
  on its own; a feature constant in training follows the same share thresholds as the rest
  (a value that differs is out of range, or unseen).

A feature drifts when any deciding metric reaches its floor (``[monitoring.thresholds]``,
overridable per feature) **and** exceeds ``[monitoring] calibration_margin`` × its natural
variation: the larger of what was measured at registration between windows of the training
data of the same size (:mod:`mooring.monitoring._calibration`; over time when the rows have
a time order) and the sampling noise of the distance at the window's own row count
(:mod:`mooring.monitoring._noise`: a category with hundreds of values is not flagged for
the noise of its small shares). The share of unseen categories is also held to the
training period's own rate of new values at the window's size (a column of thousands of
values meets new ones every month: :meth:`Calibration.own_novelty
<mooring.monitoring._calibration.Calibration.own_novelty>`). The report holds both numbers
and where the natural variation comes from, and each reason says which test fired:
"unseen_share 5.9% vs training's own 3.71% (limit 5.57%; …)", "jensen_shannon 0.21
beyond its natural 0.12 at 9,000 rows (limit 0.18; …)". A calibration stored before the
own rate was measured is read as it was (a note says so). A feature none of whose tests
can tell a shift of its floor's size from noise at the window's row count (floor past
margin × its noise) is
``insufficient_data`` with the reason "too few rows (120; a shift of the threshold size
is told from noise from about 640)" (:func:`~mooring.monitoring._noise.resolving_rows`),
never drift nor "ok": only its shares decide then, far past chance (a unit that
changed). The event-time column (``[data] timestamp``) and any other date or
time column are never judged: time moves on, so they would always "drift". Every distance
is recorded whether it decides or not. Fewer rows
than ``min_samples`` give ``insufficient_data``, never drift. The same comparison runs per
segment (``[monitoring] segments``) against the training rows of that segment, and on the
model's outputs against their evaluation-time distribution (prediction drift). The
report's types and file format live in :mod:`mooring.formats._drift`.

Examples:
    >>> report = compute_drift(baseline_stats, window_table, cfg.monitoring)  # doctest: +SKIP
    >>> report.status, report.drifted  # doctest: +SKIP
    ('drift', ['age'])
    >>> report = check_drift(cfg, registry, last=5000)  # log → JSON + HTML  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._distance import (
    Distributions,
    categorical_distributions,
    jensen_shannon,
    ks_statistic,
    linf,
    lump_rare,
    numeric_distributions,
    psi,
    wasserstein,
)
from mooring.contract._statistics import ColumnStatistics, DatasetStatistics
from mooring.formats._drift import (
    DriftReport,
    FeatureDrift,
    Histogram,
    PredictionDrift,
    RenderDrift,
    SegmentDrift,
    drift_folder,
    prune_reports,
)
from mooring.formats._predictions import OUTPUT_PREFIX, read_prediction_log
from mooring.formats._version_record import References
from mooring.monitoring._calibration import Calibration
from mooring.monitoring._drift_thresholds import resolve_thresholds
from mooring.monitoring._noise import (
    SHARES,
    has_tests,
    judge,
    natural_variation,
    resolving_rows,
    sampling_noise,
    strict_share_noise,
    told,
    too_few_rows,
)
from mooring.monitoring._window import (
    WindowSummary,
    summarize_window,
    time_columns,
    window_bounds,
)

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.registry import Registry

__all__ = [
    "check_drift",
    "compare_columns",
    "compare_statistics",
    "compute_drift",
    "read_prediction_log",
    "resolve_thresholds",
]

log = logging.getLogger("mooring.monitoring")


Status = Literal["ok", "drift", "insufficient_data"]
#: ``summarize(version, plan)``: a window's summary, made elsewhere (see check_drift).
Summarize = Callable[[int, dict[str, Any]], WindowSummary]


def _clean(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _histogram(dist: Distributions, which: str, rows: int) -> Histogram:
    shares = dist.baseline if which == "baseline" else dist.current
    return Histogram(
        bins=tuple(dist.labels),
        shares=tuple(round(float(s), 6) for s in shares),
        counts=tuple(round(float(s) * rows) for s in shares),
    )


def compare_columns(
    name: str,
    baseline: ColumnStatistics,
    current: ColumnStatistics | None,
    config: MonitoringConfig,
    natural: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> FeatureDrift:
    """Compare one column's window statistics with its baseline statistics.

    ``natural`` is the column's calibrated natural variation at this window's size
    (metric → distance, see :meth:`Calibration.natural`) and ``kinds`` which comparison
    gave it (:meth:`Calibration.natural_kind`); the sampling noise of each distance at
    this window's row count is always known (:mod:`mooring.monitoring._noise`), and a
    metric decides only past its floor and ``calibration_margin`` × the larger of the two.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> b = compute_statistics(pa.table({"x": [float(i % 50) for i in range(5000)]}))
        >>> c = compute_statistics(pa.table({"x": [float(i % 50) + 30 for i in range(5000)]}))
        >>> compare_columns("x", b["x"], c["x"], MonitoringConfig()).status
        'drift'
    """
    numeric = baseline.numeric is not None and baseline.numeric.count > 0
    kind = "numeric" if numeric else "categorical"
    thresholds = resolve_thresholds(config, name, kind)
    rows = current.present if current is not None else 0
    metrics: dict[str, float | None] = {
        "missing_share_baseline": baseline.null_fraction,
        "missing_share_current": current.null_fraction if current is not None else None,
    }
    metrics["missing_change"] = (
        current.null_fraction - baseline.null_fraction if current is not None else None
    )
    reasons: list[str] = []
    hist_b: Histogram | None = None
    hist_c: Histogram | None = None
    shares = None
    if kind == "numeric":
        b = baseline.numeric
        assert b is not None
        c = current.numeric if current is not None else None
        dist = numeric_distributions(baseline, current, bins=config.bins) if current else None
        if c is not None and c.count > 0 and dist is not None:
            metrics["psi"] = _clean(psi(dist.baseline, dist.current))
            metrics["jensen_shannon"] = _clean(jensen_shannon(dist.baseline, dist.current))
            raw = wasserstein(b.sketch, c.sketch)
            metrics["wasserstein_units"] = _clean(raw)
            metrics["wasserstein"] = _clean(raw / b.std) if b.std > 0 else None
            metrics["ks"] = _clean(ks_statistic(b.sketch, c.sketch))
            below = float(c.sketch.cdf([b.min], inclusive=False)[0])
            above = 1.0 - float(c.sketch.cdf([b.max], inclusive=True)[0])
            metrics["out_of_range_share"] = max(0.0, below) + max(0.0, above)
            hist_b = _histogram(dist, "baseline", b.count)
            hist_c = _histogram(dist, "current", c.count)
            shares = dist.baseline
        else:
            for key in ("psi", "jensen_shannon", "wasserstein", "ks", "out_of_range_share"):
                metrics[key] = None
    else:
        bs = baseline.strings
        dist = (
            categorical_distributions(baseline, current)
            if current is not None and bs is not None
            else None
        )
        if dist is not None and bs is not None:
            seen = set(bs.frequencies.counts)
            unseen = float(
                sum(
                    float(share)
                    for label, share in zip(dist.labels, dist.current, strict=True)
                    if label not in seen
                )
            )
            metrics["unseen_share"] = unseen
            lumped = lump_rare(dist, config.rare_share)
            metrics["psi"] = _clean(psi(lumped.baseline, lumped.current))
            metrics["jensen_shannon"] = _clean(jensen_shannon(lumped.baseline, lumped.current))
            metrics["linf"] = _clean(linf(lumped.baseline, lumped.current))
            shares = lumped.baseline
            shown = lump_rare(dist, 0.0) if len(dist.labels) <= 30 else lumped
            hist_b = _histogram(shown, "baseline", bs.count)
            hist_c = _histogram(shown, "current", rows)
        else:
            for key in ("psi", "jensen_shannon", "linf", "unseen_share"):
                metrics[key] = None
    margin = config.calibration_margin
    noise, blind = _noise(baseline, shares, rows, thresholds, config)
    usual, sources = natural_variation(
        {k: v for k, v in (natural or {}).items() if k in thresholds},
        kinds or {},
        {k: v for k, v in noise.items() if k in thresholds},
    )
    # A window of min_samples rows holds fewer present values where training already had
    # missing ones: distributions are judged from min_samples × the training present share
    # (less a 10% tolerance),
    # the missing share from the window's rows (a field gone missing is drift, not a lack
    # of data).
    window = current.count if current is not None else 0
    needed = 0.9 * config.min_samples * (1.0 - baseline.null_fraction)
    deciding = _deciding(thresholds, full=rows >= needed, blind=blind)
    reasons += judge(metrics, deciding, usual, sources, margin, rows)
    status = "insufficient_data" if window < config.min_samples else "drift" if reasons else "ok"
    if status == "ok" and blind:
        status, reasons = _too_few(baseline, shares, thresholds, config, rows, metrics)
    return FeatureDrift(
        natural={k: round(v, 6) for k, v in usual.items()},
        natural_kind=sources,
        name=name,
        kind=kind,
        status=status,
        rows=rows,
        metrics=metrics,
        thresholds=thresholds,
        reasons=reasons if status != "ok" else [],
        baseline=hist_b,
        current=hist_c,
    )


def _noise(
    baseline: ColumnStatistics,
    shares: Any,
    rows: int,
    thresholds: Mapping[str, float | None],
    config: MonitoringConfig,
) -> tuple[dict[str, float], bool]:
    """Each test's sampling noise at ``rows``, and whether the feature is blind there: no
    test tells a shift of its floor's size from noise (too few rows). Only shifts far out
    of chance's reach are drift then: the shares (a unit that changed puts every value
    out of range), at the square of the miss rate."""
    quantile = config.calibration_quantile
    noise = sampling_noise(baseline, shares, rows, quantile) if rows else {}
    blind = has_tests(noise, thresholds) and not told(noise, thresholds, config.calibration_margin)
    if blind:
        noise.update(strict_share_noise(baseline, rows, 1.0 - (1.0 - quantile) ** 2))
    return noise, blind


def _deciding(
    thresholds: Mapping[str, float | None], *, full: bool, blind: bool
) -> dict[str, float | None]:
    """The floors that decide: only the missing share's unless the window is ``full``
    (enough present values); only the shares' on a ``blind`` feature, none of whose tests
    tells a shift of its floor's size from noise (on so few rows the distances' tails are
    what chance gives)."""
    if not full:
        return {k: (v if k == "missing" else None) for k, v in thresholds.items()}
    if not blind:
        return dict(thresholds)
    return {k: (v if k in SHARES else None) for k, v in thresholds.items()}


def _too_few(
    baseline: ColumnStatistics,
    shares: Any,
    thresholds: Mapping[str, float | None],
    config: MonitoringConfig,
    rows: int,
    metrics: dict[str, float | None],
) -> tuple[Status, list[str]]:
    """None of the feature's tests can tell a shift of its floor's size from noise on
    ``rows``: too few rows, and from how many one can (recorded as ``resolving_rows``)."""
    resolving = resolving_rows(
        baseline, shares, thresholds, config.calibration_margin, config.calibration_quantile
    )
    metrics["resolving_rows"] = None if resolving is None else float(resolving)
    return "insufficient_data", [too_few_rows(rows, resolving)]


def _compare_all(
    baseline: DatasetStatistics,
    current: DatasetStatistics,
    config: MonitoringConfig,
    names: Sequence[str],
    calibration: Calibration | None = None,
) -> list[FeatureDrift]:
    out = []
    for name in names:
        override = config.features.get(name)
        if override is not None and not override.enabled:
            continue
        column = current.columns.get(name)
        natural = kinds = None
        if calibration is not None and column is not None:
            natural = calibration.natural(name, column.count)
            kinds = calibration.natural_kind(name, column.count)
            own = calibration.own_novelty(name, column.count)
            if own is not None and own >= natural.get("unseen", 0.0):
                # New values at the training period's own pace are not drift.
                natural["unseen"] = own
                kinds["unseen"] = f"own_{calibration.novelty_split or 'time'}"
        out.append(compare_columns(name, baseline[name], column, config, natural, kinds))
    return out


def compute_drift(  # noqa: PLR0913 - keyword-only inputs a drift report may be judged with
    baseline: DatasetStatistics,
    current: pa.Table | WindowSummary,
    config: MonitoringConfig,
    *,
    model: str = "",
    version: int | None = None,
    segment_baselines: Mapping[str, Mapping[str, DatasetStatistics]] | None = None,
    prediction_baseline: DatasetStatistics | None = None,
    prediction_source: str | None = None,
    calibration: Calibration | None = None,
    notes: Sequence[str] = (),
    timestamp: str | None = None,
) -> DriftReport:
    """Judge a window of logged rows (features, optionally outputs) against the baseline.

    Args:
        baseline: the training statistics (the drift baseline stored with the version).
        current: the window; log columns and ``output.*`` columns are recognised, other
            columns are compared with the baseline column of the same name. Or the
            window's :class:`~mooring.monitoring._window.WindowSummary` (merged from
            shards; :func:`window_plan` says what to summarise), judged the same way.
        config: thresholds, bins, minimum sample size, segments.
        segment_baselines: ``{column: {value: statistics of the training rows with that
            value}}``; segments without one are reported as ``no_baseline``.
        prediction_baseline: statistics of the outputs (``output.score`` / ``output.class``
            / ``output.value``) at evaluation time; without it there is no prediction drift.
        calibration: the features' natural variation inside the training data; without
            it the floors and each distance's sampling noise decide.
        timestamp: the event-time column (``[data] timestamp``): never judged, nor is
            any other date or time column of the baseline.

    Examples:
        >>> report = compute_drift(stats, table, MonitoringConfig())  # doctest: +SKIP
    """
    plan = window_plan(baseline, config, prediction_baseline, timestamp=timestamp)
    if isinstance(current, pa.Table):
        current = summarize_window(current, **plan)
    notes = list(notes)
    skip = time_columns(baseline, timestamp)
    names = [n for n in current.columns if n in baseline.columns and n not in skip]
    unknown = [n for n in current.columns if n not in baseline.columns]
    if timed := sorted(skip & set(current.columns)):
        notes.append(f"time columns, never judged for drift: {', '.join(timed)}")
    if unknown:
        notes.append(
            f"columns without a training baseline (not judged): {', '.join(sorted(unknown))}"
        )
    rows = current.rows
    results = _compare_all(baseline, current.features, config, names, calibration) if names else []
    segments = _segments(current, config, segment_baselines or {}, calibration, skip)
    prediction = None
    if config.prediction:
        prediction = _prediction(current, config, prediction_baseline, prediction_source)
    if rows < config.min_samples:
        status: Status = "insufficient_data"
        notes.append(
            f"{rows} rows in the window, fewer than min_samples = {config.min_samples}: "
            "distances are recorded but not judged"
        )
    elif (
        any(f.drifted for f in results)
        or any(s.status == "drift" for s in segments)
        or (prediction is not None and prediction.status == "drift")
    ):
        status = "drift"
    elif results and all(f.status == "insufficient_data" for f in results):
        status = "insufficient_data"
        notes.append(
            f"too few rows ({rows:,}): no feature's tests tell a shift of the threshold size "
            "from noise on them"
        )
    else:
        status = "ok"
    return DriftReport(
        model=model,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        window=dict(window_bounds(current)),
        status=status,
        features=results,
        segments=segments,
        prediction=prediction,
        settings={
            "min_samples": config.min_samples,
            "bins": config.bins,
            "rare_share": config.rare_share,
            "baseline_rows": baseline.num_rows,
            "baseline_source": baseline.source,
            **_calibration_settings(config, calibration, notes),
        },
        notes=notes,
    )


def compare_statistics(
    baseline: DatasetStatistics,
    current: DatasetStatistics,
    config: MonitoringConfig,
    *,
    columns: Sequence[str] | None = None,
    calibration: Calibration | None = None,
    timestamp: str | None = None,
    model: str = "",
    version: int | None = None,
) -> DriftReport:
    """Judge a whole file's statistics against a baseline, the way a window is judged.

    What ``mooring validate FILE`` asks: the file's ``columns`` (default: every one) are
    compared with ``baseline`` under ``config``'s floors, margin and noise, with the
    version's ``calibration`` when there is one; never the time columns. A file of any
    size is judged: no window floor (``min_samples``) applies, and a feature on fewer
    rows than its tests need to tell a shift of their floors' size from noise is "too
    few rows". No segments, no outputs.

    Examples:
        >>> report = compare_statistics(train_stats, month_stats, cfg.monitoring)  # doctest: +SKIP
        >>> report.drifted  # doctest: +SKIP
        ['age', 'workclass']
    """
    names = [n for n in (columns or current.column_names) if n in current.columns]
    summary = WindowSummary(rows=current.num_rows, features=current, columns=names)
    judged = config.model_copy(update={"min_samples": 1, "segments": [], "prediction": False})
    return compute_drift(
        baseline,
        summary,
        judged,
        model=model,
        version=version,
        calibration=calibration,
        timestamp=timestamp,
    )


def window_plan(
    baseline: DatasetStatistics,
    config: MonitoringConfig,
    prediction_baseline: DatasetStatistics | None = None,
    *,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """What :func:`summarize_window` must summarise for :func:`compute_drift` to judge it
    (never the time columns, :func:`~mooring.monitoring._window.time_columns`)."""
    skip = time_columns(baseline, timestamp)
    outputs = (
        [n for n in prediction_baseline.columns if n.startswith(OUTPUT_PREFIX)]
        if prediction_baseline is not None and config.prediction
        else []
    )
    return {
        "feature_names": [n for n in baseline.columns if n not in skip],
        "segments": list(config.segments),
        "output_names": outputs,
    }


def _calibration_settings(
    config: MonitoringConfig, calibration: Calibration | None, notes: list[str]
) -> dict[str, Any]:
    if calibration is None:
        notes.append(
            "drift thresholds are not calibrated for this version: the floors and each "
            "distance's sampling noise decide"
        )
        return {"calibration": None}
    suggested = calibration.suggested_min_samples
    if suggested is not None and config.min_samples < suggested:
        notes.append(
            f"min_samples = {config.min_samples}: below {suggested} rows the training data's own "
            "windows already vary past the floors, so thresholds rise to their natural variation"
        )
    elif suggested is None:
        notes.append(
            "even windows of the largest calibrated size vary past the floors inside the "
            "training data; thresholds follow the natural variation"
        )
    if calibration.novelty is None:
        notes.append(
            "this version's calibration predates the training period's own rate of new "
            "values: its unseen shares are judged as then, against new values per block of "
            "the training data and their sampling noise (a version registered now measures it)"
        )
    return {
        "calibration": {
            "method": calibration.method,
            "margin": config.calibration_margin,
            "quantile": calibration.quantile,
            "sizes": list(calibration.sizes),
            "suggested_min_samples": suggested,
        }
    }


def _segments(
    current: WindowSummary,
    config: MonitoringConfig,
    baselines: Mapping[str, Mapping[str, DatasetStatistics]],
    calibration: Calibration | None,
    skip: frozenset[str] = frozenset(),
) -> list[SegmentDrift]:
    out: list[SegmentDrift] = []
    for column in config.segments:
        if column not in current.segment_columns:
            out.append(
                SegmentDrift(
                    column, "*", 0, "no_baseline", note=f"column {column!r} is not in the log"
                )
            )
            continue
        per_value = baselines.get(column)
        for value, count in current.segment_values(column):
            if per_value is None:
                out.append(
                    SegmentDrift(
                        column,
                        value,
                        count,
                        "no_baseline",
                        note="no per-segment training statistics (training data unavailable)",
                    )
                )
                continue
            base = per_value.get(value)
            if base is None:
                out.append(
                    SegmentDrift(
                        column, value, count, "no_baseline", note="value never seen in training"
                    )
                )
                continue
            stats = current.segments[column][value][1]
            names = [n for n in stats.columns if n in base.columns and n not in {column, *skip}]
            results = _compare_all(base, stats, config, names, calibration)
            if count < config.min_samples:
                status = "insufficient_data"
            else:
                status = "drift" if any(f.drifted for f in results) else "ok"
            out.append(SegmentDrift(column, value, count, status, results))
    return out


def _prediction(
    current: WindowSummary,
    config: MonitoringConfig,
    baseline: DatasetStatistics | None,
    source: str | None,
) -> PredictionDrift:
    if baseline is None:
        return PredictionDrift(
            "unavailable",
            source,
            note=source or "no evaluation-time output distribution for this version",
        )
    if not current.has_outputs or current.outputs is None:
        return PredictionDrift("unavailable", source, note="the log has no output columns")
    names = [n for n in current.outputs.columns if n in baseline.columns]
    results = _compare_all(baseline, current.outputs, config, names)
    if current.rows < config.min_samples:
        status = "insufficient_data"
    else:
        status = "drift" if any(f.drifted for f in results) else "ok"
    return PredictionDrift(status, source, results)


def check_drift(
    cfg: MooringConfig,
    registry: Registry,
    *,
    version: int | None = None,
    last: int | None = None,
    since: datetime | None = None,
    write: bool = True,
    html: RenderDrift | None = None,
    summarize: Summarize | None = None,
) -> DriftReport:
    """Drift of the serving version's logged traffic against its stored training statistics.

    ``version`` defaults to the production version; the window to the last
    ``[monitoring] window_rows`` rows. With ``write`` the report is saved as
    ``<home>/monitoring/<model>/drift/<UTC time>.json`` plus ``latest.json``, and
    ``.html`` when ``html`` renders the page, and older reports are pruned by
    ``[monitoring.keep_reports]`` (the CLI and ``mooring serve --monitor``
    pass :func:`mooring.dashboard.render_drift_html`). ``summarize(version, plan)``
    replaces reading the window: it returns the window's :class:`WindowSummary` with
    :func:`summarize_window`'s arguments ``plan`` (how sharded logs are judged on an
    engine, :func:`mooring.scale.sharded_drift`).

    Raises:
        NotFoundError: no production version (and no ``version``), or no log.
        DataError: the version has no stored training statistics.

    Examples:
        >>> report = check_drift(load_config("mooring.toml"), registry, last=5000)  # doctest: +SKIP
        >>> report.files["html"]  # doctest: +SKIP
    """
    from mooring.errors import DataError, NotFoundError
    from mooring.monitoring._baselines import (
        calibration_for,
        prediction_baseline,
        segment_baselines,
    )

    name = cfg.project.name
    if version is None:
        deployment = registry.deployment(name)
        version = deployment.production
        if version is None:
            raise NotFoundError(
                f"model '{name}' has no production version to check; deploy one "
                f"(`mooring models promote {name} VERSION`) or pass --version N"
            )
    mv = registry.get(name, version=version)
    if mv.statistics is None:
        raise DataError(
            f"{mv.ref} was registered without training statistics, the drift baseline; "
            "register versions with statistics= (mooring run does)"
        )
    baseline = DatasetStatistics.from_dict(mv.statistics)
    notes: list[str] = []
    segments = None
    if cfg.monitoring.segments:
        segments, note = segment_baselines(cfg, mv, cfg.monitoring.segments)
        if note:
            notes.append(note)
    outputs, source = (None, None)
    if cfg.monitoring.prediction:
        outputs, source = prediction_baseline(cfg, registry, mv)
    calibration, why = calibration_for(cfg, mv)
    if why:
        notes.append(why)
    current: pa.Table | WindowSummary
    if summarize is not None:
        plan = window_plan(baseline, cfg.monitoring, outputs, timestamp=cfg.data.timestamp)
        current = summarize(version, plan)
    else:
        url = cfg.serving.log_url or str(cfg.home / "predictions")
        if last is None and since is None:
            last = cfg.monitoring.window_rows
        current = read_prediction_log(url, name, version=version, last=last, since=since)
    report = compute_drift(
        baseline,
        current,
        cfg.monitoring,
        model=name,
        version=version,
        segment_baselines=segments,
        prediction_baseline=outputs,
        prediction_source=source,
        calibration=calibration,
        notes=notes,
        timestamp=cfg.data.timestamp,
    )
    # What moved the predictions: a drifted window's rows explained (not a summarized one).
    evaluation = (mv.record.run.references or References()).evaluation or {}
    if report.status == "drift" and isinstance(current, pa.Table) and "attributions" in evaluation:
        from mooring.monitoring._attribution_shift import attribution_shift

        model_dir = registry.load(name, version=version)
        report.attributions = attribution_shift(model_dir, evaluation, current)
    if write:
        folder = drift_folder(cfg.home, name)
        report.save(folder, html=html)
        keep = cfg.monitoring.keep_reports
        try:
            prune_reports(folder, max_age_s=keep.days, max_files=keep.files)
        except OSError as exc:
            # The report is saved; what could not be removed is removed by a later check.
            log.warning("drift reports in %s not pruned: %s", folder, exc)
    return report
