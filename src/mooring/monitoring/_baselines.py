"""What a version is judged against, frozen with it at registration: its references.

A deployed version is judged against numbers that must not move under it. ``mooring run``
computes them in the same run that trains and evaluates the version, and registers them
in the version's run record under ``"references"`` (:func:`freeze_references`):

* ``segments``: per-segment training statistics for ``[monitoring] segments``
  (``{column: {value: statistics}}``), so serving rows with ``sex = Female`` are compared
  with the *training rows* with ``sex = Female``;
* ``outputs``: statistics of the version's own outputs on its evaluation data
  (``output.score`` / ``output.class`` / ``output.value``), the reference of prediction
  drift and of the canary's output guardrail;
* ``evaluation``: its evaluation metrics with the fingerprint and name of the data they
  were measured on (and production's metrics on that same data, when the run compared
  them), so two versions' numbers are compared only when that data is the same;
* ``calibration``: the natural variation of every feature's drift distances inside the
  training data (:mod:`mooring.monitoring._calibration`);
* ``estimation``: a binary classifier's score map from its held-out scores and labels,
  from which its performance on served traffic is estimated before labels arrive
  (:mod:`mooring.monitoring._estimate`).

Nothing is derived later from whatever ``mooring.toml`` says now. A version registered
before references existed gets each one computed **once** from the files of its own
lineage (``lineage.train_data`` / ``.eval_data``) when their sha256 still equals
the lineage's fingerprints, cached under ``<home>/monitoring/<model>/baseline/``;
otherwise the reference is reported as missing, with the reason, never replaced.

Examples:
    >>> mv = registry.get("income", version=3)  # doctest: +SKIP
    >>> stats, source = prediction_baseline(cfg, registry, mv)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.formats._files import atomic_write, file_fingerprint
from mooring.formats._predictions import outputs_from_arrays
from mooring.formats._version_record import REFERENCES, References
from mooring.monitoring._calibration import Calibration, calibrate, calibration_order

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.registry import ModelVersion, Registry

__all__ = [
    "REFERENCES",
    "UNKNOWN_EVALUATION_DATA",
    "calibration_for",
    "comparability_note",
    "evaluation_data_label",
    "evaluation_outputs",
    "evaluation_reference",
    "freeze_references",
    "prediction_baseline",
    "prediction_statistics",
    "reference_data_label",
    "segment_baselines",
    "segment_statistics",
    "stale_evaluation",
]

FORMAT = "mooring.references"
SegmentBaselines = dict[str, dict[str, DatasetStatistics]]


def _folder(cfg: MooringConfig) -> Path:
    return cfg.home / "monitoring" / cfg.project.name / "baseline"


def prediction_statistics(
    *,
    probabilities: npt.ArrayLike | None = None,
    classes: Sequence[str] | npt.ArrayLike | None = None,
    values: npt.ArrayLike | None = None,
) -> DatasetStatistics:
    """Statistics of a model's outputs, in the shape prediction drift compares.

    Examples:
        >>> s = prediction_statistics(probabilities=np.array([[0.9, 0.1], [0.2, 0.8]]),
        ...                           classes=["<=50K", ">50K"])
        >>> s.column_names
        ['output.score', 'output.class']
    """
    table = outputs_from_arrays(
        probabilities=None if probabilities is None else np.asarray(probabilities),
        classes=None if classes is None else [_text(c) for c in np.asarray(classes).tolist()],
        values=None if values is None else np.asarray(values),
    )
    return compute_statistics(table)


def evaluation_outputs(
    task: str,
    predictions: npt.ArrayLike | None,
    label_vocabulary: Sequence[str] | None,
    threshold: float | None = None,
) -> DatasetStatistics | None:
    """The statistics of a model's outputs on its evaluation data, as the server logs them.

    ``predictions`` are the evaluation's: the positive probability (binary), class
    probabilities (multiclass) or values (regression). Classes are what the server
    answers: for a binary model with an operating ``threshold`` (the one registered with
    the version), the positive class where its probability is at least the threshold;
    otherwise the most probable label.

    >>> evaluation_outputs("binary", np.array([0.2, 0.9]), ["no", "yes"]).column_names
    ['output.score', 'output.class']
    >>> s = evaluation_outputs("binary", np.array([0.2, 0.3, 0.9]), ["no", "yes"], 0.25)
    >>> s["output.class"].count
    3
    """
    if predictions is None:
        return None
    pred = np.asarray(predictions, dtype=np.float64)
    if task == "regression":
        return prediction_statistics(values=pred.reshape(-1))
    vocab = np.asarray(list(label_vocabulary)) if label_vocabulary else None
    if task == "binary":
        proba = pred if pred.ndim == 2 else np.stack([1.0 - pred, pred], axis=1)
    else:
        proba = pred
    if vocab is None:
        classes = None
    elif task == "binary" and threshold is not None and len(vocab) == 2:
        classes = vocab[(proba[:, 1] >= threshold).astype(np.int64)]
    else:
        classes = vocab[np.argmax(proba, axis=1)]
    return prediction_statistics(probabilities=proba, classes=classes)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def segment_statistics(table: pa.Table, columns: Sequence[str]) -> SegmentBaselines:
    """Statistics of the rows of each value of each segment column.

    >>> t = pa.table({"sex": ["F", "M", "F"], "age": [30, 40, 50]})
    >>> sorted(segment_statistics(t, ["sex"])["sex"])
    ['F', 'M']
    """
    out: SegmentBaselines = {}
    for column in columns:
        if column not in table.column_names:
            continue
        text = pc.cast(table[column], pa.string())
        per: dict[str, DatasetStatistics] = {}
        for value in sorted(v for v in pc.unique(text).to_pylist() if v is not None):
            per[value] = compute_statistics(table.filter(pc.equal(text, value)))
        out[column] = per
    return out


def freeze_references(  # noqa: PLR0913 - keyword-only: each one a reference frozen with it
    cfg: MooringConfig,
    *,
    train_table: pa.Table,
    train_statistics: DatasetStatistics,
    outputs: DatasetStatistics | None,
    metrics: Mapping[str, float],
    eval_data: str | None,
    eval_fingerprint: str | None,
    eval_rows: int | None = None,
    baseline: Mapping[str, Any] | None = None,
    estimation: Mapping[str, Any] | None = None,
    attributions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a version will be judged against, as stored in its run record.

    Args:
        train_table: the rows the version was trained on.
        train_statistics: their statistics (the drift baseline, stored beside).
        outputs: statistics of the version's outputs on its evaluation data.
        metrics: its evaluation metrics; ``eval_data`` / ``eval_fingerprint`` name the
            data they were measured on.
        baseline: ``{"version", "metrics"}`` of the production model evaluated on the
            same data in the same run, when there was one.
        estimation: the estimation reference of its held-out scores
            (:func:`mooring.monitoring._estimate.reference_of`), binary classifiers only.
        attributions: its explanation averaged over a sample of the evaluation rows
            (:func:`mooring.evaluation._model.attribution_summary`), what a drifted
            window's attributions are set against (what moved the predictions).

    Examples:
        >>> refs = freeze_references(cfg, train_table=table, train_statistics=stats,
        ...     outputs=None, metrics={"auc": 0.9}, eval_data="eval.csv",
        ...     eval_fingerprint="ab12…")  # doctest: +SKIP
        >>> sorted(refs)  # doctest: +SKIP
        ['calibration', 'estimation', 'evaluation', 'format', 'outputs', 'segments', 'settings']
    """
    monitoring = cfg.monitoring
    order = calibration_order(monitoring, cfg.data.timestamp)
    calibration = None
    if order is not None:
        columns = _calibrated_columns(cfg, train_statistics)
        calibration = calibrate(
            train_table,
            train_statistics,
            monitoring,
            order=order,
            timestamp=cfg.data.timestamp,
            columns=columns,
        )
    segments = segment_statistics(train_table, monitoring.segments)
    return {
        "format": FORMAT,
        "segments": {c: {v: s.to_dict() for v, s in per.items()} for c, per in segments.items()},
        "outputs": None if outputs is None else outputs.to_dict(),
        "evaluation": {
            "metrics": dict(metrics),
            "data": eval_data,
            "data_fingerprint": eval_fingerprint,
            "rows": eval_rows,
            "baseline": None if baseline is None else dict(baseline),
            "attributions": None if attributions is None else dict(attributions),
        },
        "calibration": None if calibration is None else calibration.to_dict(),
        "estimation": None if estimation is None else dict(estimation),
        "settings": _settings(cfg),
    }


