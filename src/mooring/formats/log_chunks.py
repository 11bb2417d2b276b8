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
from array import array
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

__all__ = [
    "BodyRun",
    "LogChunk",
    "log_chunks_table",
    "log_items_table",
    "rows_schema",
    "write_log_chunks",
]


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
    schema = run[0].schema
    if schema is None:
        return None
    # One body per line: newlines are whitespace between a JSON document's tokens.
    text = b"\n".join(_one_line(c.body or b"") for c in run)
    return _read_lines(text, schema, np.fromiter((c.rows for c in run), np.int64, len(run)))


def _one_line(body: bytes) -> bytes:
    """A JSON body on one line (a newline outside a string is whitespace; inside, escaped)."""
    if b"\n" in body or b"\r" in body:
        return body.replace(b"\n", b" ").replace(b"\r", b" ")
    return body


def _read_lines(
    text: bytes | bytearray, schema: pa.Schema, rows: np.ndarray[Any, Any]
) -> dict[str, pa.Array] | None:
    """The inputs of row-format bodies, one per line of ``text`` (``rows[i]`` rows in the
    i-th), read by Arrow's JSON reader against ``schema``; None when the reader cannot
    take them exactly as the server did."""
    import pyarrow.json as pajson

    try:
        table = pajson.read_json(
            pa.BufferReader(pa.py_buffer(text)),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(text) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
        if table.num_rows != len(rows):
            return None
        column = table.column("instances")
        instances = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        lengths = instances.value_lengths()
        if instances.null_count or lengths.null_count:
            return None
        if not np.array_equal(lengths.to_numpy(), rows):
            return None
        flat = instances.flatten()
        if flat.null_count:
            return None
        out: dict[str, pa.Array] = {}
        for field, column in zip(flat.type, flat.flatten(), strict=True):
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


class BodyRun:
    """Consecutive logged requests of one model version that came as row-format bodies,
    kept in a few growing buffers instead of an object per request.

    A run appends each request's body to one ``bytearray``, one body per line (the
    layout Arrow's JSON reader takes as it is, with no join), its outputs' bytes to one
    buffer per output, and its id, arrival and row count to arrays; the request's own
    objects are freed as soon as it is answered. The writer then makes the file's table
    from a few buffers instead of walking thousands of objects with the interpreter
    held. For a file of 2,000 single-row Adult requests (``python
    benchmarks/bench_prediction_log.py --rounds 9``, medians), against a chunk per
    request: the longest wait of another thread for the interpreter 1.4 ms instead of
    3.7 (some rounds still see 5–7 ms), the writer's work 5.8 µs a request instead of
    10.4, the memory held 423 bytes a request instead of 657; the event loop's part is
    dearer, 6.6 µs instead of 3.6 (the outputs are copied and checked). It makes the
    same table as the run's requests kept as chunks would (:meth:`chunks`, also the
    fallback where Arrow cannot read the bodies as the server did).

    Only requests with the same model, version, shadow flag, body schema and output
    signature (names, dtypes, trailing shapes) share a run: :meth:`add` refuses others.

    Example:
        >>> outputs = {"score": np.array([0.25])}
        >>> run = BodyRun("income", 1, False, rows_schema({"age": "float32"}), None, outputs)
        >>> body = b'{"instances": [{"age": 39}]}'
        >>> run.add("income", 1, False, run.schema, "r1", 1_795_392_000 * 10**9, 1, body, outputs)
        True
        >>> log_items_table([run]).column("age").to_pylist()
        [39.0]
    """

    __slots__ = (
        "bodies",
        "decode",
        "dtypes",
        "ends",
        "model",
        "names",
        "request_ids",
        "row_counts",
        "rows",
        "schema",
        "shadow",
        "sinks",
        "tails",
        "times",
        "version",
    )

    def __init__(
        self,
        model: str,
        version: int,
        shadow: bool,
        schema: pa.Schema,
        decode: Callable[[bytes], Mapping[str, Any]] | None,
        outputs: Mapping[str, np.ndarray[Any, Any]],
    ) -> None:
        self.model = model
        self.version = version
        self.shadow = shadow
        self.schema = schema
        self.decode = decode
        self.names = tuple(outputs)
        self.dtypes = tuple(v.dtype for v in outputs.values())
        self.tails = tuple(v.shape[1:] for v in outputs.values())
        self.bodies = bytearray()
        self.ends = array("q")  # where each body's line ends (its newline excluded)
        self.request_ids: list[str] = []
        self.times = array("q")  # arrival, nanoseconds since the epoch
        self.row_counts = array("q")
        self.rows = 0
        # Per output: its bytes (fixed-width dtypes) or its values (Python objects: text).
        self.sinks: list[bytearray | list[Any]] = [
            [] if dtype.kind == "O" else bytearray() for dtype in self.dtypes
        ]

    @property
    def requests(self) -> int:
        """How many requests the run holds."""
        return len(self.ends)

    def add(
        self,
        model: str,
        version: int,
        shadow: bool,
        schema: pa.Schema,
        request_id: str,
        time_ns: int,
        rows: int,
        body: bytes,
        outputs: Mapping[str, np.ndarray[Any, Any]],
    ) -> bool:
        """Append one request (its body, outputs' values and fields) when its model,
        version, shadow flag, schema and output signature are the run's; else False and
        nothing is added. The event loop calls this once per logged request."""
        if (
            version != self.version
            or model != self.model
            or shadow != self.shadow
            or schema is not self.schema
            or len(outputs) != len(self.dtypes)
        ):
            return False
        values = outputs.values()
        for value, dtype, tail in zip(values, self.dtypes, self.tails, strict=False):
            # A dtype is mostly the same object (numpy keeps one per built-in type).
            if (value.dtype is not dtype and value.dtype != dtype) or value.shape[1:] != tail:
                return False
        if tuple(outputs) != self.names:
            return False
        bodies = self.bodies
        bodies += body
        self.ends.append(len(bodies))
        bodies += b"\n"  # a newline inside a body is made a space when the run is read
        self.request_ids.append(request_id)
        self.times.append(time_ns)
        self.row_counts.append(rows)
        self.rows += rows
        for value, sink in zip(values, self.sinks, strict=True):
            if type(sink) is bytearray:
                try:
                    sink += value.data
                except TypeError:  # a view that is not contiguous
                    sink += value.tobytes()
            else:
                sink.extend(value.tolist())
        return True

    @property
    def timestamp(self) -> datetime:
        """When the run's first request arrived."""
        return _EPOCH + timedelta(microseconds=self.times[0] // 1000)

    def _outputs(self) -> list[np.ndarray[Any, Any] | list[Any]]:
        out: list[np.ndarray[Any, Any] | list[Any]] = []
        for dtype, tail, sink in zip(self.dtypes, self.tails, self.sinks, strict=True):
            if isinstance(sink, bytearray):
                out.append(np.frombuffer(sink, dtype=dtype).reshape(-1, *tail))
            else:
                out.append(sink)
        return out

    def _lines(self) -> bytes | bytearray:
        """The bodies one per line: newlines inside a body (whitespace between its tokens;
        JSON escapes those in strings) become spaces, here rather than on the event loop."""
        text = self.bodies
        if text.count(b"\n") == len(self.ends) and b"\r" not in text:
            return text
        lines = np.frombuffer(text.replace(b"\r", b" ").replace(b"\n", b" "), np.uint8).copy()
        lines[np.frombuffer(self.ends, dtype=np.int64)] = ord("\n")
        return lines.tobytes()

    def table(self) -> pa.Table | None:
        """The run's rows as the log's table, or None where Arrow's JSON reader cannot read
        the bodies exactly as the server did (then :meth:`chunks` can)."""
        counts = np.frombuffer(self.row_counts, dtype=np.int64)
        inputs = _read_lines(self._lines(), self.schema, counts)
        if inputs is None:
            return None
        total = self.rows
        ids = self.request_ids
        micros = np.frombuffer(self.times, dtype=np.int64) // 1000
        data: dict[str, pa.Array] = {
            REQUEST_ID: pa.array(ids, pa.string())
            if total == len(ids)
            else pa.array(np.repeat(np.array(ids, dtype=object), counts), pa.string()),
            TIMESTAMP: pa.array(np.repeat(micros, counts), pa.timestamp("us", tz="UTC")),
            MODEL: pa.repeat(pa.scalar(self.model, pa.string()), total),
            MODEL_VERSION: pa.repeat(pa.scalar(self.version, pa.int64()), total),
            SHADOW: pa.repeat(pa.scalar(self.shadow, pa.bool_()), total),
            **inputs,
        }
        for name, values in zip(self.names, self._outputs(), strict=True):
            data[output_column(name)] = _column([values])
        return pa.table(data)

    def chunks(self) -> list[LogChunk]:
        """The run as one :class:`LogChunk` per request, as the server would have kept it."""
        out: list[LogChunk] = []
        outputs = self._outputs()
        start = offset = 0
        for i, end in enumerate(self.ends):
            rows = self.row_counts[i]
            out.append(
                LogChunk(
                    model=self.model,
                    version=self.version,
                    request_id=self.request_ids[i],
                    timestamp=_EPOCH + timedelta(microseconds=self.times[i] // 1000),
                    columns={},
                    outputs={
                        name: values[offset : offset + rows]
                        if isinstance(values, np.ndarray)
                        else np.array(values[offset : offset + rows], dtype=object)
                        for name, values in zip(self.names, outputs, strict=True)
                    },
                    rows=rows,
                    shadow=self.shadow,
                    body=bytes(self.bodies[start:end]),
                    schema=self.schema,
                    decode=self.decode,
                )
            )
            start, offset = end + 1, offset + rows
        return out


def log_items_table(items: Sequence[LogChunk | BodyRun]) -> pa.Table:
    """The log's table of buffered chunks and runs, in order.

    Runs whose bodies Arrow reads make their tables directly; the rest (and everything,
    where the parts' columns differ) goes through :func:`log_chunks_table`.
    """
    parts: list[pa.Table] = []
    pending: list[LogChunk] = []
    for item in items:
        if isinstance(item, LogChunk):
            pending.append(item)
            continue
        table = item.table()
        if table is None:
            pending.extend(item.chunks())
            continue
        if pending:
            parts.append(log_chunks_table(pending))
            pending = []
        parts.append(table)
    if pending:
        parts.append(log_chunks_table(pending))
    if len(parts) == 1:
        return parts[0]
    if all(p.schema == parts[0].schema for p in parts):
        return pa.concat_tables(parts)
    chunks = [
        c for item in items for c in ((item,) if isinstance(item, LogChunk) else item.chunks())
    ]
    return log_chunks_table(chunks)


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


def write_log_chunks(url: str, chunks: Sequence[LogChunk | BodyRun]) -> str:
    """Write ``chunks`` (and runs) as one new Parquet file (see :func:`write_log_file`);
    its path."""
    table = log_items_table(chunks)
    return write_log_table(url, table, chunks[0].timestamp)
