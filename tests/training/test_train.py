"""Training end to end on small data: export, signature, parity, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from mooring.config._model import plan_training
from mooring.contract._io import ReadOptions, read_table
from mooring.errors import UsageError
from mooring.features._inputs import predict_saved_model
from mooring.formats._model import METADATA_FILE, ModelVersionWarning
from mooring.formats._model import load_saved_model as load_model
from mooring.formats._split import training_rows
from mooring.training._fit import RunPlan, load_run
from mooring.training._train import train_model
from tests._support.shared import built_once, shared_root
from tests.training.conftest import make_config, prepare, synthetic_table


def _train_synthetic(folder: Path) -> None:
    path, stats, schema = prepare(folder)
    train_model(make_config(path), statistics=stats, schema=schema, output_dir=folder / "run")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The synthetic table's model, trained once per run whichever worker asks (read-only)."""
    folder = built_once(shared_root(tmp_path_factory) / "trained-synthetic", _train_synthetic)
    return load_run(folder / "run"), read_table(folder / "train.csv", ReadOptions())


def _npz(folder: Path) -> dict[str, np.ndarray[Any, Any]]:
    with np.load(folder / "weights.npz") as arrays:
        return {k: arrays[k] for k in arrays.files}


def test_export_writes_one_savedmodel_with_metadata(trained: Any) -> None:
    result, _ = trained
    model_dir = result.model_dir
    assert (model_dir / "saved_model.pb").is_file()
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    assert meta["versions"]["tensorflow"] == tf.__version__
    assert meta["versions"]["keras"] == keras.__version__
    assert meta["label_vocabulary"] == ["no", "yes"]
    assert meta["positive_class"] == "yes"
    assert meta["threshold"] == 0.5
    assert meta["feature_spec_hash"] == result.feature_spec_hash
    assert meta["statistics_hash"] == result.statistics_hash
    assert meta["schema_hash"] == result.schema_hash != ""
    assert set(meta["signature"]["inputs"]) == {"age", "income", "color", "city"}


def test_signature_takes_named_rank1_inputs_and_returns_named_outputs(trained: Any) -> None:
    result, _ = trained
    signature = tf.saved_model.load(str(result.model_dir)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        "age": (tf.float32, [None]),
        "income": (tf.float32, [None]),
        "color": (tf.string, [None]),
        "city": (tf.string, [None]),
    }
    outputs = signature.structured_outputs
    assert outputs["probabilities"].shape.as_list() == [None, 2]
    assert outputs["class_ids"].dtype == tf.int64
    assert outputs["classes"].dtype == tf.string


def test_inputs_of_shape_n_work_and_n_by_1_fail_loudly(trained: Any) -> None:
    result, table = trained
    loaded = load_model(result.model_dir)
    flat = {
        "age": np.array([30.0, np.nan], np.float32),
        "income": np.array([0.0, 5000.0], np.float32),
        "color": np.array(["red", ""], object),
        "city": np.array(["Oslo", "Atlantis"], object),
    }
    out = predict_saved_model(loaded, flat)
    assert out["probabilities"].shape == (2, 2)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
    assert out["classes"].tolist() == [b"no" if c == 0 else b"yes" for c in out["class_ids"]]
    column = {k: v.reshape(-1, 1) for k, v in flat.items()}
    with pytest.raises(UsageError, match=r"'age' has shape \[2, 1\]; every input must have shape"):
        predict_saved_model(loaded, column)
    # The SavedModel itself refuses [n, 1] too, instead of broadcasting.
    feed = {
        k: tf.constant(v.reshape(-1, 1), tf.string if v.dtype == object else tf.float32)
        for k, v in flat.items()
    }
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected shape"):
        loaded.signature(**feed)
    assert predict_saved_model(result.model_dir, table)["probabilities"].shape == (len(table), 2)


def test_parity_check_passed_with_missing_and_unseen_records(trained: Any) -> None:
    result, _ = trained
    assert result.parity is not None and result.parity.passed
    # 40 records plus all-missing, unseen-category and far-out-of-range ones.
    assert result.parity.records == 43
    assert result.parity.max_abs_diff <= 1e-6


