"""The request path keeps columns as checked lists (one array per batch, not per request): the
lists, the one-row fast path and the numpy arrays must agree value for value and error for
error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.errors import InvalidRequestError
from mooring.serving import TensorInfo
from mooring.serving.validation import InputPolicy, columns_from_rows

INPUTS = {
    "age": TensorInfo("age", "float32", (None,)),
    "count": TensorInfo("count", "int64", (None,)),
    "sex": TensorInfo("sex", "string", (None,)),
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(),  # NaN and ±inf included: the policy decides
    st.sampled_from([3.5e38, -3.5e38, 2.0, 1e39]),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
)
ROW = st.fixed_dictionaries({"age": VALUES, "count": VALUES, "sex": VALUES})
POLICIES = st.builds(
    InputPolicy,
    nan=st.sampled_from(["missing", "reject"]),
    infinity=st.sampled_from(["reject", "missing"]),
)


def outcome(rows: list[dict[str, Any]], policy: InputPolicy, arrays: bool) -> Any:
    """The error, or the values as the model receives them (float32 for float inputs)."""
    try:
        columns, n = columns_from_rows(
            rows, INPUTS, where="instances", policy=policy, arrays=arrays
        )
    except InvalidRequestError as exc:
        return ("error", str(exc))
    plain = {
        k: [
            None if isinstance(x, float) and math.isnan(x) else x
            for x in np.asarray(v, INPUTS[k].numpy_dtype()).tolist()
        ]
        for k, v in columns.items()
    }
    return ("ok", n, plain)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=3), policy=POLICIES)
def test_lists_and_arrays_agree(rows: list[dict[str, Any]], policy: InputPolicy) -> None:
    listed = outcome(rows, policy, arrays=False)
    assert listed == outcome(rows, policy, arrays=True)
    if listed[0] == "ok":
        columns, _ = columns_from_rows(rows, INPUTS, where="instances", policy=policy, arrays=False)
        assert all(type(x) is float for x in columns["age"])  # float inputs: floats only
        assert all(type(x) is int for x in columns["count"])
        assert all(type(x) is str for x in columns["sex"])


def test_int32_inputs_refuse_what_does_not_fit() -> None:
    inputs = {"n": TensorInfo("n", "int32", (None,))}
    with pytest.raises(
        InvalidRequestError, match=r"instances\.n\[0\]: expected a number that fits"
    ):
        columns_from_rows([{"n": 2**40}], inputs, where="instances")
    columns, _ = columns_from_rows([{"n": 7.0}], inputs, where="instances", arrays=False)
    assert columns["n"] == [7]
