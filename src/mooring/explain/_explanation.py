"""What an explanation is: per-row attributions that sum to the prediction minus a baseline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.errors import MooringError

__all__ = [
    "EXPLAINED_ROWS",
    "ExplainUnavailable",
    "Explanation",
    "mean_abs_attribution",
    "sample_rows",
]

#: Rows explained for a global view (the evaluation's, a drifted window's): a fixed random
#: draw, enough for a stable ranking of the columns and quick to compute.
EXPLAINED_ROWS = 200


class ExplainUnavailable(MooringError):  # noqa: N818 - the name the API promises
    """The model has no explanation: an export from before explanations, or an imported
    model whose signature cannot be differentiated (the message names the input and why)."""

    http_status = 422


@dataclass(frozen=True, eq=False)  # numpy arrays: compare the fields yourself
class Explanation:
    """Each row's attribution per column, and the two outputs they connect.

    Completeness: for each row, ``attributions[i].sum()`` equals
    ``explained[i] - baseline[i]`` (within the method's tolerance), so an attribution
    says how much of the move from the baseline's output to the row's output a column
    accounts for, in ``unit``. The baseline is the mean output over reference rows (a
    sample of the training rows, or the trees' own expectation); ``reference`` says which.

    Examples:
        >>> e = Explanation(("age", "city"), np.array([[0.25, -0.05]]), np.array([0.3]),
        ...                 np.array([0.5]), "probability of >50K", "integrated_gradients",
        ...                 "probability")
        >>> e.to_json()
        [{'attributions': {'age': 0.25, 'city': -0.05}, 'baseline': 0.3, 'explained': 0.5}]
    """

    columns: tuple[str, ...]
    attributions: np.ndarray[Any, Any]
    baseline: np.ndarray[Any, Any]
    explained: np.ndarray[Any, Any]
    output: str
    method: str
    unit: str
    #: What the baseline is (e.g. "the mean over 32 training rows"), shown beside it.
    reference: str = ""

    def __len__(self) -> int:
        return len(self.explained)

    def to_json(self) -> list[dict[str, Any]]:
        """One dict per row, plain Python floats (JSON- and orjson-ready)."""
        rows = []
        for i in range(len(self.explained)):
            values = self.attributions[i].tolist()
            rows.append(
                {
                    "attributions": dict(zip(self.columns, values, strict=True)),
                    "baseline": float(self.baseline[i]),
                    "explained": float(self.explained[i]),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """What is explained, by which method and in which unit, and each row
        (:meth:`to_json`): the body of an explanation wherever it is shown."""
        return {
            "output": self.output,
            "method": self.method,
            "unit": self.unit,
            "reference": self.reference,
            "explanations": self.to_json(),
        }

    def completeness_error(self) -> float:
        """The largest ``|sum(attributions) - (explained - baseline)|`` over the rows."""
        if not len(self):
            return 0.0
        gap = self.attributions.sum(axis=1) - (self.explained - self.baseline)
        return float(np.max(np.abs(gap)))


def mean_abs_attribution(explanation: Explanation) -> dict[str, float]:
    """A global view: each column's mean absolute attribution over the rows, largest first.

    Examples:
        >>> e = Explanation(("a", "b"), np.array([[0.1, -0.6], [0.3, 0.0]]), np.zeros(2),
        ...                 np.array([-0.5, 0.3]), "value", "tree_shap", "y")
        >>> mean_abs_attribution(e)
        {'b': 0.3, 'a': 0.2}
    """
    if not len(explanation):
        return dict.fromkeys(explanation.columns, 0.0)
    means = np.mean(np.abs(explanation.attributions), axis=0)
    scores: Mapping[str, float] = {
        c: float(v) for c, v in zip(explanation.columns, means.tolist(), strict=True)
    }
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def sample_rows(table: pa.Table, rows: int = EXPLAINED_ROWS) -> pa.Table:
    """Up to ``rows`` rows of ``table``, drawn with a fixed seed and kept in their order:
    the same table gives the same sample.

    Examples:
        >>> sample_rows(pa.table({"a": list(range(10))}), 3).num_rows
        3
    """
    count = min(rows, table.num_rows)
    picked = np.sort(np.random.default_rng(0).choice(table.num_rows, count, replace=False))
    return table.take(pa.array(picked))
