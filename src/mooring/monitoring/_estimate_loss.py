"""A regression model's error estimated without labels: direct loss estimation (DLE).

Labels arrive late or never. At registration a small model learns, on the version's
held-out rows, how large its error is from the row itself: a ridge regression of the
absolute error (and of the squared error) on the prediction, its square, the numeric
columns standardized and the most frequent values of each text column. On a window of
served rows the expected absolute and squared errors of each row give the expected MAE
and RMSE, each with a 95% band: the sampling of the errors around their expectation
(normal errors of that size), and what the held-out rows leave unknown of the small
model (refitted on bootstrap resamples).

It assumes that the error's size depends on what the small model sees as it did on the
held-out rows; a population whose errors grow for reasons no column shows is not seen.

Examples:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=3000)
    >>> table = pa.table({"x": x})
    >>> truth = 2 * x + rng.normal(0, 1 + np.abs(x))  # noisier where |x| is large
    >>> reference = fit_loss_reference(table, 2 * x, truth)
    >>> wide = pa.table({"x": 3 * x[:500]})  # a window of larger |x|
    >>> est = estimate_loss(reference, wide, 6 * x[:500])
    >>> est.metrics["mae"].value > 1.5
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mooring.monitoring._estimate import NO_ROWS, Estimate, EstimatedMetric

__all__ = ["Design", "LossReference", "estimate_loss", "fit_loss_reference"]

FloatArray = npt.NDArray[np.float64]

#: Held-out rows the small model needs.
MIN_ROWS = 200
#: Text columns contribute their most frequent values, at most this many each.
TOP_VALUES = 10
#: The ridge penalty, relative to the rows (the design's columns are standardized).
RIDGE = 1e-3
#: Small models refitted on bootstrap resamples, for the band.
RESAMPLED = 20
#: Error draws per small model.
DRAWS_EACH = 10
_STREAM = 0x646C65


@dataclass(frozen=True)
class Design:
    """How a row becomes the small model's inputs: the prediction (standardized) and
    its square, numeric columns standardized (a missing value is the mean), and one
    indicator per frequent value of each text column."""

    prediction: tuple[float, float]
    numeric: Mapping[str, tuple[float, float]]
    text: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, table: pa.Table, predictions: FloatArray, label: str | None = None) -> Design:
        numeric: dict[str, tuple[float, float]] = {}
        text: dict[str, tuple[str, ...]] = {}
        for name in table.column_names:
            if name == label:
                continue
            column = table[name]
            kind = column.type
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                values = _numbers(column)
                finite = values[np.isfinite(values)]
                if finite.size:
                    numeric[name] = (float(finite.mean()), float(finite.std()) or 1.0)
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                counts = pc.value_counts(column.drop_null()).to_pylist()
                top = sorted(counts, key=lambda c: -int(c["counts"]))[:TOP_VALUES]
                text[name] = tuple(str(c["values"]) for c in top)
        mean, std = float(np.mean(predictions)), float(np.std(predictions)) or 1.0
        return cls((mean, std), numeric, text)

    def matrix(self, table: pa.Table, predictions: npt.ArrayLike) -> FloatArray:
        """The design of ``table``'s rows; a column the table lacks counts as missing."""
        p = (np.asarray(predictions, dtype=np.float64) - self.prediction[0]) / self.prediction[1]
        parts = [np.ones(p.size), p, p * p]
        for name, (mean, std) in self.numeric.items():
            values = _readable(table, name, pa.float64(), p.size)
            scaled = (np.asarray(values, dtype=np.float64) - mean) / std
            parts.append(np.where(np.isfinite(scaled), scaled, 0.0))
        for name, frequent in self.text.items():
            column = np.asarray(_readable(table, name, pa.string(), p.size), dtype=object)
            parts.extend((column == value).astype(np.float64) for value in frequent)
        return np.column_stack(parts)

    def to_dict(self) -> dict[str, Any]:
        """Lists, not mappings: the columns' order is the coefficients' order, and a
        stored mapping may come back with its keys sorted."""
        return {
            "prediction": list(self.prediction),
            "numeric": [[k, *v] for k, v in self.numeric.items()],
            "text": [[k, list(v)] for k, v in self.text.items()],
        }

    @classmethod
    def read(cls, data: object) -> Design | None:
        if not isinstance(data, Mapping):
            return None
        try:
            prediction = tuple(map(float, data["prediction"]))
            numeric = {str(k): (float(m), float(sd)) for k, m, sd in data["numeric"]}
            text = {str(k): tuple(map(str, v)) for k, v in data["text"]}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None
        if len(prediction) != 2:
            return None
        return cls((prediction[0], prediction[1]), numeric, text)


def _readable(table: pa.Table, name: str, kind: pa.DataType, rows: int) -> list[Any]:
    """``name``'s values as ``kind`` (None where missing); all None when the table lacks
    the column or holds it in a shape that does not cast (a list per row, say)."""
    if name in table.column_names:
        try:
            values: list[Any] = pc.cast(table[name], kind, safe=False).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        else:
            return [float("nan") if v is None and kind == pa.float64() else v for v in values]
    return [float("nan") if kind == pa.float64() else None] * rows


