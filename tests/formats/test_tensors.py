"""The tensor decoder: shapes checked, never broadcast; dtypes fitted, never wrapped."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mooring.errors import InvalidRequestError
from mooring.formats._columns import InputPolicy
from mooring.formats._model import TensorInfo
from mooring.formats._tensors import (
    check_shape,
    summarize_tensors,
    tensor_from_flat,
    tensor_from_json,
    tensors_from_columns,
    tensors_from_rows,
)

IMAGE = TensorInfo("image", "float32", (None, 4, None, 1))
dims = st.one_of(st.none(), st.integers(1, 6))


@given(
    expected=st.lists(dims, min_size=0, max_size=4),
    shape=st.lists(st.integers(0, 6), min_size=1, max_size=5),
)
def test_a_shape_fits_exactly_when_its_rank_and_fixed_dimensions_match(
    expected: list[int | None], shape: list[int]
) -> None:
    info = TensorInfo("x", "float32", (None, *expected))
    fits = len(shape) == len(info.shape) and all(
        e is None or e == d for d, e in zip(shape, info.shape, strict=True)
    )
    if fits:
        check_shape("inputs.x", shape, info)
        return
    with pytest.raises(InvalidRequestError, match=r"inputs\.x: shape \[") as caught:
        check_shape("inputs.x", shape, info)
    assert info.describe_shape() in str(caught.value)


def test_a_missing_or_extra_dimension_of_one_says_which_way_to_fix_it() -> None:
    column = TensorInfo("age", "float32", (None, 1))
    with pytest.raises(InvalidRequestError, match="add the last dimension of size 1"):
        tensor_from_json("inputs.age", [39.0, 52.0], column)
    flat = TensorInfo("age", "float32", (None,))
    with pytest.raises(InvalidRequestError, match="drop the last dimension of size 1"):
        tensor_from_json("inputs.age", [[39.0], [52.0]], flat)


def test_numbers_are_fitted_to_the_dtype_or_refused() -> None:
    pixels = TensorInfo("p", "uint8", (None, 2))
    assert tensor_from_json("p", [[0, 255]], pixels).dtype == np.uint8
    with pytest.raises(InvalidRequestError, match=r"outside uint8's range \[0, 255\]"):
        tensor_from_json("p", [[0, 256]], pixels)
    with pytest.raises(InvalidRequestError, match=r"1\.5 is not an integer"):
        tensor_from_json("p", [[0, 1.5]], pixels)
    with pytest.raises(InvalidRequestError, match="true/false where input 'p' takes uint8"):
        tensor_from_json("p", [[True, False]], pixels)
    flags = TensorInfo("f", "bool", (None,))
    assert tensor_from_json("f", [1, 0], flags).tolist() == [True, False]
    with pytest.raises(InvalidRequestError, match="takes true/false"):
        tensor_from_json("f", [2, 0], flags)
    half = TensorInfo("h", "float16", (None,))
    with pytest.raises(InvalidRequestError, match="overflows float16"):
        tensor_from_json("h", [1e6], half)


def test_missing_and_non_finite_numbers_follow_the_policy() -> None:
    info = TensorInfo("x", "float32", (None, 2))
    got = tensor_from_json("x", [[None, 1.0]], info)
    assert math.isnan(got[0, 0]) and got[0, 1] == 1.0
    with pytest.raises(InvalidRequestError, match="nan_policy"):
        tensor_from_json("x", [[math.nan, 1.0]], info, InputPolicy(nan="reject"))
    with pytest.raises(InvalidRequestError, match="infinity_policy"):
        tensor_from_json("x", [[math.inf, 1.0]], info)
    assert math.isnan(
        tensor_from_json("x", [[math.inf, 1.0]], info, InputPolicy(infinity="missing"))[0, 0]
    )
    integers = TensorInfo("i", "int64", (None,))
    with pytest.raises(InvalidRequestError, match="expected a number, got None"):
        tensor_from_json("i", [1, None], integers)


def test_string_inputs_take_text_and_any_bytes_as_b64() -> None:
    info = TensorInfo("s", "string", (None, 2))
    raw = bytes([0xFF, 0x00, 0x89])  # not UTF-8: an encoded image is any bytes
    got = tensor_from_json("s", [["héllo", {"b64": base64.b64encode(raw).decode()}]], info)
    assert got.tolist() == [["héllo".encode(), raw]]
    with pytest.raises(InvalidRequestError, match="is not base64"):
        tensor_from_json("s", [["a", {"b64": "***"}]], info)
    with pytest.raises(InvalidRequestError, match="regular array"):
        tensor_from_json("s", [["a", "b"], ["c"]], info)
    with pytest.raises(InvalidRequestError, match="expected a string"):
        tensor_from_json("s", [["a", 3]], info)


def test_flat_data_must_hold_the_shape_it_claims() -> None:
    got = tensor_from_flat("inputs.image", list(range(8)), [1, 4, 2, 1], IMAGE)
    assert got.shape == (1, 4, 2, 1) and got.dtype == np.float32
    with pytest.raises(InvalidRequestError, match="8 values do not hold shape"):
        tensor_from_flat("inputs.image", list(range(8)), [2**40, 4, 2, 1], IMAGE)
    with pytest.raises(InvalidRequestError, match="is not a list of sizes"):
        tensor_from_flat("inputs.image", [1.0], [-1], IMAGE)


def test_rows_and_columns_share_one_batch_across_inputs() -> None:
    inputs = {
        "a": TensorInfo("a", "float32", (None, 2)),
        "b": TensorInfo("b", "int64", (None,)),
    }
    tensors, rows = tensors_from_rows(
        [{"a": [1, 2], "b": 3}, {"a": [4, 5], "b": 6}], inputs, where="instances"
    )
    assert rows == 2 and tensors["a"].shape == (2, 2) and tensors["b"].tolist() == [3, 6]
    with pytest.raises(InvalidRequestError, match="input 'b' has a batch of 1 but 'a' has 2"):
        tensors_from_columns({"a": [[1, 2], [3, 4]], "b": [1]}, inputs, where="inputs")
    with pytest.raises(InvalidRequestError, match="missing input 'b'"):
        tensors_from_rows([{"a": [1, 2]}], inputs, where="instances")
    with pytest.raises(InvalidRequestError, match="empty batch"):
        tensors_from_columns({"a": [], "b": []}, inputs, where="inputs")


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(2, 5), st.integers(1, 3)),
        elements=st.floats(-100, 100, width=32),
    )
)
def test_a_summary_per_row_is_numpy_statistics_of_the_row(values: np.ndarray) -> None:
    summary = summarize_tensors({"x": values})
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    np.testing.assert_allclose(summary["x.mean"], flat.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(summary["x.std"], flat.std(axis=1), rtol=1e-9, atol=1e-12)
    assert summary["x.min"].tolist() == flat.min(axis=1).tolist()
    assert summary["x.max"].tolist() == flat.max(axis=1).tolist()
    assert summary["x.zeros"].tolist() == (flat == 0).mean(axis=1).tolist()
    assert summary["x.shape"] == [f"{values.shape[1]}x{values.shape[2]}"] * values.shape[0]
    assert "x" not in summary


def test_one_value_per_row_is_logged_as_a_column() -> None:
    summary = summarize_tensors(
        {
            "age": np.array([[39.0], [52.0]], np.float32),
            "photo": np.array([b"\xff\xd8", b""], dtype=object),
        }
    )
    assert summary["age"].tolist() == [39.0, 52.0]
    assert summary["photo.bytes"].tolist() == [2.0, 0.0]
    assert sorted(summary) == ["age", "photo.bytes"]


def test_a_json_boolean_in_a_text_tensor_is_its_text() -> None:
    got = tensor_from_json("f", [[True, False], [None, "x"]], TensorInfo("f", "string", (None, 2)))
    assert got.tolist() == [[b"true", b"false"], [b"", b"x"]]
