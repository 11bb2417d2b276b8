"""What moved the predictions in a drifted window: attribution shift per input column.

Drift says which inputs moved; it does not say which of those moves the model cares
about. At evaluation each version's explanation is averaged over a sample of the
evaluation rows (each column's signed mean attribution and the mean explained output,
frozen with the version's references under ``evaluation.attributions``). For a window
that drifted, the same number of its logged rows are explained by the same version, and
each column's mean attribution is set against the evaluation's, with the noise of two
samples of rows beside each shift. Attributions sum to the
explained output minus a fixed baseline, so the shifts add up to how far the mean
output moved: a drifted column with no shift did not move the predictions, a small
drift in a column the model leans on may move them most, and a column that did not drift
may shift too (an attribution depends on the row's other values).

Examples:
    >>> shift = attribution_shift(model_dir, references.evaluation, window)  # doctest: +SKIP
    >>> shift.moved, shift.largest(3)  # doctest: +SKIP
    (0.081, [('age', 0.052), ('education', 0.021), ('hours-per-week', 0.006)])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.errors import MooringError
from mooring.formats._drift import AttributionShift
from mooring.formats._predictions import feature_table

__all__ = ["attribution_shift"]
#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959964


def attribution_shift(
    model_dir: Path, evaluation: Mapping[str, Any] | None, window: pa.Table
) -> AttributionShift | None:
    """Each column's mean attribution over a seeded sample of the rows of the
    logged ``window`` less the evaluation's (``evaluation["attributions"]``); None when
    the version has no such reference (no explanation, or registered before them).

    A window the version cannot explain gets a shift with no columns and a ``note``
    saying why, never an error: the drift report stands without it.
    """
    reference = (evaluation or {}).get("attributions")
    if not isinstance(reference, Mapping) or not isinstance(
        reference.get("mean_attribution"), Mapping
    ):
        return None
    means: Mapping[str, Any] = reference["mean_attribution"]
    empty = AttributionShift(
        output=str(reference.get("output", "")),
        unit=str(reference.get("unit", "")),
        rows=0,
        reference_rows=int(reference.get("rows") or 0),
        moved=None,
    )
    features = feature_table(window)
    if features.num_rows == 0:
        empty.note = "the window has no logged rows to explain"
        return empty
    from mooring.explain import explain_rows
    from mooring.explain._explanation import sample_rows

    sample = sample_rows(features)
    rows = sample.num_rows
    try:
        explanation = explain_rows(model_dir, sample.to_pydict())
    except MooringError as exc:
        empty.note = f"the window's rows could not be explained: {exc}"
        return empty
    mean = explanation.attributions.mean(axis=0)
    spread = explanation.attributions.std(axis=0, ddof=1) if rows > 1 else np.zeros_like(mean)
    spreads: Mapping[str, Any] = reference.get("sd_attribution") or {}
    shifts: dict[str, float | None] = {}
    noise: dict[str, float | None] = {}
    for i, column in enumerate(explanation.columns):
        before, sd = means.get(column), spreads.get(column)
        shifts[column] = None if before is None else float(mean[i]) - float(before)
        # Two independent samples' means: the 95% half-width of their difference.
        noise[column] = (
            None
            if sd is None or empty.reference_rows < 2
            else Z95 * math.sqrt(spread[i] ** 2 / rows + float(sd) ** 2 / empty.reference_rows)
        )
    explained = reference.get("mean_explained")
    shift = AttributionShift(
        output=explanation.output,
        unit=explanation.unit,
        rows=rows,
        reference_rows=empty.reference_rows,
        moved=None if explained is None else float(explanation.explained.mean()) - explained,
        shifts=shifts,
        noise=noise,
    )
    shift.beyond = shift.beyond_columns()  # decided here, once: every view reads this list
    return shift