def _settings(cfg: MooringConfig) -> dict[str, Any]:
    """The ``[monitoring]`` settings a calibration depends on."""
    m = cfg.monitoring
    return {"bins": m.bins, "rare_share": m.rare_share, "segments": list(m.segments)}


def _references(version: ModelVersion) -> References:
    return version.record.run.references or References()


def _lineage_file(
    cfg: MooringConfig, version: ModelVersion, which: str
) -> tuple[Path | None, str | None]:
    """The file of ``version``'s lineage (``train`` or ``eval``) if it is still what it was."""
    lineage = version.lineage
    named, expected = (
        (lineage.train_data, lineage.data_fingerprint)
        if which == "train"
        else (lineage.eval_data, lineage.eval_fingerprint)
    )
    configured = cfg.data.train if which == "train" else cfg.data.eval
    raw = named or (None if configured is None else str(cfg.path(configured)))
    if raw is None:
        return None, f"{version.ref} names no {which} data in its lineage"
    path = Path(raw)
    if not expected:
        return None, (
            f"{version.ref} was registered without the fingerprint of its {which} data; "
            f"its {which}-time reference cannot be rebuilt safely"
        )
    if not path.is_file():
        return None, f"the {which} data of {version.ref} ('{path}') is not here"
    fingerprint = file_fingerprint(path)
    if fingerprint != expected:
        return None, (
            f"the {which} data '{path}' changed since {version.ref} was registered (sha256 "
            f"{fingerprint[:12]}… vs {str(expected)[:12]}…)"
        )
    return path, None


