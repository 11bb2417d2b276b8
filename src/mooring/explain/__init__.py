"""Explanations of predictions: per-row feature attributions that sum to the prediction
minus a baseline (completeness), for every kind of model folder.

* networks mooring trains: integrated gradients, traced into the SavedModel as its
  ``explain`` signature at export (a server explains without Python work);
* gradient boosted trees: exact Shapley values from the YDF model kept in the folder;
* imported models: integrated gradients where every input is a float; else
  :class:`ExplainUnavailable` says which input and why.

Examples:
    >>> from mooring.explain import explain_rows
    >>> e = explain_rows(Path("runs/1/model"), {"age": [39.0], "city": ["Oslo"]})
    ... # doctest: +SKIP
    >>> e.to_json()[0]["attributions"]  # doctest: +SKIP
    {'age': 0.031, 'city': -0.004}
"""

from __future__ import annotations

from mooring.explain._explainers import Explainer, explain_rows, load_explainer
from mooring.explain._explanation import ExplainUnavailable, Explanation, mean_abs_attribution

__all__ = [
    "ExplainUnavailable",
    "Explainer",
    "Explanation",
    "explain_rows",
    "load_explainer",
    "mean_abs_attribution",
]