def _numbers(column: pa.ChunkedArray) -> FloatArray:
    # Unchecked: an int64 id beyond 2^53 loses its last digits, not the row.
    values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _ridge(x: FloatArray, y: FloatArray) -> FloatArray:
    penalty = RIDGE * x.shape[0] * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    coef: FloatArray = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    return coef


@dataclass(frozen=True)
class LossReference:
    """The small models of a regression version's error, frozen at registration:
    ``absolute`` and ``squared`` coefficients over :class:`Design`, their refits on
    bootstrap resamples, the held-out ``rows``, and why nothing is estimated (``refused``).
    """

    design: Design
    absolute: tuple[float, ...]
    squared: tuple[float, ...]
    rows: int
    resampled: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "dle",
            "design": self.design.to_dict(),
            "absolute": list(self.absolute),
            "squared": list(self.squared),
            "rows": self.rows,
            "resampled": [[list(a), list(q)] for a, q in self.resampled],
            "refused": self.refused,
        }

    @classmethod
    def read(cls, data: object) -> LossReference | None:
        """The reference of a stored mapping (``method = "dle"``), or None."""
        if not isinstance(data, Mapping) or data.get("method") != "dle":
            return None
        design = Design.read(data.get("design"))
        if design is None:
            return None
        try:
            absolute = tuple(map(float, data["absolute"]))
            squared = tuple(map(float, data["squared"]))
            resampled = tuple(
                (tuple(map(float, a)), tuple(map(float, q))) for a, q in data.get("resampled", [])
            )
        except (KeyError, TypeError, ValueError):
            return None
        refused = data.get("refused")
        rows = data.get("rows")
        return cls(
            design,
            absolute,
            squared,
            rows if isinstance(rows, int) else 0,
            resampled,
            refused if isinstance(refused, str) else None,
        )


def fit_loss_reference(
    table: pa.Table,
    predictions: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    label: str | None = None,
    seed: int = 0,
) -> LossReference:
    """The small models of the error of ``predictions`` against ``targets`` on the
    held-out rows of ``table`` (its ``label`` column left out)."""
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if p.shape != y.shape or p.size != table.num_rows:
        raise ValueError(
            f"{p.size} predictions, {y.size} targets and {table.num_rows} rows: give one "
            "prediction and one target per row"
        )
    design = Design.of(table, p, label)
    rows = int(p.size)
    if rows < MIN_ROWS:
        return LossReference(
            design,
            (),
            (),
            rows,
            refused=f"the held-out data has {rows} rows; estimating the error needs "
            f"{MIN_ROWS}: evaluate on more rows",
        )
    x = design.matrix(table, p)
    error = y - p
    absolute, squared = np.abs(error), error * error
    rng = np.random.default_rng((seed, _STREAM))
    resampled = []
    for _ in range(RESAMPLED):
        pick = rng.integers(0, rows, rows)
        resampled.append(
            (
                tuple(_ridge(x[pick], absolute[pick]).tolist()),
                tuple(_ridge(x[pick], squared[pick]).tolist()),
            )
        )
    return LossReference(
        design,
        tuple(_ridge(x, absolute).tolist()),
        tuple(_ridge(x, squared).tolist()),
        rows,
        tuple(resampled),
    )


def estimate_loss(
    reference: LossReference, table: pa.Table, predictions: npt.ArrayLike, *, seed: int = 0
) -> Estimate:
    """The expected MAE and RMSE of a window of served rows (``table`` and the version's
    ``predictions`` of them), each with its 95% band."""
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    rows = int(p.size)
    if reference.refused is not None:
        return Estimate(rows, {}, reference.refused)
    if rows == 0:
        return Estimate(0, {}, NO_ROWS)
    x = reference.design.matrix(table, p)

    def errors(
        absolute: tuple[float, ...], squared: tuple[float, ...]
    ) -> tuple[FloatArray, FloatArray]:
        m = np.clip(x @ np.asarray(absolute), 0.0, None)
        s = np.maximum(x @ np.asarray(squared), m * m)
        return m, s

    m, s = errors(reference.absolute, reference.squared)
    rng = np.random.default_rng((seed, _STREAM))
    maes, mses = [], []
    for absolute, squared in reference.resampled or ((reference.absolute, reference.squared),):
        mb, sb = errors(absolute, squared)
        # The errors around their expectations: |e| of variance s - m², e² of 2 s² (normal).
        spread_mae = float(np.sqrt(np.sum(sb - mb * mb))) / rows
        spread_mse = float(np.sqrt(np.sum(2.0 * sb * sb))) / rows
        maes.append(mb.mean() + spread_mae * rng.standard_normal(DRAWS_EACH))
        mses.append(sb.mean() + spread_mse * rng.standard_normal(DRAWS_EACH))
    mae_draws = np.concatenate(maes)
    rmse_draws = np.sqrt(np.clip(np.concatenate(mses), 0.0, None))
    out: dict[str, EstimatedMetric] = {}
    for name, value, draws in (
        ("mae", float(m.mean()), mae_draws),
        ("rmse", float(np.sqrt(s.mean())), rmse_draws),
    ):
        low, high = np.quantile(draws, [0.025, 0.975])
        out[name] = EstimatedMetric(value, float(min(low, value)), float(max(high, value)))
    return Estimate(rows, out)
