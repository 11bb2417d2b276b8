"""What an alert says about a drift report: a bounded summary, with the path of the whole.

A drift report holds every distance and histogram of every feature, segment and output
(hundreds of KB); an alert is a log line and a webhook body. :func:`drift_summary` keeps
what a person acts on — the verdict, the window, the drifted features with the numbers
that decided (value, floor, natural variation) and where the full report lies — and
trims lists and strings until the JSON fits ``limit`` bytes (8 KB by default), whatever
the report.

Examples:
    >>> summary = drift_summary(report)  # doctest: +SKIP
    >>> len(orjson.dumps(summary)) <= 8192  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from mooring.formats._drift import METRIC_OF, DriftReport, FeatureDrift

__all__ = ["LIMIT", "drift_headline", "drift_summary"]

#: Bytes of JSON a summary may take.
LIMIT = 8192


def _text(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(width - 1, 0)] + "…"


def drift_headline(names: Sequence[str], *, shown: int = 3, width: int = 60) -> str:
    """The first ``shown`` drifted names (each cut to ``width``) and how many more; one line.

    What an alert's ``summary``, a retraining reason or a console line says about the
    drifted features, however many there are and however long their names. ``""`` for
    no names.

    >>> drift_headline(["age", "workclass", "education", "sex", "race"])
    'age, workclass, education and 2 more'
    """
    head = ", ".join(_text(name, width) for name in names[:shown])
    rest = len(names) - shown
    return f"{head} and {rest} more" if rest > 0 else head


def _feature(feature: FeatureDrift, width: int) -> dict[str, Any]:
    deciding: dict[str, Any] = {}
    for key, floor in feature.thresholds.items():
        value = feature.metrics.get(METRIC_OF.get(key, key))
        if floor is None or value is None or value < floor:
            continue
        deciding[key] = {"value": round(value, 4), "floor": floor}
        natural = feature.natural.get(key)
        if natural is not None:
            deciding[key]["natural"] = round(natural, 4)
            if key in feature.natural_kind:
                deciding[key]["natural_kind"] = feature.natural_kind[key]
    return {
        "name": _text(feature.name, width),
        "kind": feature.kind,
        "rows": feature.rows,
        "deciding": deciding,
        "reasons": [_text(r, width) for r in feature.reasons[:3]],
    }


def _severity(feature: FeatureDrift) -> float:
    """How far past its floor the worst deciding metric is (for ordering)."""
    worst = 0.0
    for key, floor in feature.thresholds.items():
        value = feature.metrics.get(METRIC_OF.get(key, key))
        if floor and value is not None:
            worst = max(worst, value / floor)
    return worst


def drift_summary(report: DriftReport, *, limit: int = LIMIT) -> dict[str, Any]:
    """A JSON-ready summary of ``report`` of at most ``limit`` bytes.

    Holds: model, version, status, created_at, window, counts of features judged and
    drifted, the most drifted features (by how far past their floor) with their
    deciding numbers, drifted segments and outputs, notes, and the report's files.
    """
    drifted = sorted((f for f in report.features if f.drifted), key=_severity, reverse=True)
    outputs = [] if report.prediction is None else report.prediction.drifted
    segments = [s.name for s in report.segments if s.status == "drift"]
    files = dict(report.files)
    for top, width, notes in ((10, 200, 5), (5, 120, 3), (3, 80, 2), (1, 60, 1), (0, 40, 0)):
        summary: dict[str, Any] = {
            "model": report.model,
            "version": report.version,
            "status": report.status,
            "created_at": report.created_at,
            "window": report.window,
            "features_judged": len(report.features),
            "features_drifted": len(drifted),
            "top_features": [_feature(f, width) for f in drifted[:top]],
            "segments_drifted": [_text(s, width) for s in segments[: max(top, 1) * 2]],
            "segments_drifted_count": len(segments),
            "outputs_drifted": [_text(o, width) for o in outputs[:5]],
            "prediction_status": None if report.prediction is None else report.prediction.status,
            "notes": [_text(n, width) for n in report.notes[:notes]],
            "report": {k: _text(v, 1024) for k, v in files.items()},
        }
        if len(orjson.dumps(summary)) <= limit:
            return summary
    # Only absurd names or paths get here: keep the verdict and the counts.
    return {
        "model": _text(report.model, 200),
        "version": report.version,
        "status": report.status,
        "features_drifted": len(drifted),
        "segments_drifted_count": len(segments),
        "report": {k: _text(v, 200) for k, v in files.items()},
    }