def segment_baselines(
    cfg: MooringConfig, version: ModelVersion, columns: Sequence[str]
) -> tuple[SegmentBaselines | None, str | None]:
    """Per-segment training statistics ``{column: {value: stats}}``, or ``None`` and why."""
    stored = _references(version).segments
    out: SegmentBaselines = {}
    if stored is not None:
        for column in columns:
            per = stored.get(column)
            if isinstance(per, Mapping):
                out[column] = {v: DatasetStatistics.from_dict(s) for v, s in per.items()}
    missing = [c for c in columns if c not in out]
    if not missing:
        return out, None
    path, why = _lineage_file(cfg, version, "train")
    if path is None:
        note = f"no per-segment baselines for {', '.join(missing)}: {why}"
        return (out or None), note
    fingerprint = file_fingerprint(path)
    key = hashlib.sha256(orjson.dumps([fingerprint, sorted(missing)])).hexdigest()[:16]
    cache = _folder(cfg) / f"segments-{key}.json"
    if cache.is_file():
        data = orjson.loads(cache.read_bytes())
        derived = {
            column: {value: DatasetStatistics.from_dict(s) for value, s in per.items()}
            for column, per in data["segments"].items()
        }
    else:
        derived = segment_statistics(read_table(path, ReadOptions.from_config(cfg.data)), missing)
        payload = {
            "format": "mooring.segment-baselines",
            "data_fingerprint": fingerprint,
            "segments": {c: {v: s.to_dict() for v, s in per.items()} for c, per in derived.items()},
        }
        atomic_write(cache, orjson.dumps(payload))
    return {**out, **derived}, None


