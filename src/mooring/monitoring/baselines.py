"""The baselines drift needs beyond the stored training statistics: per segment, and of the outputs.

A registered version stores the training statistics of the whole training set. Two
comparisons need more:

* **segments** (``[monitoring] segments``) compare serving rows with ``sex = Female`` to
  the *training rows* with ``sex = Female``. They are computed from the training file
  named in ``[data] train``, only when its sha256 equals the version's lineage
  ``data_fingerprint`` (otherwise the file is not what the version was trained on and no
  per-segment baseline is made), and cached under ``<home>/monitoring/<model>/baseline/``.
* **prediction drift** compares the outputs with their evaluation-time distribution.
  When a version's ``run_record`` holds ``prediction_statistics`` (statistics of the
  ``output.*`` columns on the evaluation data, see :func:`prediction_statistics`) they are
  used as they are. Otherwise they are derived the one honest way: the version's own
  SavedModel scores the ``[data] eval`` file, and the result is cached per version.

Example:
    >>> mv = registry.get("income", version=3)  # doctest: +SKIP
    >>> stats, source = prediction_baseline(cfg, registry, mv)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract.io import ReadOptions, read_table
from mooring.contract.statistics import DatasetStatistics, compute_statistics
from mooring.formats.files import atomic_write, file_fingerprint
from mooring.formats.predictions import outputs_from_arrays

if TYPE_CHECKING:
    from pathlib import Path

    from mooring.config import MooringConfig
    from mooring.registry import ModelVersion, Registry

__all__ = ["prediction_baseline", "prediction_statistics", "segment_baselines"]

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

    Store ``prediction_statistics(...).to_dict()`` in a version's ``run_record`` under
    ``"prediction_statistics"`` at registration to give prediction drift its baseline
    without re-scoring the evaluation data.

    Example:
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def segment_baselines(
    cfg: MooringConfig, version: ModelVersion, columns: Sequence[str]
) -> tuple[SegmentBaselines | None, str | None]:
    """Per-segment training statistics ``{column: {value: stats}}``, or ``None`` and why."""
    path = cfg.path(cfg.data.train)
    if not path.is_file():
        return None, (
            f"per-segment baselines need the training data '{path}', which is not here; "
            "segments are reported without a verdict"
        )
    fingerprint = file_fingerprint(path)
    expected = version.lineage.get("data_fingerprint")
    if expected and expected != fingerprint:
        return None, (
            f"the training data '{path}' changed since {version.ref} was trained (sha256 "
            f"{fingerprint[:12]}… vs {str(expected)[:12]}…); per-segment baselines unavailable"
        )
    key = hashlib.sha256(orjson.dumps([fingerprint, sorted(columns)])).hexdigest()[:16]
    cache = _folder(cfg) / f"segments-{key}.json"
    if cache.is_file():
        data = orjson.loads(cache.read_bytes())
        return {
            column: {value: DatasetStatistics.from_dict(s) for value, s in per.items()}
            for column, per in data["segments"].items()
        }, None
    table = read_table(path, ReadOptions.from_config(cfg.data))
    out: SegmentBaselines = {}
    for column in columns:
        if column not in table.column_names:
            continue
        text = pc.cast(table[column], pa.string())
        per: dict[str, DatasetStatistics] = {}
        for value in sorted(v for v in pc.unique(text).to_pylist() if v is not None):
            per[value] = compute_statistics(table.filter(pc.equal(text, value)))
        out[column] = per
    payload = {
        "format": "mooring.segment-baselines",
        "data_fingerprint": fingerprint,
        "segments": {c: {v: s.to_dict() for v, s in per.items()} for c, per in out.items()},
    }
    atomic_write(cache, orjson.dumps(payload))
    return out, None


def prediction_baseline(
    cfg: MooringConfig, registry: Registry, version: ModelVersion
) -> tuple[DatasetStatistics | None, str]:
    """The evaluation-time output statistics of ``version`` and where they come from."""
    stored = version.run_record.get("prediction_statistics")
    if stored:
        return DatasetStatistics.from_dict(stored), "stored with the version at registration"
    if cfg.data.eval is None:
        return None, "no [data] eval file to derive the evaluation-time outputs from"
    path = cfg.path(cfg.data.eval)
    if not path.is_file():
        return None, f"the evaluation data '{path}' is not here; prediction drift unavailable"
    fingerprint = file_fingerprint(path)
    cache = (
        _folder(cfg)
        / f"outputs-v{version.version}-{version.manifest_sha256[:12]}-{fingerprint[:12]}.json"
    )
    source = f"{version.ref} scoring the evaluation data '{path.name}' (sha256 {fingerprint[:12]}…)"
    if cache.is_file():
        return DatasetStatistics.from_json(cache.read_bytes()), source
    from mooring.features import predict_saved_model
    from mooring.formats.model import load_saved_model

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
