"""XLA where it pays: which batch sizes run compiled, and that they answer as the plain
signature does (real SavedModels, real XLA compilation on the CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from mooring.config import MooringConfig
from mooring.errors import ConfigError
from mooring.serving import _xla as xla
from mooring.serving._loaded import ServedModel, load_served_model
from mooring.serving._protocols.tfserving import metadata_document
from tests._support.imported_models import build_sequence, build_text, build_two_inputs, examples

MINIMAL = {"project": {"name": "income"}, "data": {"train": "train.csv"}}


class _Centred(tf.Module):  # type: ignore[misc]
    """Each row minus the batch's mean: one answer per row, but read across the batch."""

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])  # type: ignore[untyped-decorator]
    def serve(self, x: Any) -> dict[str, Any]:
        return {"y": x - tf.reduce_mean(x, axis=0, keepdims=True)}


@pytest.fixture(scope="module")
def numeric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_two_inputs(tmp_path_factory.mktemp("xla") / "two_inputs")


def _served(folder: Path) -> ServedModel:
    return load_served_model("imported", 1, folder)


def test_every_size_run_compiled_answers_as_the_plain_signature(numeric: Path) -> None:
    model = _served(numeric)
    plan = xla.judge(model, 8, min_speedup=0.0)  # every size whose outputs agree
    assert plan.used == (1, 2, 4, 8), plan
    assert model.compiled is not None
    assert plan.max_difference is not None and plan.max_difference <= 1e-5
    for rows in range(1, 10):  # 9 rows: past the largest size, so plain
        inputs = examples("two_inputs", rows, seed=rows)
        size = model.compiled.size_for(rows)
        assert size == (None if rows > 8 else next(s for s in (1, 2, 4, 8) if s >= rows))
        got = model.predict(inputs)
        plain = model.folder.predict(inputs)
        assert set(got) == set(plain)
        for name, expected in plain.items():
            assert got[name].shape == expected.shape
            np.testing.assert_allclose(got[name], expected, rtol=xla.RTOL, atol=xla.ATOL)


def test_a_size_not_faster_runs_plain(numeric: Path) -> None:
    model = _served(numeric)
    plan = xla.judge(model, 4, min_speedup=1e9)  # nothing is a billion times faster
    assert plan.used == () and model.compiled is None
    assert set(plan.speedup) == {1, 2, 4} and all(v > 0 for v in plan.speedup.values())
    assert plan.reason == "not used: not 1e+09× faster at any batch size"


def test_a_model_with_a_string_input_is_not_compiled(tmp_path: Path) -> None:
    model = _served(build_text(tmp_path / "text"))
    plan = xla.judge(model, 8, min_speedup=0.0)
    assert plan.used == () and model.compiled is None
    assert plan.reason == "not compiled: XLA takes no string input ('text')"


class _Labelled(tf.Module):  # type: ignore[misc]
    """Numbers in, a number and its text out: XLA has no string output."""

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])  # type: ignore[untyped-decorator]
    def serve(self, x: Any) -> dict[str, Any]:
        return {"y": x * 2.0, "text": tf.strings.as_string(x)}


def _saved(module: Any, folder: Path) -> ServedModel:
    """``module`` saved with its ``serve`` as the signature, loaded as the server does."""
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return _served(folder)


def test_a_model_xla_cannot_compile_is_served_plain(tmp_path: Path) -> None:
    model = _saved(_Labelled(), tmp_path / "labelled")
    plan = xla.judge(model, 4, min_speedup=0.0)
    assert plan.used == () and model.compiled is None
    assert plan.reason.startswith("not compiled: XLA cannot compile the signature ("), plan.reason


def test_a_model_of_sequences_of_any_length_is_not_compiled(tmp_path: Path) -> None:
    model = _served(build_sequence(tmp_path / "sequence"))  # steps: [N, ?, 3]
    plan = xla.judge(model, 8, min_speedup=0.0)
    assert plan.used == () and model.compiled is None
    assert plan.reason.startswith("not compiled: input 'steps' has a dimension of any size")