def prediction_baseline(
    cfg: MooringConfig, registry: Registry, version: ModelVersion
) -> tuple[DatasetStatistics | None, str]:
    """The evaluation-time output statistics of ``version`` and where they come from."""
    refs = _references(version)
    data = refs.evaluation_data
    if refs.outputs:
        where = f" on '{Path(data).name}'" if data else ""
        return (
            DatasetStatistics.from_dict(refs.outputs),
            f"{version.ref}'s outputs on its evaluation data{where}, frozen at registration",
        )
    stored = version.record.run.prediction_statistics
    if stored:
        return DatasetStatistics.from_dict(stored), "stored with the version at registration"
    path, why = _lineage_file(cfg, version, "eval")
    if path is None:
        return None, f"no evaluation-time outputs for {version.ref}: {why}"
    fingerprint = file_fingerprint(path)
    cache = (
        _folder(cfg)
        / f"outputs-v{version.version}-{version.manifest_sha256[:12]}-{fingerprint[:12]}.json"
    )
    source = f"{version.ref} scoring its evaluation data '{path.name}' (sha256 {fingerprint[:12]}…)"
    if cache.is_file():
        return DatasetStatistics.from_json(cache.read_bytes()), source
    from mooring.features._inputs import predict_saved_model
    from mooring.formats._model import load_saved_model

    model = load_saved_model(registry.load(cfg.project.name, version=version.version))
    table = read_table(path, ReadOptions.from_config(cfg.data))
    outputs = predict_saved_model(model, table)
    stats = prediction_statistics(
        probabilities=outputs.get("probabilities"),
        classes=outputs.get("classes"),
        values=outputs.get("value"),
    )
    atomic_write(cache, stats.to_json())
    return stats, source


def calibration_for(
    cfg: MooringConfig, version: ModelVersion
) -> tuple[Calibration | None, str | None]:
    """The drift calibration of ``version``, or None and why (floors and sampling noise decide)."""
    order = calibration_order(cfg.monitoring, cfg.data.timestamp)
    if order is None:
        return None, None
    refs = _references(version)
    stored, settings = refs.calibration, refs.settings
    if stored is not None:
        now = _settings(cfg)
        if settings is not None and any(settings.get(k) != now[k] for k in ("bins", "rare_share")):
            return None, (
                f"{version.ref} was calibrated with bins = {settings.get('bins')}, rare_share = "
                f"{settings.get('rare_share')}; [monitoring] now differs, so the floors "
                "alone decide"
            )
        return Calibration.from_dict(stored), None
    if version.statistics is None:
        return None, f"{version.ref} has no training statistics to calibrate against"
    path, why = _lineage_file(cfg, version, "train")
    if path is None:
        return None, f"drift thresholds are not calibrated for {version.ref}: {why}"
    fingerprint = file_fingerprint(path)
    key = orjson.dumps(
        [fingerprint, order, _settings(cfg), cfg.monitoring.window_rows, cfg.monitoring.min_samples]
    )
    cache = _folder(cfg) / f"calibration-{hashlib.sha256(key).hexdigest()[:16]}.json"
    if cache.is_file():
        cached = Calibration.from_dict(orjson.loads(cache.read_bytes()))
        if cached.novelty is not None:
            return cached, None
        # Cached before the own rate of new values was measured: measured again below.
    stats = DatasetStatistics.from_dict(version.statistics)
    table = read_table(path, ReadOptions.from_config(cfg.data))
    columns = _calibrated_columns(cfg, stats)
    calibration = calibrate(
        table, stats, cfg.monitoring, order=order, timestamp=cfg.data.timestamp, columns=columns
    )
    if calibration is None:
        return None, f"the training data of {version.ref} is too small to calibrate drift"
    atomic_write(cache, orjson.dumps(calibration.to_dict()))
    return calibration, None


def _calibrated_columns(cfg: MooringConfig, statistics: DatasetStatistics) -> list[str]:
    """The columns whose drift is watched: every one but the label and those ``[features]
    exclude`` leaves out (ids, leaks), which the model never reads and serving never logs."""
    left_out = {cfg.data.label, *cfg.features.exclude}
    return [c for c in statistics.column_names if c not in left_out]


