"""Imported models: integrated gradients through their signature where it is differentiable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.explain import ExplainUnavailable, explain_rows
from mooring.formats._model import METADATA_FILE
from mooring.pipeline._import import default_config, with_explain_baseline
from mooring.training._import import import_model
from tests._support.byom import expected_scores, tabular_saved_model
from tests._support.imported_models import build_cnn, build_text, examples

ROWS = {"age": [39.0, 50.0, 20.0, 71.0], "hours-per-week": [40.0, 13.0, 60.0, 5.0]}


def test_a_keras_savedmodel_is_explained_from_zeros_and_complete(tmp_path: Path) -> None:
    imported = import_model(tabular_saved_model(tmp_path / "src"), tmp_path / "out", task="binary")
    e = explain_rows(imported.folder, ROWS)
    assert e.columns == ("age", "hours-per-week") and e.method == "integrated_gradients"
    assert e.completeness_error() < 1e-4
    rows = [dict(zip(ROWS, v, strict=True)) for v in zip(*ROWS.values(), strict=True)]
    np.testing.assert_allclose(e.explained, expected_scores(rows), atol=1e-6)
    zero = expected_scores([{"age": 0.0, "hours-per-week": 0.0}])[0]
    np.testing.assert_allclose(e.baseline, zero, atol=1e-6)
    assert (e.attributions[:, 0] > 0).all() and (e.attributions[:, 1] < 0).all()


def test_data_given_at_import_is_the_background_of_its_rows(tmp_path: Path) -> None:
    imported = import_model(tabular_saved_model(tmp_path / "src"), tmp_path / "out", task="binary")
    data = tmp_path / "reference.csv"
    pacsv.write_csv(pa.table({**ROWS, "class": ["a", "b", "a", "b"]}), data)
    imported = with_explain_baseline(imported, data, default_config("m", data, "class"))
    entry = json.loads((imported.folder / METADATA_FILE).read_text())["explain"]
    assert entry["baseline"] == {"age": 45.0, "hours-per-week": 29.5}
    # Every input is a column of the data: its rows are the background, as a network's.
    assert entry["reference"]["rows"] == 4 and entry["reference"]["values"]["age"] == [
        39.0,
        50.0,
        20.0,
        71.0,
    ]
    e = explain_rows(imported.folder, ROWS)
    rows = [dict(zip(ROWS, v, strict=True)) for v in zip(*ROWS.values(), strict=True)]
    mean = float(np.mean(expected_scores(rows)))
    np.testing.assert_allclose(e.baseline, mean, atol=1e-6)
    assert e.reference == (
        "the mean probability of the positive class over 4 rows of reference.csv (a seeded sample)"
    )
    assert e.completeness_error() < 1e-3


def test_a_multiclass_image_model_attributes_to_its_one_input(tmp_path: Path) -> None:
    imported = import_model(build_cnn(tmp_path / "cnn"), tmp_path / "out", task="multiclass")
    e = explain_rows(imported.folder, examples("cnn", 4))
    assert e.columns == ("image",) and e.output == "probability of the predicted class"
    assert e.completeness_error() < 0.01


def test_a_text_input_is_refused_with_its_name_and_the_fix(tmp_path: Path) -> None:
    imported = import_model(build_text(tmp_path / "text"), tmp_path / "out", task="binary")
    with pytest.raises(ExplainUnavailable, match=r"input 'text' is string.*float inputs"):
        explain_rows(imported.folder, examples("text", 2))