def test_a_model_that_reads_across_the_batch_is_never_padded(tmp_path: Path) -> None:
    # Faster or not, and right on a full batch: padding would still change every answer.
    model = _saved(_Centred(), tmp_path / "centred")
    plan = xla.judge(model, 8, min_speedup=0.0)
    assert plan.used == () and model.compiled is None
    assert "depend on the batch's other rows" in plan.reason, plan.reason
    # One row padded with its own copy keeps its mean; three rows and a copy do not.
    assert plan.reason.startswith("not used: padding a batch of 3 rows to 4"), plan.reason


def test_off_never_compiles_and_the_metadata_says_so(numeric: Path) -> None:
    model = _served(numeric)
    model.warm_up(2, 8, "off")
    assert model.compiled is None and model.xla is not None
    shown = metadata_document(model)["metadata"]["xla"]
    assert shown["setting"] == "off" and shown["used"] is False
    assert shown["reason"] == 'not compiled: [serving] xla = "off"'


def test_auto_judges_at_warm_up_and_the_metadata_shows_the_evidence(numeric: Path) -> None:
    model = _served(numeric)
    model.warm_up(2, 4, "auto")
    shown = metadata_document(model)["metadata"]["xla"]
    assert shown["setting"] == "auto"
    assert set(shown["speedup"]) == {"1", "2", "4"}
    assert shown["used"] == bool(shown["batch_sizes"]) == (model.compiled is not None)
    assert shown["tolerance"] == {"rtol": xla.RTOL, "atol": xla.ATOL}
    assert "signature_def" in metadata_document(model)["metadata"]


@given(
    value=st.floats(-10, 10, allow_nan=False, width=32),
    error=st.floats(-1e-3, 1e-3, allow_nan=False),
)
def test_outputs_agree_exactly_when_within_the_stated_tolerance(value: float, error: float) -> None:
    plain = {"p": np.array([value], np.float32)}
    moved = {"p": (plain["p"].astype(np.float64) + error).astype(np.float32)}
    within = abs(float(moved["p"][0]) - float(plain["p"][0])) <= xla.ATOL + xla.RTOL * abs(value)
    found = xla._agree(plain, moved)
    assert (found is not None) == within
    if found is not None:
        assert found == pytest.approx(abs(float(moved["p"][0]) - float(plain["p"][0])))


def test_missing_values_agree_where_both_are_missing() -> None:
    plain = {"p": np.array([np.nan, 0.5], np.float32)}
    assert xla._agree(plain, {"p": np.array([np.nan, 0.5], np.float32)}) == 0.0
    assert (
        xla._agree({"p": np.array([np.nan], np.float32)}, {"p": np.array([np.nan], np.float32)})
        == 0.0
    )
    assert xla._agree(plain, {"p": np.array([0.0, 0.5], np.float32)}) is None


def test_strings_and_shapes_must_match_exactly() -> None:
    words = {"c": np.array([b"a", b"b"], dtype=object)}
    assert xla._agree(words, {"c": np.array([b"a", b"c"], dtype=object)}) is None
    assert xla._agree(words, {"c": np.array([b"a"], dtype=object)}) is None
    assert xla._agree(words, {}) is None
    assert xla._agree(words, dict(words)) == 0.0


def test_the_setting_names_its_key_and_values() -> None:
    assert MooringConfig.from_mapping(MINIMAL).serving.xla == "auto"
    assert MooringConfig.from_mapping({**MINIMAL, "serving": {"xla": "off"}}).serving.xla == "off"
    with pytest.raises(ConfigError, match=r"\[serving\] key 'xla'.*'auto'.*'off'"):
        MooringConfig.from_mapping({**MINIMAL, "serving": {"xla": "always"}})
