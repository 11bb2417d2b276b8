"""A network's explanation: the ``explain`` signature beside ``serving_default``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from mooring.explain import (
    ExplainUnavailable,
    Explanation,
    _explainers,
    explain_rows,
    load_explainer,
    mean_abs_attribution,
)
from mooring.explain._explainers import explainer_for
from mooring.explain._gradients import REFERENCE_ROWS, REFERENCE_STEPS
from mooring.formats._model import METADATA_FILE, load_saved_model
from mooring.training import _export
from tests.explain.conftest import build_network, columns_of, explain_table
from tests.explain.conftest import served as served_by


def _check_complete(e: Explanation, tolerance: float) -> None:
    gap = np.abs(e.attributions.sum(axis=1) - (e.explained - e.baseline))
    assert gap.max() <= tolerance, gap.max()


def test_the_export_adds_an_explain_signature_and_records_it(
    network: Callable[[str], Path],
) -> None:
    folder = network("binary")
    # The explain signature is a SavedModel of its own: serving loads none of it.
    assert set(tf.saved_model.load(str(folder)).signatures) == {"serving_default"}
    assert "explain" in tf.saved_model.load(str(folder / "explain")).signatures
    entry = json.loads((folder / METADATA_FILE).read_text())["explain"]
    assert entry["folder"] == "explain"
    assert entry["method"] == "integrated_gradients" and entry["steps"] == REFERENCE_STEPS
    assert entry["columns"] == ["Âge", "Income", "Colour", "city", "noise"]
    assert entry["output"] == "probability of yes" and entry["unit"] == "probability"
    # The baseline is the mean output over real training rows, recorded with them.
    reference = entry["reference"]
    assert reference["rows"] == REFERENCE_ROWS and reference["from"].startswith("training rows")
    assert len(reference["values"]["Colour"]) == REFERENCE_ROWS
    colours = {v or "" for v in explain_table().column("Colour").to_pylist()}  # "" = missing
    assert set(reference["values"]["Colour"]) <= colours
    served = served_by(folder, reference["values"])["probabilities"][:, 1]
    assert reference["mean_output"] == pytest.approx(float(served.mean()), abs=1e-6)


def test_binary_attributions_sum_to_the_probability_minus_the_baseline(
    network: Callable[[str], Path],
) -> None:
    folder = network("binary")
    columns = columns_of(explain_table(), 120)
    e = explain_rows(folder, columns)
    assert e.method == "integrated_gradients" and e.attributions.shape == (120, 5)
    _check_complete(e, 0.01)
    served = served_by(folder, columns)["probabilities"][:, 1]
    np.testing.assert_allclose(e.explained, served, atol=1e-6)
    # Every row's baseline is the mean output over the reference rows, and says so.
    entry = json.loads((folder / METADATA_FILE).read_text())["explain"]
    np.testing.assert_allclose(e.baseline, entry["reference"]["mean_output"], atol=1e-6)
    assert e.to_dict()["reference"].startswith(f"the mean probability of yes over {REFERENCE_ROWS}")


def test_a_folder_is_explained_from_its_explain_savedmodel_alone(
    network: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_explainer`` (``mooring explain``) loads the ``explain/`` SavedModel only, its
    inputs named from its own signature (``Âge`` is called by another keyword), and
    explains exactly as the explainer of the loaded serving folder (the server's)."""
    folder = network("binary")
    columns = columns_of(explain_table(), 7)
    whole = explainer_for(load_saved_model(folder, warn=False)).explain(columns)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the serving SavedModel was loaded")

    monkeypatch.setattr(_explainers, "load_saved_model", refused)
    monkeypatch.setattr(_explainers, "_CACHE", type(_explainers._CACHE)())
    alone = load_explainer(folder).explain(columns)
    assert alone.columns == whole.columns and alone.output == whole.output
    for field in ("attributions", "baseline", "explained"):
        np.testing.assert_array_equal(getattr(alone, field), getattr(whole, field))


def test_a_column_the_network_ignores_gets_no_attribution_and_names_are_the_users(
    network: Callable[[str], Path],
) -> None:
    e = explain_rows(network("binary"), columns_of(explain_table(), 40))
    assert np.abs(e.attributions[:, e.columns.index("noise")]).max() < 1e-7
    rows = e.to_json()
    assert list(rows[0]["attributions"]) == ["Âge", "Income", "Colour", "city", "noise"]
    assert json.loads(json.dumps(rows)) == rows
    scores = mean_abs_attribution(e)
    assert scores["noise"] < 1e-7 < scores["Âge"]


