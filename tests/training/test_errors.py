"""Bad input fails before training with a MooringError that names the fix; numeric safety."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mooring.config import MooringConfig
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import ConfigError, DataError
from mooring.features._infer import FeatureWarning
from mooring.features._inputs import predict_saved_model
from mooring.training._train import train_model
from tests.training.conftest import make_config, prepare, synthetic_table


def _config_with(path: Path, **sections: object) -> MooringConfig:
    base = make_config(path).model_dump(mode="json", by_alias=True)
    base["data"].update(sections.pop("data", {}))  # type: ignore[call-overload]
    base.update(sections)
    return MooringConfig.from_mapping(base, root=path.parent)


def test_missing_label_column(tmp_path: Path) -> None:
    path, stats, _ = prepare(tmp_path)
    cfg = _config_with(path, data={"label": "outcome"})
    with pytest.raises(DataError, match=r"label column 'outcome' .* not in the training data"):
        train_model(cfg, statistics=stats, schema=None, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unexpected_label_values(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    schema.columns["target"].domain = ["no", "maybe"]
    with pytest.raises(DataError, match=r"outside the label vocabulary \['maybe', 'no'\].*'yes'"):
        train_model(make_config(path), statistics=stats, schema=schema, output_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_positive_class_that_never_occurs(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = _config_with(path, data={"positive": "Yes"})
    with pytest.raises(ConfigError, match=r"positive = 'Yes' is not a value of label 'target'"):
        train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run")


def test_unknown_feature_name_suggests_the_column(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = _config_with(path, features={"colour": {"encoding": "one_hot"}})
    with pytest.raises(ConfigError, match=r"'colour', which is not a column.*did you mean 'color'"):
        train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run")


def test_feature_with_all_values_missing(tmp_path: Path) -> None:
    table = synthetic_table().append_column("empty", pa.array([None] * 600, pa.float64()))
    path, stats, schema = prepare(tmp_path, table)
    with pytest.raises(DataError, match=r"feature 'empty' has no values.*exclude = \['empty'\]"):
        train_model(make_config(path), statistics=stats, schema=schema, output_dir=tmp_path / "r")


def test_builder_that_cannot_be_imported(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(path, builder="no_such_package.models:build")
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_package.models'"):
        train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _write_module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_builder_that_returns_the_wrong_thing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(
        tmp_path,
        "bad_builder_mod",
        """
        def build(features, config):
            return list(features.values())
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(path, builder="bad_builder_mod:build")
    with pytest.raises(ConfigError, match=r"returned list; it must return the body's output"):
        train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run")


def test_user_builder_hook_builds_the_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(
        tmp_path,
        "good_builder_mod",
        """
        from keras import layers

        def build(features, config):
            x = layers.Concatenate()(list(features.values()))
            return layers.Dense(4, activation="tanh", name="custom_body")(x)
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(path, builder="good_builder_mod:build", epochs=1)
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", tensorboard=False
    )
    assert result.parity is not None and result.parity.passed
    assert result.record.params["builder"] == "good_builder_mod:build"


def test_constant_column_and_far_out_of_range_inputs_stay_finite(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = 400
    x = rng.normal(0.0, 1.0, rows)
    table = pa.table(
        {
            "x": x,
            "flat": np.full(rows, 7.0),
            "target": np.where(x + rng.normal(0, 0.3, rows) > 0, "yes", "no").tolist(),
        }
    )
    path, _, _ = prepare(tmp_path, table)
    stats = compute_statistics(path)
    schema = infer_schema(stats, label="target")
    cfg = make_config(path, epochs=2, learning_rate=0.05)
    with pytest.warns(FeatureWarning, match=r"'flat' is constant .* kept finite"):
        result = train_model(
            cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", tensorboard=False
        )
    far = np.array([4e6, -4e6, 4e9, -4e9, np.inf, -np.inf], np.float32)
    flat = np.array([7e6, -7e6, 7e9, -7e9, np.inf, -np.inf], np.float32)
    probabilities = predict_saved_model(result.model_dir, {"x": far, "flat": flat})["probabilities"]
    assert np.isfinite(probabilities).all()
    # Normalised values are clipped: 1e6× and 1e9× outside the range give the same answer.
    np.testing.assert_array_equal(probabilities[0], probabilities[2])
    np.testing.assert_array_equal(probabilities[1], probabilities[3])
    np.testing.assert_array_equal(probabilities[2], probabilities[4])