def test_run_record_and_tensorboard_logs(trained: Any) -> None:
    result, _ = trained
    record = json.loads(result.training_record_path.read_text())
    assert record["task"] == "binary" and record["format"] == "mooring.training-run"
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]
    assert {"loss", "val_loss", "auc", "seconds", "cpu_seconds"} <= set(record["epochs"][0])
    assert record["timings"]["cpu_seconds"] > 0
    assert record["params"]["batch_size"] == 64
    assert record["feature_spec_hash"] == result.feature_spec_hash
    assert record["parity"]["passed"] is True
    assert list((result.model_dir.parent / "logs").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (result.model_dir.parent / "checkpoints").iterdir()) == [
        "epoch-0001",
        "epoch-0002",
    ]


def test_loading_warns_when_versions_differ(trained: Any, tmp_path: Path) -> None:
    import shutil

    result, _ = trained
    copy = tmp_path / "model"
    shutil.copytree(result.model_dir, copy)
    meta = json.loads((copy / METADATA_FILE).read_text())
    meta["versions"]["tensorflow"] = "2.0.0"
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.warns(ModelVersionWarning, match=r"tensorflow 2\.0\.0 → "):
        load_model(copy)


def test_same_seed_gives_bit_identical_weights(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(path, parity_records=0)
    runs = []
    for name in ("a", "b"):
        train_model(
            cfg, statistics=stats, schema=schema, output_dir=tmp_path / name, tensorboard=False
        )
        runs.append(_npz(tmp_path / name / "checkpoints" / "epoch-0002"))
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        assert np.array_equal(runs[0][key], runs[1][key]), key
    other = make_config(path, parity_records=0, seed=7)
    train_model(
        other, statistics=stats, schema=schema, output_dir=tmp_path / "c", tensorboard=False
    )
    changed = _npz(tmp_path / "c" / "checkpoints" / "epoch-0002")
    assert any(not np.array_equal(runs[0][k], changed[k]) for k in runs[0])


class _InterruptError(Exception):
    pass


class _StopAfter(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 == self.epochs:
            raise _InterruptError(f"stopped after epoch {epoch + 1}")


def test_resume_after_interruption_ends_with_identical_weights(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(path, epochs=4, parity_records=0)
    train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp_path / "full", tensorboard=False
    )
    with pytest.raises(_InterruptError, match="stopped after epoch 2"):
        train_model(
            cfg,
            statistics=stats,
            schema=schema,
            output_dir=tmp_path / "cut",
            callbacks=[_StopAfter(2)],
            tensorboard=False,
        )
    checkpoints = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0001", "epoch-0002"]
    resumed = train_model(
        cfg,
        statistics=stats,
        schema=schema,
        output_dir=tmp_path / "cut",
        resume=True,
        tensorboard=False,
    )
    assert resumed.resumed_from == 2
    assert [e["epoch"] for e in resumed.epochs] == [1, 2, 3, 4]
    full = _npz(tmp_path / "full" / "checkpoints" / "epoch-0004")
    cut = _npz(tmp_path / "cut" / "checkpoints" / "epoch-0004")
    for key in full:
        assert np.array_equal(full[key], cut[key]), key


def test_resume_refuses_a_changed_model(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    train_model(
        make_config(path, epochs=1, parity_records=0),
        statistics=stats,
        schema=schema,
        output_dir=tmp_path / "run",
        tensorboard=False,
    )
    with pytest.raises(UsageError, match="changed since it was written"):
        train_model(
            make_config(path, epochs=2, hidden=[8], parity_records=0),
            statistics=stats,
            schema=schema,
            output_dir=tmp_path / "run",
            resume=True,
            tensorboard=False,
        )


def test_multiclass_outputs_follow_the_label_vocabulary(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path, synthetic_table(task="multiclass"))
    result = train_model(
        make_config(path, class_weight="balanced"),
        statistics=stats,
        schema=schema,
        output_dir=tmp_path / "run",
        tensorboard=False,
    )
    assert result.task == "multiclass"
    assert result.label_vocabulary == ["high", "low", "mid"]
    out = predict_saved_model(result.model_dir, read_table(path, ReadOptions()))
    assert out["probabilities"].shape[1] == 3
    assert set(out["classes"].tolist()) <= {b"high", b"low", b"mid"}


def test_regression_returns_values_in_the_label_unit(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path, synthetic_table(task="regression"))
    result = train_model(
        make_config(path, epochs=3),
        statistics=stats,
        schema=schema,
        output_dir=tmp_path / "run",
        tensorboard=False,
    )
    assert result.task == "regression"
    table = read_table(path, ReadOptions())
    value = predict_saved_model(result.model_dir, table)["value"]
    target = np.asarray(table.column("target").to_numpy(), dtype=np.float64)
    assert value.shape == (len(table),)
    # Standardised for training, back in the label's unit when served.
    assert abs(float(value.mean()) - float(target.mean())) < 0.5 * float(target.std())


def test_streamed_parquet_trains_like_in_memory(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path, name="train.parquet")
    cfg = make_config(path, memory_limit_mb=0.001, parity_records=10, class_weight="balanced")
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", tensorboard=False
    )
    assert result.record.data["streamed"] is True
    assert result.record.data["train_rows"] + result.record.data["validation_rows"] == 600
    assert result.parity is not None and result.parity.passed


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    cfg = make_config(
        path,
        epochs=30,
        learning_rate=0.05,
        schedule="constant",
        parity_records=0,
        early_stopping={"patience": 1, "monitor": "val_loss"},
    )
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", tensorboard=False
    )
    assert result.stopped_early
    assert len(result.epochs) < 30
    losses = [e["val_loss"] for e in result.epochs]
    assert result.best_epoch == int(np.argmin(losses)) + 1


class _FittedError(Exception):
    """Raised once the fit ends: what the test looks at is known, the export is not needed."""


@pytest.mark.parametrize("kind", ["mlp", "linear"])
def test_the_plan_shown_is_the_plan_run_on_the_rows_it_trains_on(tmp_path: Path, kind: str) -> None:
    # A fifth of the labels missing: the rows trained on are not the statistics' rows
    # less the validation fraction, from which the progress display used to plan.
    table = synthetic_table(300)
    labels = table.column("target").to_pylist()
    table = table.set_column(
        table.schema.get_field_index("target"),
        "target",
        pa.array([None if i % 5 == 0 else v for i, v in enumerate(labels)]),
    )
    path, stats, schema = prepare(tmp_path, table)
    cfg = make_config(path, kind=kind, epochs=None, batch_size=None, max_steps=60, seed=3)
    shown: list[RunPlan] = []
    ran: list[tuple[int, int]] = []  # (epoch, steps) as the fit ran them

    class Run(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            ran.append((len(ran) and ran[-1][0], batch + 1))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            ran.append((epoch + 1, 0))

        def on_train_end(self, logs: Any = None) -> None:
            raise _FittedError("fitted")

    def show(plan: RunPlan) -> list[keras.callbacks.Callback]:
        shown.append(plan)
        return [Run()]

    with pytest.raises(_FittedError, match="fitted"):
        train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", show=show)
    [plan] = shown
    split = cfg.model.validation_split
    labelled = table.column("target")
    # A solved linear model fits every labelled row; a network those outside the split.
    assert plan.rows == (240 if kind == "linear" else training_rows(labelled, split, 3))
    assert plan.steps == plan_training(cfg.model, plan.rows)
    assert max(steps for _, steps in ran) == plan.steps_per_round
    if kind == "mlp":  # the whole plan run: every round, each of its steps
        assert max(epoch for epoch, _ in ran) == plan.rounds > 1
        estimate = int(stats.num_rows * (1.0 - split))
        assert plan_training(cfg.model, estimate).steps_per_round != plan.steps_per_round
