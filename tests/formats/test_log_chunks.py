"""The server's log chunks: the table they make is the one their requests' rows would make."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.errors import DataError
from mooring.formats._log_chunks import LogChunk, arrow_columns, log_chunks_table
from mooring.formats._predictions import append_request_rows, log_rows_table

# A request: its rows, and the values of its text column.
_request = st.tuples(st.integers(min_value=1, max_value=5), st.sampled_from(["Male", "", "ünï"]))
_batches = st.lists(
    st.tuples(
        st.lists(_request, min_size=1, max_size=5),  # the batch's requests
        # columns as the decoder's lists, as arrays (binary tensors) or as arrow_columns
        # makes them of a large batch's lists
        st.sampled_from(["lists", "arrays", "arrow"]),
        st.booleans(),  # a shadow's rows
        st.integers(min_value=1, max_value=2),  # the version that ran it
        st.booleans(),  # the batch lacks the column "hours" (another version's inputs)
    ),
    min_size=1,
    max_size=6,
)


def _pylist(values: Any) -> Any:
    """A request's slice of a column as a request's rows hold it (Arrow as Python values)."""
    return values.to_pylist() if isinstance(values, pa.Array) else values


def _outputs(rows: int, start: int) -> dict[str, np.ndarray[Any, Any]]:
    """A classifier's outputs for a batch, as the model gives them: a float32 score, a row
    of probabilities each, and text."""
    scores = (np.arange(rows, dtype=np.float32) + start) / 10
    return {
        "score": scores,
        "probabilities": np.stack([scores, 1 - scores], 1),
        "class": np.array([">50K" if s > 0.5 else "<=50K" for s in scores], dtype=object),
    }


@given(_batches)
def test_batch_chunks_make_the_same_table_as_each_requests_rows(
    batches: list[tuple[list[tuple[int, str]], str, bool, int, bool]],
) -> None:
    """A batch kept as one chunk (its merged columns and outputs, each request's id and
    rows) writes exactly the rows its requests, made into dicts one by one, write."""
    rows_out: list[dict[str, Any]] = []
    chunks: list[LogChunk] = []
    serial = 0
    for b, (requests, form, shadow, version, no_hours) in enumerate(batches):
        total = sum(rows for rows, _ in requests)
        age = np.arange(total, dtype=np.float32) + np.float32(0.5) * b
        sex = [text for rows, text in requests for _ in range(rows)]
        as_lists = form != "arrays"
        columns: dict[str, Any] = {
            "age": age.tolist() if as_lists else age,
            "sex": sex if as_lists else np.array(sex, dtype=object),
            "hours": np.arange(total, dtype=np.int64),
        }
        if no_hours:
            del columns["hours"]
        if form == "arrow":
            columns = arrow_columns(columns)
            assert isinstance(columns["age"], pa.Array) and isinstance(columns["sex"], pa.Array)
        outputs = _outputs(total, b)
        stamp = datetime(2026, 11, 23, 12, 0, b, 1234, tzinfo=UTC)
        ids: list[str] = []
        clients: list[str | None] = []  # the X-Request-Id each client sent, if any
        start = 0
        for rows, _ in requests:
            ids.append(f"r{serial}")
            clients.append(None if serial % 3 == 0 else f"c{serial % 2}")
            serial += 1
            end = start + rows
            append_request_rows(
                rows_out,
                model="income",
                version=version,
                request_id=ids[-1],
                timestamp=stamp,
                columns={k: _pylist(v[start:end]) for k, v in columns.items()},
                outputs={k: v[start:end] for k, v in outputs.items()},
                rows=rows,
                shadow=shadow,
                client_request_id=clients[-1],
            )
            start = end
        chunks.append(
            LogChunk(
                model="income",
                version=version,
                request_ids=ids,
                counts=[rows for rows, _ in requests],
                timestamp=stamp,
                columns=columns,
                outputs=outputs,
                rows=total,
                shadow=shadow,
                client_request_ids=clients if any(clients) else None,
            )
        )
    expected = log_rows_table(rows_out)
    got = log_chunks_table(chunks)
    if any(batch[4] for batch in batches):  # rows put a column first seen later at the end
        names = sorted(expected.column_names)
        expected, got = expected.select(names), got.select(names)
    assert got.schema == expected.schema
    assert got.equals(expected)


def _chunk(**changes: Any) -> LogChunk:
    fields: dict[str, Any] = {
        "model": "income",
        "version": 1,
        "request_ids": ["a", "b"],
        "counts": [1, 2],
        "timestamp": datetime(2026, 11, 23, tzinfo=UTC),
        "columns": {"age": [39.0, 52.0, 18.0]},
        "outputs": {"score": np.array([0.1, 0.2, 0.3])},
        "rows": 3,
    }
    return LogChunk(**{**fields, **changes})


def test_each_row_carries_the_id_of_its_request() -> None:
    table = log_chunks_table([_chunk(), _chunk(request_ids=["c"], counts=[3])])
    assert table.column("request_id").to_pylist() == ["a", "b", "b", "c", "c", "c"]
    assert table.column("age").to_pylist() == [39.0, 52.0, 18.0] * 2


def test_a_chunk_whose_requests_do_not_add_up_to_its_rows_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"model 'income' names 2 requests with \[1, 1\] rows"):
        log_chunks_table([_chunk(counts=[1, 1])])
    with pytest.raises(DataError, match="names 1 requests"):
        log_chunks_table([_chunk(request_ids=["a"])])


def test_each_row_carries_its_clients_own_id_or_null() -> None:
    table = log_chunks_table(
        [
            _chunk(client_request_ids=["mine", None]),
            _chunk(request_ids=["c"], counts=[3]),  # no client sent one
        ]
    )
    assert table.column("client_request_id").type == pa.string()
    assert table.column("client_request_id").to_pylist() == ["mine", None, None, None, None, None]
    assert table.column("request_id").to_pylist() == ["a", "b", "b", "c", "c", "c"]
    alone = log_chunks_table([_chunk()])  # none at all: the column is there, all null
    assert alone.column("client_request_id").null_count == 3
    assert alone.schema.field("client_request_id").type == pa.string()
    with pytest.raises(DataError, match="names 2 requests but 1 client request ids"):
        log_chunks_table([_chunk(client_request_ids=["x"])])


def test_each_row_carries_the_inputs_it_held_outside_the_contract_or_null() -> None:
    table = log_chunks_table(
        [
            _chunk(violations=[None, [["age"], None]]),
            _chunk(request_ids=["c"], counts=[3]),  # every value inside the contract
        ]
    )
    assert table.schema.field("contract_violations").type == pa.list_(pa.string())
    assert table.column("contract_violations").to_pylist() == [
        None,
        ["age"],
        None,
        None,
        None,
        None,
    ]
    alone = log_chunks_table([_chunk()])
    assert alone.column("contract_violations").null_count == 3
    assert alone.schema.field("contract_violations").type == pa.list_(pa.string())
    with pytest.raises(DataError, match="contract violations for another number of rows"):
        log_chunks_table([_chunk(violations=[None, [["age"]]])])


def test_a_column_shorter_than_its_chunks_rows_is_an_error() -> None:
    with pytest.raises(DataError, match=r"log chunks hold 3 rows, but .*age"):
        log_chunks_table([_chunk(columns={"age": [39.0, 52.0]})])


def test_arrow_columns_converts_text_and_float_lists_and_leaves_the_rest() -> None:
    hours = np.array([40, 45])
    columns = arrow_columns(
        {"sex": ["Male", ""], "age": [39.0, float("nan")], "hours": hours, "n": [1, 2], "e": []}
    )
    assert columns["sex"].equals(pa.array(["Male", ""]))
    assert columns["age"].type == pa.float64() and columns["age"].to_pylist()[0] == 39.0
    assert np.isnan(columns["age"].to_pylist()[1])  # NaN stays NaN, as rows keep it
    assert columns["hours"] is hours and columns["n"] == [1, 2] and columns["e"] == []


def test_a_list_whose_values_change_kind_is_left_to_the_writer() -> None:
    """Text after a number (or a number after text): not one Arrow type, so the list stays
    a list and the writer makes the column as rows would."""
    columns = arrow_columns({"a": [1.5, "x"], "b": ["x", 2.0]})
    assert columns == {"a": [1.5, "x"], "b": ["x", 2.0]}


def test_arrow_parts_beside_parts_of_another_type_join_as_the_lists_would() -> None:
    """A column buffered as Arrow beside a chunk whose same column holds other values (a
    version with another dtype) makes the column the lists alone would: doubles beside
    integers, text beside numbers."""
    for values, other in (([39.0, 52.0, 18.0], np.array([1, 2, 3])), (["a", "b", "c"], [1, 2, 3])):
        plain = [
            _chunk(columns={"age": values}),
            _chunk(columns={"age": other}),
            _chunk(columns={"age": list(values)}),
        ]
        mixed = [_chunk(columns=arrow_columns(c.columns)) for c in plain]
        assert isinstance(mixed[0].columns["age"], pa.Array)
        expected = log_chunks_table(plain)
        assert log_chunks_table(mixed).equals(expected)
    assert expected.column("age").to_pylist() == ["a", "b", "c", "1", "2", "3", "a", "b", "c"]