def test_every_encoding_and_a_cross_attribute_to_the_users_columns(
    network: Callable[[str], Path],
) -> None:
    folder = network("encodings")
    spec = json.loads((folder / METADATA_FILE).read_text())["feature_spec"]
    assert [c["columns"] for c in spec["crosses"]] == [["Colour", "city"], ["Âge", "city"]]
    e = explain_rows(folder, columns_of(explain_table(), 60))
    assert e.columns == ("Âge", "Income", "Colour", "city", "noise")
    _check_complete(e, 0.01)
    assert np.abs(e.attributions[:, :4]).max(axis=0).min() > 0  # each column has a say


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_multiclass_and_regression_are_complete_in_their_unit(
    network: Callable[[str], Path], task: str
) -> None:
    folder = network(task)
    entry = json.loads((folder / METADATA_FILE).read_text())["explain"]
    e = explain_rows(folder, columns_of(explain_table(task=task), 60))
    _check_complete(e, entry["tolerance"])
    served = served_by(folder, columns_of(explain_table(task=task), 60))
    if task == "multiclass":
        assert e.output == "probability of the predicted class"
        np.testing.assert_allclose(e.explained, served["probabilities"].max(axis=1), atol=1e-6)
    else:
        np.testing.assert_allclose(e.explained, served["value"], rtol=1e-5)


def test_the_shared_adult_network_is_complete_for_its_real_rows(
    adult_training: Callable[..., Any],
) -> None:
    from tests._support.distributed import adult_rows

    rows = adult_rows(64)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    folder = adult_training(1, "mlp").model_dir
    e = explain_rows(folder, columns)
    assert e.output == "probability of >50K"
    _check_complete(e, 0.01)
    # Training froze its background: real training rows, no category outside what
    # training saw (the made-up row put every category in a bucket training never filled).
    reference = json.loads((folder / METADATA_FILE).read_text())["explain"]["reference"]
    assert reference["rows"] == REFERENCE_ROWS and reference["from"].startswith("training rows")
    seen = set(adult_rows(2000)[i]["workclass"] for i in range(2000)) | {""}
    assert set(reference["values"]["workclass"]) <= seen
    assert len(set(reference["values"]["age"])) > REFERENCE_ROWS // 2  # rows, not one row
    np.testing.assert_allclose(e.baseline, reference["mean_output"], atol=1e-6)


def test_an_export_without_explain_serves_and_refuses_to_explain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_export, "explain_function", lambda *args, **kwargs: None)
    build_network(tmp_path, "binary", ignore=None)
    folder = tmp_path / "model"
    assert list(tf.saved_model.load(str(folder)).signatures) == ["serving_default"]
    assert "explain" not in json.loads((folder / METADATA_FILE).read_text())
    columns = columns_of(explain_table(), 3)
    assert served_by(folder, columns)["probabilities"].shape == (3, 2)
    with pytest.raises(ExplainUnavailable, match=r"has no explanation: its mooring.json has no"):
        explain_rows(folder, columns)


def test_a_missing_column_is_named(network: Callable[[str], Path]) -> None:
    from mooring.errors import UsageError

    columns = columns_of(explain_table(), 3)
    del columns["Âge"]
    with pytest.raises(UsageError, match=r"needs the column\(s\) 'Âge'"):
        explain_rows(network("binary"), columns)
    columns["Âge"] = [39.0, "old", None]
    with pytest.raises(UsageError, match=r"column 'Âge' takes numbers .*got 'old'"):
        explain_rows(network("binary"), columns)


def test_a_network_of_one_column_is_explained(tmp_path: Path) -> None:
    """One block: the preprocessing's output is a tensor, not a list of one."""
    import pyarrow as pa

    from mooring.features._infer import build_feature_spec
    from mooring.training._builders import build_model, resolve_kind
    from mooring.training._labels import resolve_label
    from tests.training.conftest import make_config, prepare

    x = np.random.default_rng(0).normal(size=200)
    path, stats, schema = prepare(tmp_path, pa.table({"x": x, "target": np.where(x > 0, "y", "n")}))
    cfg = make_config(path, kind="linear")
    label = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label=label.column)
    model = build_model(spec, label, cfg.model, resolve_kind(cfg.model))
    _export.export_model(model, spec, label, tmp_path / "model")
    e = explain_rows(tmp_path / "model", {"x": x[:10].tolist()})
    assert e.columns == ("x",)
    _check_complete(e, 1e-4)
    # Exported without training rows: one row of imputed values, and it says so.
    entry = json.loads((tmp_path / "model" / METADATA_FILE).read_text())["explain"]
    assert entry["reference"]["from"] == "imputed row" and entry["reference"]["rows"] == 1
    assert entry["reference"]["values"] == {"x": [pytest.approx(float(np.mean(x)), abs=1e-4)]}
    assert e.reference.startswith("the probability of y of one row: each number at its mean")
