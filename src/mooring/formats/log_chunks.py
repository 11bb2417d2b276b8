"""The server's buffered log requests (:class:`LogChunk`) turned into the log's Arrow table.

The prediction log's layout, columns, file writer and reader are
:mod:`mooring.formats.predictions`; this module is how the serving process's writer
thread assembles many requests' chunks into one file's table, column by column, with
as little of the interpreter's time as it can (the event loop shares the GIL with it):
Python columns go to Arrow in one pass each, and requests kept as their JSON bodies are
read by Arrow's JSON reader, which holds no GIL.

Example:
    >>> chunk = LogChunk(model="income", version=1, request_id="r1",
    ...                  timestamp=datetime(2026, 11, 23, tzinfo=UTC),
    ...                  columns={"age": [39.0]}, outputs={"score": np.array([0.2])}, rows=1)
    >>> log_chunks_table([chunk]).column_names
    ['request_id', 'timestamp', 'model', 'model_version', 'shadow', 'age', 'output.score']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.errors import DataError
from mooring.formats.predictions import (
    MODEL,
    MODEL_VERSION,
    REQUEST_ID,
    SHADOW,
    TIMESTAMP,
    output_column,
    write_log_table,
)

__all__ = ["LogChunk", "log_chunks_table", "rows_schema", "write_log_chunks"]


def rows_schema(dtypes: Mapping[str, str]) -> pa.Schema:
    """The Arrow schema of a TF Serving row-format body (``{"instances": [{...}]}``) for
    inputs of these dtypes (``"string"``, ``"float32"``, ...), as the log stores them:
    text as strings, floats as doubles, integers as int64.

    >>> rows_schema({"age": "float32", "sex": "string"}).field("instances").type
    ListType(list<item: struct<age: double, sex: string>>)
    """
    fields = [
        pa.field(
            name, pa.string() if dtype == "string" else _LOGGED_NUMBERS.get(dtype, pa.float64())
        )
        for name, dtype in dtypes.items()
    ]
    return pa.schema([pa.field("instances", pa.list_(pa.struct(fields)))])


_LOGGED_NUMBERS = {"int64": pa.int64(), "int32": pa.int64()}


@dataclass(slots=True)
class LogChunk:
    """One request's logged rows, kept as its columns or its body: what the server buffers.

    Building rows on the event loop costs a dict per row; a chunk costs one object per
    request, and :func:`write_log_chunks` turns many chunks into Arrow columns on the
    writer thread. The file is the same as :func:`append_request_rows` rows make. The
    event loop makes one per logged request, so it has slots and is not frozen (a frozen
    dataclass sets each field through ``object.__setattr__``: 1.8 µs a chunk against
    0.6); nothing changes a chunk once it is buffered.

    ``body``: the request's JSON body in TF Serving's row format, instead of its
    columns (``columns`` is then empty). The writer reads the inputs of consecutive
    such chunks with Arrow's JSON reader against ``schema`` (:func:`rows_schema`): C++
    that holds no GIL and makes no Python object per value, where turning decoded
    Python values into Arrow held the GIL the server's event loop needs for about a
    third of its time at 64 rows a request. The body was checked when the request was
    served; what the JSON reader cannot take as the server read it (the ``NaN``
    literal, ``{"b64": ...}`` text) goes through ``decode`` (the server's own decoder:
    the body's columns), so the file holds what the model was given either way.
    """

    model: str
    version: int
    request_id: str
    timestamp: datetime
    columns: Mapping[str, Any]
    outputs: Mapping[str, np.ndarray[Any, Any]]
    rows: int
    shadow: bool = False
    body: bytes | None = None
    schema: pa.Schema | None = None
    decode: Callable[[bytes], Mapping[str, Any]] | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _column(parts: list[Any]) -> pa.Array:
    """One Arrow column from the requests' parts (arrays or lists), as rows would make it.

    Lists (what the server's decoder leaves) go to Arrow in one pass with no numpy
    array in between: a list of strings through numpy is a fixed-width unicode array
    and back, several times the cost, with the GIL held, on the serving process.
    """
    if set(map(type, parts)) == {list}:
        values = parts[0] if len(parts) == 1 else list(chain.from_iterable(parts))
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # e.g. numbers mixed with text: as numpy (and rows) would make it
    merged = np.concatenate(parts) if len(parts) > 1 else np.asarray(parts[0])
    kind = merged.dtype.kind
    if kind in "fiub":
        if kind == "f":
            merged = merged.astype(np.float64, copy=False)
        elif kind in "iu":
            merged = merged.astype(np.int64, copy=False)
        if merged.ndim == 2:  # one list per row (e.g. probabilities)
            flat = pa.array(merged.reshape(-1))
            return pa.FixedSizeListArray.from_arrays(flat, merged.shape[1]).cast(
                pa.list_(flat.type)
            )
        return pa.array(merged)
    if kind == "O" and merged.ndim == 1:  # text as the decoder leaves it
        return pa.array(merged)
    return pa.array(merged.tolist())


def _same(values: list[Any], arrow_type: pa.DataType, lengths: list[int], total: int) -> pa.Array:
    """A log column that holds one value per request, repeated over its rows."""
    if all(v == values[0] for v in values):
        return pa.repeat(pa.scalar(values[0], arrow_type), total)
    if all(n == 1 for n in lengths):
        return pa.array(values, arrow_type)
    return pa.array(np.repeat(np.array(values, dtype=object), lengths), arrow_type)


def _read_bodies(run: Sequence[LogChunk]) -> dict[str, pa.Array] | None:
    """The inputs of chunks holding bodies with one schema, read by Arrow's JSON reader;
    None when the reader cannot take them exactly as the server did."""
    import pyarrow.json as pajson

    schema = run[0].schema
    bodies = [c.body or b"" for c in run]
    # One body per line: newlines are whitespace between a JSON document's tokens.
    text = b"\n".join(
        b.replace(b"\n", b" ").replace(b"\r", b" ") if b"\n" in b or b"\r" in b else b
        for b in bodies
    )
    try:
        table = pajson.read_json(
            pa.BufferReader(text),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(text) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
        if table.num_rows != len(run):
            return None
        column = table.column("instances")
        instances = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        lengths = instances.value_lengths()
        if instances.null_count or lengths.null_count:
            return None
        if not np.array_equal(lengths.to_numpy(), np.fromiter((c.rows for c in run), np.int64)):
            return None
        rows = instances.flatten()
        if rows.null_count:
            return None
        out: dict[str, pa.Array] = {}
        for field, column in zip(rows.type, rows.flatten(), strict=True):
            if pa.types.is_string(field.type):
                column = column.fill_null("")  # null text is missing: ""
            elif pa.types.is_floating(field.type):
                if pc.any(pc.is_inf(column)).as_py():
                    return None  # the Infinity literal: the server's policy made it NaN
                column = column.fill_null(math.nan)  # a null number is missing: NaN
            elif column.null_count:
                return None
            out[field.name] = column
        return out
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return None


def _resolved(
    chunks: Sequence[LogChunk],
) -> list[tuple[list[LogChunk], dict[str, pa.Array] | None]]:
    """The chunks in runs, in order: (a run of chunks holding bodies with one schema, its
    inputs read by Arrow), or (chunks with Python columns, None). Bodies Arrow cannot
    read exactly are decoded by the server's decoder into columns."""
    runs: list[tuple[list[LogChunk], dict[str, pa.Array] | None]] = []
    i = 0
    while i < len(chunks):
        first = chunks[i]
        j = i + 1
        if first.body is None:
            while j < len(chunks) and chunks[j].body is None:
                j += 1
            runs.append((list(chunks[i:j]), None))
        else:
            while (
                j < len(chunks) and chunks[j].body is not None and chunks[j].schema is first.schema
            ):
                j += 1
            run = list(chunks[i:j])
            read = _read_bodies(run) if first.schema is not None else None
            if read is None:
                run = [_decoded(c) for c in run]
            runs.append((run, read))
        i = j
    return runs


def _decoded(chunk: LogChunk) -> LogChunk:
    """A body chunk as a columns chunk, through the server's decoder."""
    if chunk.body is None or chunk.decode is None:
        raise DataError(f"log chunk of request {chunk.request_id} has a body and no decoder")
    return replace(chunk, columns=chunk.decode(chunk.body), body=None, schema=None, decode=None)


def _inputs(
    runs: list[tuple[list[LogChunk], dict[str, pa.Array] | None]],
) -> dict[str, pa.Array] | None:
    """The input columns over every run, when every run has the same inputs; else None."""
    names: list[str] | None = None
    for run, read in runs:
        mine = list(read) if read is not None else None
        for c in run if read is None else ():
            if mine is None:
                mine = list(c.columns)
            elif c.columns.keys() != set(mine):
                return None
        if names is None:
            names = mine
        elif mine is None or set(mine) != set(names):
            return None
    out: dict[str, pa.Array] = {}
    for name in names or []:
        parts = [
            read[name] if read is not None else _column([c.columns[name] for c in run])
            for run, read in runs
        ]
        target = parts[0].type
        try:
            out[name] = pa.concat_arrays([p if p.type == target else p.cast(target) for p in parts])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
    return out


def log_chunks_table(chunks: Sequence[LogChunk]) -> pa.Table:
    """The log's table of ``chunks``, in order (the columns of :func:`append_request_rows`)."""
    inputs: dict[str, pa.Array] | None = None
    if any(c.body is not None for c in chunks):
        runs = _resolved(chunks)
        chunks = [c for run, _ in runs for c in run]
        if any(read is not None for _, read in runs):
            inputs = _inputs(runs)
            if inputs is None:
                # Inputs that differ between requests: every chunk as columns, as without bodies.
                chunks = [_decoded(c) if c.body is not None else c for c in chunks]
    lengths = [c.rows for c in chunks]
    total = sum(lengths)
    micros = np.array([(c.timestamp - _EPOCH) // timedelta(microseconds=1) for c in chunks])
    data: dict[str, pa.Array] = {
        REQUEST_ID: _same([c.request_id for c in chunks], pa.string(), lengths, total),
        TIMESTAMP: pa.array(np.repeat(micros, lengths), pa.timestamp("us", tz="UTC")),
        MODEL: _same([c.model for c in chunks], pa.string(), lengths, total),
        MODEL_VERSION: _same([c.version for c in chunks], pa.int64(), lengths, total),
        SHADOW: _same([c.shadow for c in chunks], pa.bool_(), lengths, total),
    }
    first = chunks[0]
    uniform = all(
        c.columns.keys() == first.columns.keys() and c.outputs.keys() == first.outputs.keys()
        for c in chunks
    )
    if inputs is not None:
        data.update(inputs)
        uniform = all(c.outputs.keys() == first.outputs.keys() for c in chunks)
    for pick in ("outputs",) if inputs is not None else ("columns", "outputs"):
        maps: list[Mapping[str, Any]] = [getattr(c, pick) for c in chunks]
        if uniform:
            for name in maps[0]:
                data[output_column(name) if pick == "outputs" else name] = _column(
                    [m[name] for m in maps]
                )
            continue
        for name in dict.fromkeys(n for m in maps for n in m):
            # Absent from some requests: nulls on their rows, as rows without the key.
            values: list[Any] = []
            for m, c in zip(maps, chunks, strict=True):
                part = m.get(name)
                values.extend([None] * c.rows if part is None else np.asarray(part).tolist())
            data[output_column(name) if pick == "outputs" else name] = pa.array(values)
    table = pa.table(data)
    if table.num_rows != total:  # pragma: no cover - a column of the wrong length
        raise DataError(f"log chunks hold {total} rows but a column has {table.num_rows}")
    return table


def write_log_chunks(url: str, chunks: Sequence[LogChunk]) -> str:
    """Write ``chunks`` as one new Parquet file (see :func:`write_log_file`); its path."""
    table = log_chunks_table(chunks)
    return write_log_table(url, table, chunks[0].timestamp)
