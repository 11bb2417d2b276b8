"""The server's buffered log chunks (:class:`LogChunk`) turned into the log's Arrow table.

The prediction log's layout, columns, file writer and reader are
:mod:`mooring.formats._predictions`; this module is how the serving process's writer
thread assembles many chunks into one file's table, column by column. A chunk is what
the server logs in one append: the rows of one batch (every logged request the batch
ran, as the model got them) or of one request. Its columns are the batch's own merged
columns and outputs, so the event loop copies nothing per request. A chunk of at least
:data:`ARROW_ROWS` rows has its text and float columns made Arrow arrays as it is
buffered (:func:`arrow_columns`); the writer turns the rest into Arrow in one pass over
the file's chunks and joins it with those.

Examples:
    >>> chunk = LogChunk(model="income", version=1, request_ids=["r1", "r2"], counts=[1, 1],
    ...                  timestamp=datetime(2026, 11, 23, tzinfo=UTC),
    ...                  columns={"age": [39.0, 52.0]}, outputs={"score": np.array([0.2, 0.7])},
    ...                  rows=2)
    >>> table = log_chunks_table([chunk])
    >>> table.column_names  # doctest: +NORMALIZE_WHITESPACE
    ['request_id', 'timestamp', 'model', 'model_version', 'shadow', 'client_request_id',
     'contract_violations', 'age', 'output.score']
    >>> table.column("request_id").to_pylist()
    ['r1', 'r2']
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.errors import DataError
from mooring.formats._predictions import (
    CLIENT_REQUEST_ID,
    CONTRACT_VIOLATIONS,
    MODEL,
    MODEL_VERSION,
    REQUEST_ID,
    SHADOW,
    TIMESTAMP,
    VIOLATIONS_TYPE,
    output_column,
    write_log_table,
)

__all__ = ["ARROW_ROWS", "LogChunk", "arrow_columns", "log_chunks_table", "write_log_chunks"]

#: A chunk of at least this many rows is buffered with Arrow columns (:func:`arrow_columns`).
ARROW_ROWS = 128


@dataclass(slots=True)
class LogChunk:
    """The logged rows of one batch of requests (or of one request), as one append.

    ``request_ids[i]`` names the i-th request and ``counts[i]`` its rows (and
    ``client_request_ids[i]``, when given, the X-Request-Id its client sent, or None;
    ``client_request_ids`` None: no request's client sent one; ``violations[i]``, when
    given, per row of the i-th request the inputs outside the contract, or None for a
    request with none; ``violations`` None: no request had any); the requests' rows
    follow each other in ``columns`` (the model's inputs: lists or arrays, as the batch
    merged them, or Arrow arrays from :func:`arrow_columns`) and ``outputs`` (the
    model's outputs for those rows). ``rows`` is the sum of ``counts``. One ``timestamp``
    covers the chunk: its rows were predicted together. The file holds the same rows as
    :func:`append_request_rows` makes of each request. Nothing changes a chunk once it is
    buffered.
    """

    model: str
    version: int
    request_ids: Sequence[str]
    counts: Sequence[int]
    timestamp: datetime
    columns: Mapping[str, Any]
    outputs: Mapping[str, np.ndarray[Any, Any]]
    rows: int
    shadow: bool = False
    client_request_ids: Sequence[str | None] | None = None
    violations: Sequence[Sequence[list[str] | None] | None] | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The lists arrow_columns converts, by the type of their first value: the decoders give
# each column one kind of value (text as str, a float input's numbers as float).
_ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), float: pa.float64()}


def arrow_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A logged batch's columns with each list of text or floats made an Arrow array; any
    other column (an array, a list of other values) as it is, for the writer.

    The server calls this on the event loop as it buffers a chunk of at least
    :data:`ARROW_ROWS` rows, rather than leaving every list to the writer thread: the
    conversion holds the GIL wherever it runs, and done here it spares the writer the
    long GIL-held stretches that paused the loop. Below that size pyarrow's cost per call
    outweighs the gain, so smaller chunks are left to the writer, which converts a file's
    lists in one call a column (figures in ``benchmarks/bench_prediction_log.py``).

    Examples:
        >>> columns = arrow_columns({"sex": ["Male", "Female"], "age": [39.0, 52.0],
        ...                          "hours": np.array([40, 45])})
        >>> columns["sex"].type, columns["age"].type, type(columns["hours"]).__name__
        (DataType(string), DataType(double), 'ndarray')
    """
    out = dict(columns)
    for name, values in columns.items():
        if type(values) is not list or not values:
            continue
        arrow_type = _ARROW_TYPES.get(type(values[0]))
        if arrow_type is None:
            continue
        # Other values further on: left a list, the writer makes it as rows would.
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
            out[name] = pa.array(values, arrow_type)
    return out


def _column(parts: list[Any]) -> pa.Array:
    """One Arrow column from the chunks' parts (arrays or lists), as rows would make it.

    Lists (what the server's decoder leaves) go to Arrow in one pass with no numpy
    array in between: a list of strings through numpy is a fixed-width unicode array
    and back, several times the cost, with the GIL held, on the serving process.
    """
    if any(isinstance(part, pa.Array) for part in parts):
        return _with_arrow(parts)
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


def _with_arrow(parts: list[Any]) -> pa.Array:
    """A column some of whose parts are Arrow arrays already (:func:`arrow_columns`): each
    run of other parts made one array as before, then all joined; where their types
    differ, the values of all made into one column as rows would make it."""
    arrays: list[pa.Array] = []
    run: list[Any] = []
    for part in parts:
        if isinstance(part, pa.Array):
            if run:
                arrays.append(_column(run))
                run = []
            arrays.append(part)
        else:
            run.append(part)
    if run:
        arrays.append(_column(run))
    if len(arrays) == 1:
        return arrays[0]
    try:
        return pa.concat_arrays(arrays)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. floats beside integers
        return _column([list(chain.from_iterable(a.to_pylist() for a in arrays))])


def _same(values: list[Any], arrow_type: pa.DataType, lengths: list[int], total: int) -> pa.Array:
    """A log column that holds one value per chunk, repeated over its rows."""
    if all(v == values[0] for v in values):
        return pa.repeat(pa.scalar(values[0], arrow_type), total)
    return pa.array(np.repeat(np.array(values, dtype=object), lengths), arrow_type)


def _request_ids(chunks: Sequence[LogChunk], total: int) -> pa.Array:
    """Each row's request id: the i-th id of a chunk over its ``counts[i]`` rows."""
    ids = list(chain.from_iterable(c.request_ids for c in chunks))
    if len(ids) == total:  # one row a request: the common case, no repeat
        return pa.array(ids, pa.string())
    counts = np.fromiter(chain.from_iterable(c.counts for c in chunks), np.int64, len(ids))
    return pa.array(np.repeat(np.array(ids, dtype=object), counts), pa.string())


def _client_request_ids(chunks: Sequence[LogChunk], total: int) -> pa.Array:
    """Each row's client request id (null where its client sent none), as
    :func:`_request_ids` makes the server's."""
    if all(c.client_request_ids is None for c in chunks):  # the common case: all null
        return pa.nulls(total, pa.string())
    ids = list(
        chain.from_iterable(
            c.client_request_ids
            if c.client_request_ids is not None
            else [None] * len(c.request_ids)
            for c in chunks
        )
    )
    if len(ids) == total:
        return pa.array(ids, pa.string())
    counts = np.fromiter(chain.from_iterable(c.counts for c in chunks), np.int64, len(ids))
    return pa.array(np.repeat(np.array(ids, dtype=object), counts), pa.string())


def _violations(chunks: Sequence[LogChunk], total: int) -> pa.Array:
    """Each row's inputs outside the contract (null where none was)."""
    if all(c.violations is None for c in chunks):  # the common case: all null
        return pa.nulls(total, VIOLATIONS_TYPE)
    values: list[list[str] | None] = []
    for chunk in chunks:
        if chunk.violations is None:
            values.extend([None] * chunk.rows)
            continue
        for flags, count in zip(chunk.violations, chunk.counts, strict=True):
            values.extend([None] * count if flags is None else flags)
    return pa.array(values, VIOLATIONS_TYPE)


def log_chunks_table(chunks: Sequence[LogChunk]) -> pa.Table:
    """The log's table of ``chunks``, in order (the columns of :func:`append_request_rows`).

    Chunks with the same inputs and outputs (one version's batches) make each column in
    one pass; where they differ, a column a chunk lacks is null on its rows, as rows
    without that key would make it.
    """
    for chunk in chunks:
        if len(chunk.request_ids) != len(chunk.counts) or sum(chunk.counts) != chunk.rows:
            raise DataError(
                f"a log chunk of model {chunk.model!r} names {len(chunk.request_ids)} requests "
                f"with {list(chunk.counts)[:5]} rows each but holds {chunk.rows} rows"
            )
        clients = chunk.client_request_ids
        if clients is not None and len(clients) != len(chunk.request_ids):
            raise DataError(
                f"a log chunk of model {chunk.model!r} names {len(chunk.request_ids)} requests "
                f"but {len(clients)} client request ids"
            )
        flagged = chunk.violations
        if flagged is not None and [
            count if flags is None else len(flags)
            for flags, count in zip(flagged, chunk.counts, strict=False)
        ] != list(chunk.counts):
            raise DataError(
                f"a log chunk of model {chunk.model!r} holds {list(chunk.counts)[:5]} rows a "
                "request but contract violations for another number of rows or requests"
            )
    lengths = [c.rows for c in chunks]
    total = sum(lengths)
    micros = np.array([(c.timestamp - _EPOCH) // timedelta(microseconds=1) for c in chunks])
    data: dict[str, pa.Array] = {
        REQUEST_ID: _request_ids(chunks, total),
        TIMESTAMP: pa.array(np.repeat(micros, lengths), pa.timestamp("us", tz="UTC")),
        MODEL: _same([c.model for c in chunks], pa.string(), lengths, total),
        MODEL_VERSION: _same([c.version for c in chunks], pa.int64(), lengths, total),
        SHADOW: _same([c.shadow for c in chunks], pa.bool_(), lengths, total),
        CLIENT_REQUEST_ID: _client_request_ids(chunks, total),
        CONTRACT_VIOLATIONS: _violations(chunks, total),
    }
    first = chunks[0]
    uniform = all(
        c.columns.keys() == first.columns.keys() and c.outputs.keys() == first.outputs.keys()
        for c in chunks
    )
    for pick in ("columns", "outputs"):
        maps: list[Mapping[str, Any]] = [getattr(c, pick) for c in chunks]
        if uniform:
            for name in maps[0]:
                data[output_column(name) if pick == "outputs" else name] = _column(
                    [m[name] for m in maps]
                )
            continue
        for name in dict.fromkeys(n for m in maps for n in m):
            # Absent from some chunks: nulls on their rows, as rows without the key.
            values: list[Any] = []
            for m, c in zip(maps, chunks, strict=True):
                part = m.get(name)
                if part is None:
                    values.extend([None] * c.rows)
                elif isinstance(part, pa.Array):
                    values.extend(part.to_pylist())
                else:
                    values.extend(np.asarray(part).tolist())
            data[output_column(name) if pick == "outputs" else name] = pa.array(values)
    try:
        return pa.table(data)
    except pa.ArrowInvalid as exc:  # a column of a length other than its chunks' rows
        raise DataError(f"log chunks hold {total} rows, but {exc}") from exc


def write_log_chunks(url: str, chunks: Sequence[LogChunk]) -> str:
    """Write ``chunks`` as one new Parquet file (see :func:`write_log_file`); its path."""
    return write_log_table(url, log_chunks_table(chunks), chunks[0].timestamp)
