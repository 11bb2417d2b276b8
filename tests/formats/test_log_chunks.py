"""The server's log chunks: the table they make is the one their rows would make."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.errors import DataError
from mooring.formats.columns import InputPolicy, columns_from_rows, loads
from mooring.formats.log_chunks import LogChunk, log_chunks_table, rows_schema
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
    st.text(max_size=8),
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


@given(
    st.lists(
        st.tuples(
            st.lists(_row, min_size=1, max_size=4),
            st.booleans(),  # pretty-printed: newlines inside the body
            st.booleans(),  # with "signature_name"
            st.booleans(),  # kept as its columns, not its body
        ),
        min_size=1,
        max_size=6,
    )
)
def test_bodies_make_the_same_table_as_their_columns(
    requests: list[tuple[list[dict[str, Any]], bool, bool, bool]],
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
