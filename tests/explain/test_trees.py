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
    # The baseline is TreeSHAP's expectation: the mean log-odds over the rows the trees
    # saw (not their starting prediction, the log-odds of the base rate, about -1.13).
    wide = {k: [r[k] for r in adult_rows(3000)] for k in adult_columns}
    q = served(folder, wide)["probabilities"][:, 1].astype(np.float64)
    assert abs(float(e.baseline[0]) - float(np.mean(np.log(q / (1 - q))))) < 0.15
    assert e.reference.startswith("the trees' mean log-odds of >50K over their training rows")
    assert load_explainer(folder) is load_explainer(folder)  # loaded once per folder


def test_a_tree_folder_without_its_ydf_model_refuses_to_explain(
    adult_training: Callable[..., Any], adult_columns: dict[str, list[Any]], tmp_path: Path
) -> None:
    folder = copy_tree(adult_training(1, "gbt").model_dir, tmp_path / "old")
    shutil.rmtree(folder / "ydf")
    with pytest.raises(
        ExplainUnavailable, match=r"keeps no YDF model in 'ydf/'; train it again with this mooring"
    ):
        explain_rows(folder, adult_columns)