def evaluation_reference(version: ModelVersion) -> dict[str, Any]:
    """The version's evaluation metrics and the data they were measured on.

    ``{"version", "metrics", "data", "data_fingerprint", "rows", "baseline"}``, where
    ``baseline`` is production's ``{"version", "metrics"}`` on the same data (or None);
    for a version registered
    before references existed, its registered metrics and the lineage's fingerprint.
    """
    evaluation = _references(version).evaluation
    if evaluation is not None:
        return {**evaluation, "version": version.version}
    return {
        "version": version.version,
        "metrics": dict(version.metrics or {}),
        "data": version.lineage.eval_data,
        "data_fingerprint": version.lineage.eval_fingerprint,
        "rows": None,
    }


#: What :func:`evaluation_data_label` says of a version registered without the fingerprint.
UNKNOWN_EVALUATION_DATA = "evaluation data unknown"


def evaluation_data_label(version: ModelVersion) -> str:
    """Which data a version's evaluation metrics come from: file name and sha256 prefix.

    ``"evaluation data unknown"`` for a version registered without its fingerprint.

    Examples:
        >>> evaluation_data_label(registry.get("income", version=3))  # doctest: +SKIP
        'adult.test.csv 1a2b3c4d5e6f'
    """
    return reference_data_label(evaluation_reference(version))


def reference_data_label(reference: Mapping[str, Any]) -> str:
    """:func:`evaluation_data_label` of an :func:`evaluation_reference` mapping.

    >>> reference_data_label({"data": "/srv/adult.test.csv", "data_fingerprint": "1a2b" * 16})
    'adult.test.csv 1a2b1a2b1a2b'
    """
    fingerprint, data = reference.get("data_fingerprint"), reference.get("data")
    if not fingerprint:
        return UNKNOWN_EVALUATION_DATA
    name = Path(str(data)).name if data else "eval data"
    return f"{name} {str(fingerprint)[:12]}"


def _named(numbers: Sequence[int]) -> str:
    """``v1, v2 and v5``; runs of three or more as ``v1–v4``."""
    ordered = sorted(set(numbers))
    runs: list[list[int]] = []
    for n in ordered:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [
        f"v{run[0]}–v{run[-1]}" if len(run) > 2 else ", ".join(f"v{n}" for n in run) for run in runs
    ]
    text = ", ".join(parts)
    head, _, last = text.rpartition(", ")
    return f"{head} and {last}" if head else text


def comparability_note(
    versions: Sequence[ModelVersion], *, metric: str | None = None
) -> str | None:
    """A sentence when these versions' evaluation metrics cannot be put side by side, else None.

    Versions whose evaluation data differ (by sha256) are not comparable; a version
    registered without its evaluation data's fingerprint makes it impossible to tell.
    ``metric`` names what is compared (default: their metrics).

    Examples:
        >>> comparability_note([v1, v3], metric="auc")  # doctest: +SKIP
        'auc of v1 and v3 come from different evaluation data (v1: a.csv 1a2b3c4d5e6f; v3:
        b.csv 9f8e7d6c5b4a): not comparable'
    """
    groups: dict[str, list[int]] = {}
    for mv in versions:
        groups.setdefault(evaluation_data_label(mv), []).append(mv.version)
    numbers = [n for group in groups.values() for n in group]
    unknown = groups.pop(UNKNOWN_EVALUATION_DATA, [])
    if len(set(numbers)) < 2 or (len(groups) <= 1 and not unknown):
        return None
    what = f"{metric} of {_named(numbers)}" if metric else f"the metrics of {_named(numbers)}"
    data = "; ".join(f"{_named(group)}: {label}" for label, group in groups.items())
    if len(groups) > 1:
        if unknown:
            data += f"; {_named(unknown)}: {UNKNOWN_EVALUATION_DATA}"
        return f"{what} come from different evaluation data ({data}): not comparable"
    known = f" ({data})" if data else ""
    return (
        f"the evaluation data of {_named(unknown)} is unknown{known}, so whether {what} "
        "are comparable cannot be told"
    )


