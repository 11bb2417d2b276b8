"""Gradient boosted trees: exact Shapley values from the YDF model kept in the folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mooring.explain import ExplainUnavailable, explain_rows, load_explainer
from mooring.formats._model import METADATA_FILE
from tests._support.distributed import adult_rows
from tests._support.shared import copy_tree
from tests.explain.conftest import served


@pytest.fixture(scope="module")
def adult_columns() -> dict[str, list[Any]]:
    rows = adult_rows(200)
    return {k: [r[k] for r in rows] for k in rows[0]}


def test_tree_shap_is_exact_in_log_odds_of_the_served_probability(
    adult_training: Callable[..., Any], adult_columns: dict[str, list[Any]]
) -> None:
    folder = adult_training(1, "gbt").model_dir
    assert (folder / "ydf").is_dir()
    entry = json.loads((folder / METADATA_FILE).read_text())["explain"]
    e = explain_rows(folder, adult_columns)
    assert (e.method, e.unit, e.output) == ("tree_shap", "logit", "log-odds of >50K")
    assert e.completeness_error() < entry["tolerance"]
    p = served(folder, adult_columns)["probabilities"][:, 1].astype(np.float64)
    np.testing.assert_allclose(e.explained, np.log(p / (1 - p)), atol=1e-3)
    assert "hours-per-week" in e.columns and e.to_json()[0]["attributions"]["hours-per-week"]
    # Measured from real training rows, recorded at export: the baseline is the trees'
    # mean log-odds over them (interventional TreeSHAP, as KernelSHAP with that background).
    reference = entry["reference"]
    assert reference["rows"] == 32 and reference["from"] == "training rows (a seeded sample)"
    q = served(folder, reference["values"])["probabilities"][:, 1].astype(np.float64)
    np.testing.assert_allclose(e.baseline, np.mean(np.log(q / (1 - q))), atol=1e-4)
    assert e.reference.startswith("the mean log-odds of >50K over 32 training rows")
    assert load_explainer(folder) is load_explainer(folder)  # loaded once per folder


def test_interventional_tree_shap_is_the_shapley_value_of_its_game(
    adult_training: Callable[..., Any], adult_columns: dict[str, list[Any]]
) -> None:
    """On one row and one background row the game is small enough to enumerate: every
    coalition of columns takes the row's values, the others the background's; the exact
    Shapley values of that game are what the explainer answers."""
    from math import factorial

    from mooring.explain._interventional import interventional_shap

    explainer = load_explainer(adult_training(1, "gbt").model_dir)
    columns = list(explainer.columns)[:14]
    x = {c: adult_columns[c][:1] for c in explainer.columns}
    b = {c: adult_columns[c][7:8] for c in explainer.columns}
    feed_x, feed_b = explainer._feed(x), explainer._feed(b)  # type: ignore[attr-defined]
    names = [explainer.inputs[c] for c in columns]  # type: ignore[attr-defined]
    phi = interventional_shap(explainer.model, feed_x, feed_b, names)[0]  # type: ignore[attr-defined]

    m = len(names)
    masks = np.arange(2**m)[:, None] >> np.arange(m)[None, :] & 1  # [coalitions, m]
    mixed = {
        k: np.where(masks[:, j] == 1, feed_x[k][0], feed_b[k][0]).astype(feed_x[k].dtype)
        for j, k in enumerate(names)
    }
    p = np.asarray(explainer.model.predict(mixed), np.float64).reshape(-1)  # type: ignore[attr-defined]
    v = np.log(p / (1 - p))
    sizes = masks.sum(axis=1)
    weights = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)])
    exact = np.zeros(m)
    for j in range(m):
        without = np.flatnonzero(masks[:, j] == 0)  # each coalition without j, then with it
        exact[j] = np.sum(weights[sizes[without]] * (v[without + 2**j] - v[without]))
    np.testing.assert_allclose(phi, exact, atol=1e-4)


def test_a_tree_folder_without_its_ydf_model_refuses_to_explain(
    adult_training: Callable[..., Any], adult_columns: dict[str, list[Any]], tmp_path: Path
) -> None:
    folder = copy_tree(adult_training(1, "gbt").model_dir, tmp_path / "old")
    shutil.rmtree(folder / "ydf")
    with pytest.raises(
        ExplainUnavailable, match=r"keeps no YDF model in 'ydf/'; train it again with this mooring"
    ):
        explain_rows(folder, adult_columns)
