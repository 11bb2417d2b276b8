"""The server's log chunks: the table they make is the one their rows would make."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.errors import DataError
from mooring.formats.columns import InputPolicy, columns_from_rows, loads
from mooring.formats.log_chunks import (
    BodyRun,
    LogChunk,
    log_chunks_table,
    log_items_table,
    rows_schema,
)
from mooring.formats.model import TensorInfo
from mooring.formats.predictions import append_request_rows

_requests = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=5),  # rows
        st.booleans(),  # age as a list instead of an array
        st.booleans(),  # shadow
        st.sampled_from(["Male", "Female", "", "ünïcode"]),
        st.booleans(),  # the request lacks the column "hours"
    ),
    min_size=1,
    max_size=8,
)


@given(_requests)
def test_chunks_make_the_same_table_as_rows(
    requests: list[tuple[int, bool, bool, str, bool]],
) -> None:
    """A request kept as columns writes exactly the rows a request made into dicts writes."""
    rows_out: list[dict[str, Any]] = []
    chunks: list[LogChunk] = []
    for i, (rows, as_list, shadow, sex, no_hours) in enumerate(requests):
        age = np.arange(rows, dtype=np.float32) + np.float32(0.1) * i
        columns: dict[str, Any] = {
            "age": age.tolist() if as_list else age,
            "sex": np.array([sex] * rows, dtype=object),
            "hours": np.arange(rows, dtype=np.int64),
        }
        if no_hours:
            del columns["hours"]
        outputs = {
            "score": np.linspace(0, 1, rows),
            "probabilities": np.stack([np.linspace(0, 1, rows), np.linspace(1, 0, rows)], 1),
            "class": np.array([">50K"] * rows, dtype=object),
        }
        stamp = datetime(2026, 11, 23, 12, 0, i, tzinfo=UTC)
        fields = {"model": "income", "version": 2, "request_id": f"r{i}", "timestamp": stamp}
        append_request_rows(
            rows_out, columns=columns, outputs=outputs, rows=rows, shadow=shadow, **fields
        )
        chunks.append(
            LogChunk(columns=columns, outputs=outputs, rows=rows, shadow=shadow, **fields)
        )
    expected = pa.Table.from_pylist(rows_out)
    got = log_chunks_table(chunks)
    if any(r[4] for r in requests):  # rows put a column first seen later at the end
        names = sorted(expected.column_names)
        expected, got = expected.select(names), got.select(names)
    assert got.schema == expected.schema
    assert got.equals(expected)


_INPUTS = {
    "age": TensorInfo(name="age", dtype="float32", shape=(None,)),
    "count": TensorInfo(name="count", dtype="int64", shape=(None,)),
    "sex": TensorInfo(name="sex", dtype="string", shape=(None,)),
}
_SCHEMA = rows_schema({name: info.dtype for name, info in _INPUTS.items()})


def _decode(body: bytes) -> dict[str, Any]:
    """The server's own reading of a row-format body (the log's fallback)."""
    columns, _ = columns_from_rows(
        loads(body)["instances"],
        _INPUTS,
        where="instances",
        policy=InputPolicy(nan="missing", infinity="missing"),
        arrays=False,
    )
    return columns


_number = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(10**6), 10**6),
    st.none(),
    st.sampled_from(["NaN", "Infinity", "-Infinity"]),  # literals: not JSON, the fallback
)
_text = st.one_of(
    # Text that spells a number literal would be turned into one by _body.
    st.text(max_size=8).filter(lambda t: "NaN" not in t and "Infinity" not in t),
    st.none(),
    st.builds(lambda s: {"b64": base64.b64encode(s.encode()).decode()}, st.text(max_size=6)),
)
_row = st.fixed_dictionaries({"age": _number, "count": st.integers(-5, 5), "sex": _text})


def _body(rows: list[dict[str, Any]], pretty: bool, signature: bool) -> bytes:
    text = json.dumps(
        {"instances": rows, **({"signature_name": "serving_default"} if signature else {})},
        indent=2 if pretty else None,
        ensure_ascii=False,
    )
    for literal in ("NaN", "Infinity", "-Infinity"):  # as a client writes them: bare
        text = text.replace(f'"{literal}"', literal)
    return text.encode()


_Request = tuple[list[dict[str, Any]], bool, bool, bool]
_body_request = st.tuples(
    st.lists(_row, min_size=1, max_size=4),
    st.booleans(),  # pretty-printed: newlines inside the body
    st.booleans(),  # with "signature_name"
    st.booleans(),  # kept as its columns (a chunk), not its body
)


@given(st.lists(_body_request, min_size=1, max_size=6))
def test_bodies_make_the_same_table_as_their_columns(
    requests: list[_Request],
) -> None:
    """Row-format bodies read by Arrow (or, where it cannot, by the server's decoder) log
    exactly what their decoded columns log, whatever mix of the two a file holds."""
    as_columns: list[LogChunk] = []
    as_bodies: list[LogChunk] = []
    for i, (rows, pretty, signature, keep_columns) in enumerate(requests):
        body = _body(rows, pretty, signature)
        columns = _decode(body)
        outputs = {"score": np.linspace(0, 1, len(rows))}
        stamp = datetime(2026, 11, 23, 12, 0, i, tzinfo=UTC)
        fields = {"model": "income", "version": 2, "request_id": f"r{i}", "timestamp": stamp}
        as_columns.append(LogChunk(columns=columns, outputs=outputs, rows=len(rows), **fields))
        as_bodies.append(
            LogChunk(columns=columns, outputs=outputs, rows=len(rows), **fields)
            if keep_columns
            else LogChunk(
                columns={},
                outputs=outputs,
                rows=len(rows),
                body=body,
                schema=_SCHEMA,
                decode=_decode,
                **fields,
            )
        )
    expected = log_chunks_table(as_columns)
    got = log_chunks_table(as_bodies)
    assert got.schema == expected.schema
    assert got.to_pylist() == expected.to_pylist() or _same_with_nan(got, expected)


def _outputs(rows: int, i: int) -> dict[str, np.ndarray[Any, Any]]:
    """A classifier's outputs as the server slices them: floats, a row of probabilities
    each (from a float32 batch), and text."""
    scores = (np.arange(rows, dtype=np.float32) + i) / 10
    return {
        "score": scores,
        "probabilities": np.stack([scores, 1 - scores], 1),
        "classes": np.array([">50K" if i % 2 else "<=50K"] * rows, dtype=object),
    }


# With the version that answered each request.
@given(st.lists(st.tuples(_body_request, st.integers(1, 2)), min_size=1, max_size=8))
def test_runs_of_bodies_make_the_same_table_as_chunks(
    requests: list[tuple[_Request, int]],
) -> None:
    """Bodies kept in runs (buffers, no object per request) log exactly what the same
    requests kept as chunks log: in order, mixed with chunks, across versions, whether
    Arrow reads the bodies or the server's decoder has to."""
    chunks: list[LogChunk] = []
    items: list[LogChunk | BodyRun] = []
    for i, ((rows, pretty, signature, keep_columns), version) in enumerate(requests):
        body = _body(rows, pretty, signature)
        outputs = _outputs(len(rows), i)
        stamp = datetime(2026, 11, 23, 12, 0, i, 1234, tzinfo=UTC)
        fields = {"model": "income", "version": version, "request_id": f"r{i}", "timestamp": stamp}
        chunks.append(LogChunk(columns=_decode(body), outputs=outputs, rows=len(rows), **fields))
        if keep_columns:
            items.append(chunks[-1])
            continue
        nanos = (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
        args = ("income", version, False, _SCHEMA, f"r{i}", nanos + 999, len(rows), body, outputs)
        run = items[-1] if items else None
        if not isinstance(run, BodyRun) or not run.add(*args):
            run = BodyRun("income", version, False, _SCHEMA, _decode, outputs)
            assert run.add(*args)
            items.append(run)
    expected = log_chunks_table(chunks)
    got = log_items_table(items)
    assert got.schema == expected.schema
    assert got.to_pylist() == expected.to_pylist() or _same_with_nan(got, expected)
    assert items[0].timestamp == chunks[0].timestamp


def test_a_run_takes_only_requests_of_its_version_and_outputs() -> None:
    outputs = _outputs(1, 0)
    run = BodyRun("income", 1, False, _SCHEMA, _decode, outputs)
    body = _body([{"age": 1.0, "count": 1, "sex": "x"}], False, False)

    def add(model: str, version: int, shadow: bool, schema: pa.Schema, out: Any) -> bool:
        return run.add(model, version, shadow, schema, "r", 0, len(out["score"]), body, out)

    assert add("income", 1, False, _SCHEMA, _outputs(3, 1))
    assert not add("income", 2, False, _SCHEMA, outputs)
    assert not add("other", 1, False, _SCHEMA, outputs)
    assert not add("income", 1, True, _SCHEMA, outputs)
    assert not add("income", 1, False, rows_schema({"age": "float32"}), outputs)
    assert not add("income", 1, False, _SCHEMA, {"score": outputs["score"]})
    assert not add(
        "income", 1, False, _SCHEMA, {**outputs, "score": outputs["score"].astype(np.float64)}
    )
    wider = {**outputs, "probabilities": np.zeros((1, 3), np.float32)}
    assert not add("income", 1, False, _SCHEMA, wider)
    renamed = {("prob" if k == "probabilities" else k): v for k, v in outputs.items()}
    assert not add("income", 1, False, _SCHEMA, renamed)
    assert run.requests == 1 and run.rows == 3 and len(run.bodies) == len(body) + 1


def test_a_run_keeps_outputs_sliced_from_a_larger_batch() -> None:
    """The server hands each request a view of its batch's outputs (not contiguous when
    the batch's array is transposed): the run copies the values, not the view."""
    batch = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(6, 2))
    run = BodyRun("income", 1, False, _SCHEMA, _decode, {"p": batch[0:1]})
    body = (
        b'{"instances": [{"age": 1, "count": 1, "sex": "x"}, {"age": 2, "count": 2, "sex": "y"}]}'
    )
    assert run.add("income", 1, False, _SCHEMA, "a", 1, 2, body, {"p": batch[0:2]})
    assert run.add("income", 1, False, _SCHEMA, "b", 2, 2, body, {"p": batch[4:6]})
    batch[:] = -1  # the batch's buffer reused: the log still holds what was answered
    table = log_items_table([run])
    assert table.column("output.p").to_pylist() == [[0, 1], [2, 3], [8, 9], [10, 11]]
    assert table.column("request_id").to_pylist() == ["a", "a", "b", "b"]
    assert table.column("count").to_pylist() == [1, 2, 1, 2]


def _same_with_nan(got: pa.Table, expected: pa.Table) -> bool:
    """Equal, NaN equal to NaN (to_pylist compares NaN unequal to itself)."""
    for name in expected.column_names:
        a, b = got.column(name).to_pylist(), expected.column(name).to_pylist()
        if a != b and not all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True)):
            return False
    return True


def test_a_body_without_a_decoder_that_arrow_cannot_read_is_an_error_naming_it() -> None:
    stamp = datetime(2026, 11, 23, tzinfo=UTC)
    chunk = LogChunk(
        model="income",
        version=1,
        request_id="r-b64",
        timestamp=stamp,
        columns={},
        outputs={"score": np.zeros(1)},
        rows=1,
        body=b'{"instances": [{"age": 1.0, "count": 1, "sex": {"b64": "eA=="}}]}',
        schema=_SCHEMA,
    )
    with pytest.raises(DataError, match="r-b64"):
        log_chunks_table([chunk])