#: ``[data] eval`` predates the training data when at least this share of the training rows
#: is newer than its newest row (a random holdout of the same period leaves a few rows).
NEWER_TRAINING_SHARE = 0.05
#: Recent traffic has moved from ``[data] eval`` on a feature past this Jensen–Shannon
#: distance (and past what sampling alone gives at the row counts compared).
STALE_FEATURE_JS = 0.1


def stale_evaluation(
    eval_name: str,
    evaluation: DatasetStatistics,
    *,
    train: DatasetStatistics,
    timestamp: str | None,
    traffic: DatasetStatistics | None = None,
    features: Sequence[str] | None = None,
    quantile: float = 0.99,
) -> str | None:
    """Why ``[data] eval`` predates the traffic a candidate will meet, or None.

    With a ``timestamp`` column: when :data:`NEWER_TRAINING_SHARE` or more of the training
    rows are newer than the evaluation data's newest (the candidate learned from newer
    data than it is judged on). Without one: when ``traffic`` (production's recent logged
    inputs) drifted from the evaluation data on most ``features`` (Jensen–Shannon past
    :data:`STALE_FEATURE_JS` and past sampling noise). Its evaluation metrics and the
    evaluation-time outputs the rollout compares its live outputs with then describe
    older traffic than it will serve.

    Examples:
        >>> stale_evaluation("eval.csv", eval_stats, train=train_stats,
        ...                  timestamp="when")  # doctest: +SKIP
        "[data] eval 'eval.csv' ends 2024-06-30, before 41% of the training rows ..."
    """
    from mooring.contract._distance import (
        categorical_distributions,
        jensen_shannon,
        numeric_distributions,
    )
    from mooring.monitoring._noise import binned_noise

    fix = (
        "point [data] eval at labelled data as recent as the traffic (e.g. hold out the newest "
        "rows) and re-run `mooring run`"
    )
    if timestamp and timestamp in train.columns and timestamp in evaluation.columns:
        t, e = train[timestamp].numeric, evaluation[timestamp].numeric
        if t is None or e is None or t.count == 0 or e.count == 0:
            return None
        newer = 1.0 - float(t.sketch.cdf([e.max])[0])
        if newer < NEWER_TRAINING_SHARE:
            return None
        return (
            f"[data] eval '{eval_name}' ends {_day(e.max)}, before {newer:.0%} of the training "
            f"rows (newest {_day(t.max)}, [data] timestamp '{timestamp}'): the candidate learned "
            "from newer data than it is evaluated on, so its evaluation and the outputs its "
            f"rollout is compared with describe older traffic than it will meet; {fix}"
        )
    if traffic is None:
        return None
    names = [
        c
        for c in (features if features is not None else evaluation.column_names)
        if c in evaluation.columns and c in traffic.columns and c != timestamp
    ]
    drifted: list[tuple[float, str]] = []
    compared = 0
    for name in names:
        b_col, c_col = evaluation[name], traffic[name]
        dist = (
            numeric_distributions(b_col, c_col)
            if b_col.numeric is not None and b_col.numeric.count > 0
            else categorical_distributions(b_col, c_col)
        )
        if dist is None:
            continue
        compared += 1
        distance = jensen_shannon(dist.baseline, dist.current)
        noise = binned_noise(dist.baseline, c_col.present, b_col.present, quantile)
        if distance > max(STALE_FEATURE_JS, noise.get("jensen_shannon", 0.0)):
            drifted.append((distance, name))
    if compared < 2 or 2 * len(drifted) <= compared:
        return None
    shown = ", ".join(f"{name} {d:.2f}" for d, name in sorted(drifted, reverse=True)[:3])
    rows = max((traffic[n].count for n in names), default=0)
    return (
        f"[data] eval '{eval_name}' no longer looks like production's recent traffic: "
        f"{len(drifted)} of {compared} features drifted over the last {rows:,} logged requests "
        f"(Jensen-Shannon: {shown}; > {STALE_FEATURE_JS:g} and past sampling noise), so the "
        f"candidate's evaluation and the outputs its rollout is compared with describe older "
        f"traffic than it will meet; {fix}"
    )


def _day(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d")
