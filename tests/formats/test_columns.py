"""The request path keeps columns as checked lists (one array per batch, not per request): the
lists, the one-row fast path and the numpy arrays must agree value for value and error for
error."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mooring.errors import InvalidRequestError
from mooring.formats._columns import (
    InputPolicy,
    _checked_values,
    column_values,
    columns_from_rows,
    loads,
)
from mooring.formats._model import TensorInfo

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


def _checked(check: Any, values: list[Any], info: TensorInfo, policy: InputPolicy) -> Any:
    try:
        out = check("instances.x", list(values), info, policy)
    except InvalidRequestError as exc:
        return ("error", str(exc))
    # NaN != NaN: compare it as None, and compare the types too (floats stay floats).
    return ("ok", [(type(v), None if v != v else v) for v in out])


@settings(max_examples=400, deadline=None)
@given(
    values=st.one_of(
        st.lists(VALUES, min_size=1, max_size=8),
        st.lists(st.floats(-1e39, 1e39) | st.integers(-(2**130), 2**130), min_size=1),
        st.lists(st.text(max_size=3), min_size=1),
    ),
    dtype=st.sampled_from(["float32", "float64", "int64", "string"]),
    policy=POLICIES,
)
def test_the_fast_column_check_agrees_with_the_value_by_value_check(
    values: list[Any], dtype: str, policy: InputPolicy
) -> None:
    info = TensorInfo("x", dtype, (None,))
    assert _checked(column_values, values, info, policy) == _checked(
        _checked_values, values, info, policy
    )


def test_int32_inputs_refuse_what_does_not_fit() -> None:
    inputs = {"n": TensorInfo("n", "int32", (None,))}
    with pytest.raises(
        InvalidRequestError, match=r"instances\.n\[0\]: expected a number that fits"
    ):
        columns_from_rows([{"n": 2**40}], inputs, where="instances")
    columns, _ = columns_from_rows([{"n": 7.0}], inputs, where="instances", arrays=False)
    assert columns["n"] == [7]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"age": 1.0, "count": 2}, r"instances\[1\]: missing field 'sex'"),
        ({"age": 1.0, "count": 2, "sex": "a", "zip": 1}, r"instances\[1\]: unexpected field"),
        ({"age": 1.0, "count": 2, "sx": "a"}, r"instances\[1\]: missing field 'sex'"),
    ],
)
def test_a_misnamed_field_in_a_batch_is_named_with_its_row(
    second: dict[str, Any], message: str
) -> None:
    rows = [{"age": 1.0, "count": 2, "sex": "a"}, second, {"age": 3.0, "count": 4, "sex": "b"}]
    for arrays in (False, True):
        with pytest.raises(InvalidRequestError, match=message):
            columns_from_rows(rows, INPUTS, where="instances", arrays=arrays)


_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=4,
)


@given(
    values=st.lists(_ANY_JSON, min_size=1, max_size=6),
    dtype=st.sampled_from(["float32", "float64", "int64", "int32", "string"]),
)
@example(values=[1.5, 10**310], dtype="float32")  # the sum overflowed before the range check
@example(values=[[1.0]], dtype="float32")
def test_the_decoder_is_total_every_bad_value_is_a_400(values: list[object], dtype: str) -> None:
    """Whatever JSON a client sends in a column, the answer is a column or a 400 naming it."""
    info = TensorInfo("x", dtype, (None,))
    message = ""
    try:
        out = column_values("inputs.x", list(values), info)
    except InvalidRequestError as exc:
        message = str(exc)
        out = []
    assert message.startswith("inputs.x[") if message else len(out) == len(values)


KEYS = st.sampled_from(["a", "b", "a:b", 'q"', "\\", "é"])
# Objects as ("object", [(key, value), ...]) so that a key can repeat.
NODES = st.recursive(
    st.none() | st.integers(-5, 5) | st.text(alphabet=':"\\ab{}[]', max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(st.tuples(KEYS, children), max_size=3).map(lambda pairs: ("object", pairs))
    ),
    max_leaves=12,
)


def _render(node: Any, escape: bool) -> str:
    """JSON text of a node; ``escape`` writes every colon inside a string as \\u003a."""
    if isinstance(node, tuple):
        members = (f"{_render(k, escape)}:{_render(v, escape)}" for k, v in node[1])
        return "{" + ",".join(members) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_render(v, escape) for v in node) + "]"
    text = json.dumps(node)
    return text.replace(":", "\\u003a") if escape and isinstance(node, str) else text


def _repeats(node: Any) -> bool:
    if isinstance(node, tuple):
        keys = [k for k, _ in node[1]]
        return len(set(keys)) != len(keys) or any(_repeats(v) for _, v in node[1])
    return isinstance(node, list) and any(_repeats(v) for v in node)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(KEYS, NODES), max_size=5),
    escape=st.booleans(),
    pad=st.sampled_from([0, 0, 700, 3000]),
)
def test_loads_refuses_exactly_the_bodies_with_a_repeated_key(
    pairs: list[tuple[str, Any]], escape: bool, pad: int
) -> None:
    node = ("object", pairs)
    text = _render(node, escape).encode()
    if pad:  # a long body (its colons counted another way), with colons inside a string
        text = b"[" + _render("a:" * pad, escape).encode() + b"," + text + b"]"
    if _repeats(node):
        with pytest.raises(InvalidRequestError, match="appears twice in one object"):
            loads(text)
    else:
        assert loads(text) == json.loads(text)


def test_a_json_boolean_is_the_text_a_boolean_column_was_trained_on() -> None:
    # A boolean column's contract domain is ['false', 'true']; clients send JSON booleans.
    flag = TensorInfo("ist.Premium", "string", (None,))
    rows = [{"ist.Premium": True}, {"ist.Premium": False}, {"ist.Premium": None}]
    columns, count = columns_from_rows(rows, {"ist.Premium": flag}, where="instances")
    assert count == 3 and list(columns["ist.Premium"]) == ["true", "false", ""]
    assert column_values("inputs.f", [True, "true"], flag) == ["true", "true"]
    with pytest.raises(InvalidRequestError, match=r"inputs.f\[0\]: expected a string, true/false"):
        column_values("inputs.f", [3], flag)
