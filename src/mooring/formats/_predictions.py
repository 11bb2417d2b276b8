"""The prediction log: its layout, its columns, its one writer and its one reader.

The server writes sampled requests as Parquet files under
``<log url>/date=YYYY-MM-DD/part-<epoch ms>-<random>.parquet`` with columns
``request_id`` (the id the server gave the request: its ``X-Request-Id`` answer header,
what label feedback joins on), ``timestamp`` (UTC), ``model``, ``model_version``,
``shadow`` (true on the rows of a shadow version's copy of a request; files written
before it read as false), ``client_request_id`` (the ``X-Request-Id`` the client sent,
when it sent a plain token; else null; files written before it have no such column, and
read together with newer files it reads as null), ``contract_violations`` (the inputs
whose value in the row lies outside the version's contract and was served anyway: a
number outside its range, a text outside its domain; null where every value was
inside, and in files written before it), one column per input feature and
``output.<name>`` per model output.
Monitoring (drift, live quality, guardrails, the shadow report) and the pipeline's
replay read it back with :func:`read_prediction_log`, which leaves shadow rows out
unless asked for them: they were never answers. A window is the last ``N`` rows, the
rows since a time, or both; files are read newest first and reading stops once the
window is full, so a short window over a long log costs only the newest files.

Beside the files, the server's writer keeps an index of request ids
(:class:`RequestIndex`): ``date=YYYY-MM-DD/_ids-<epoch ms>-<random>.arrow``, an Arrow
file of (log file name, 64-bit key of a request id) for up to :data:`INDEX_FILES` of the
files it wrote that day. :func:`request_rows` reads a day's index files and then only
the log files that may hold the request (a key matched) or that no index covers (files
written since a writer's last index file, or by other writers); a leading ``_`` keeps
the index out of Parquet dataset readers, and the log's own readers list ``*.parquet``.

Examples:
    >>> table = read_prediction_log(".mooring/predictions", "income", last=5000)  # doctest: +SKIP
    >>> outputs = output_table(table)  # output.score / output.class columns  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping, MutableSequence, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from mooring.errors import DataError, NotFoundError, UsageError
from mooring.formats._files import atomic_write_url

__all__ = [
    "CLIENT_REQUEST_ID",
    "CONTRACT_VIOLATIONS",
    "INDEX_FILES",
    "LOG_COLUMNS",
    "MODEL",
    "MODEL_VERSION",
    "OUTPUT_PREFIX",
    "REQUEST_ID",
    "REQUEST_ID_PATTERN",
    "SHADOW",
    "TIMESTAMP",
    "VIOLATIONS_TYPE",
    "RequestIndex",
    "append_request_rows",
    "feature_table",
    "find_request_ids",
    "log_files",
    "log_rows_table",
    "output_column",
    "output_table",
    "outputs_from_arrays",
    "read_log_file",
    "read_prediction_log",
    "request_key",
    "request_rows",
    "write_log_file",
    "write_log_table",
]

REQUEST_ID = "request_id"
TIMESTAMP = "timestamp"
MODEL = "model"
MODEL_VERSION = "model_version"
#: True on a shadow version's rows (its copy of a request production answered).
SHADOW = "shadow"
#: The X-Request-Id the client sent (null where it sent none, or not a plain token). Never
#: what labels join on: that is :data:`REQUEST_ID`, the server's own.
CLIENT_REQUEST_ID = "client_request_id"
#: Per row, the inputs whose value lay outside the contract (null: none did).
CONTRACT_VIOLATIONS = "contract_violations"
VIOLATIONS_TYPE = pa.list_(pa.string())
#: Columns the log adds around the features and outputs.
LOG_COLUMNS = (
    REQUEST_ID,
    TIMESTAMP,
    MODEL,
    MODEL_VERSION,
    SHADOW,
    CLIENT_REQUEST_ID,
    CONTRACT_VIOLATIONS,
)
#: What a request id may look like: the X-Request-Id the server answers with and logs, and
#: the one a client may send (kept beside it as :data:`CLIENT_REQUEST_ID`).
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Each model output ``name`` is logged as the column ``output.<name>``.
OUTPUT_PREFIX = "output."
_DATE_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
#: An index file of request ids covers at most this many log files of one day and writer.
INDEX_FILES = 64
_INDEX_PREFIX = "_ids-"
_INDEX_SUFFIX = ".arrow"


def output_column(name: str) -> str:
    """The log column of model output ``name`` (``probabilities`` → ``output.probabilities``)."""
    return f"{OUTPUT_PREFIX}{name}"


# -- writing ---------------------------------------------------------------------------


def append_request_rows(
    rows_out: MutableSequence[dict[str, Any]],
    *,
    model: str,
    version: int,
    request_id: str,
    timestamp: datetime,
    columns: Mapping[str, Any],
    outputs: Mapping[str, Any],
    rows: int,
    shadow: bool = False,
    client_request_id: str | None = None,
) -> None:
    """Append one request's ``rows`` log rows (inputs, outputs and log columns) to ``rows_out``.

    ``shadow``: the rows are a shadow version's outputs for the request, not its answer.
    ``client_request_id``: the X-Request-Id the client sent, if any. Make the rows a table
    with :func:`log_rows_table` (``contract_violations`` null: the server's own writer
    records them, :mod:`mooring.formats._log_chunks`).
    """
    cols = {k: v if type(v) is list else v.tolist() for k, v in columns.items()}
    outs = {output_column(k): v.tolist() for k, v in outputs.items()}
    for i in range(rows):
        row: dict[str, Any] = {
            REQUEST_ID: request_id,
            TIMESTAMP: timestamp,
            MODEL: model,
            MODEL_VERSION: version,
            SHADOW: shadow,
            CLIENT_REQUEST_ID: client_request_id,
            CONTRACT_VIOLATIONS: None,
        }
        row.update({k: v[i] for k, v in cols.items()})
        row.update({k: v[i] for k, v in outs.items()})
        rows_out.append(row)


def write_log_file(url: str, batch: list[dict[str, Any]]) -> str:
    """Write rows made by :func:`append_request_rows` as one new Parquet file; its path.

    The file goes to the date folder of the batch's first row. It appears whole or
    not at all (:func:`~mooring.formats._files.atomic_write_url`): a reader scanning the
    log while the server writes, or after the server was killed mid-write, never
    meets a half-written file.
    """
    return write_log_table(url, log_rows_table(batch), batch[0][TIMESTAMP])


def log_rows_table(batch: list[dict[str, Any]]) -> pa.Table:
    """The table of rows made by :func:`append_request_rows` (``client_request_id`` text
    and ``contract_violations`` lists of text, even where no row has one).

    Examples:
        >>> rows: list[dict[str, Any]] = []
        >>> append_request_rows(rows, model="m", version=1, request_id="r1",
        ...                     timestamp=datetime(2026, 1, 1, tzinfo=UTC), columns={},
        ...                     outputs={}, rows=1)
        >>> log_rows_table(rows).schema.field("client_request_id").type
        DataType(string)
    """
    table = pa.Table.from_pylist(batch)
    for name, arrow_type in (
        (CLIENT_REQUEST_ID, pa.string()),
        (CONTRACT_VIOLATIONS, VIOLATIONS_TYPE),
    ):
        index = table.schema.get_field_index(name)
        if index >= 0 and pa.types.is_null(table.schema.field(index).type):
            table = table.set_column(index, name, pa.nulls(table.num_rows, arrow_type))
    return table


def write_log_table(url: str, table: pa.Table, first: datetime) -> str:
    """Write a log table as one new Parquet file in the date folder of ``first``; its path
    (whole or not at all, see :func:`write_log_file`)."""
    day = first.strftime("%Y-%m-%d")
    stamp = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
    name = f"{url.rstrip('/')}/date={day}/part-{stamp}.parquet"
    sink = pa.BufferOutputStream()
    # Dictionaries for text (few distinct values; numbers and request ids rarely repeat) and
    # statistics for the log's own columns only (what a reader filters on): the rest cost
    # the writer time and files space for nothing a reader uses.
    ids = (REQUEST_ID, CLIENT_REQUEST_ID)
    text = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name not in ids]
    stats = [c for c in (TIMESTAMP, MODEL, MODEL_VERSION, SHADOW) if c in table.column_names]
    pq.write_table(table, sink, use_dictionary=text, write_statistics=stats)
    return atomic_write_url(name, sink.getvalue().to_pybytes())


def request_key(request_id: str) -> int:
    """The 64-bit key the index keeps of a request id (BLAKE2b of its UTF-8 text).

    Two ids share a key with odds of about 2**-64 per pair; a shared key costs only a
    read of a file that turns out not to hold the request.

    Examples:
        >>> request_key("3f9c") == request_key("3f9c") != request_key("3f9d")
        True
    """
    digest = hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class RequestIndex:
    """One writer's index of the request ids in the log files it writes under ``url``.

    :meth:`add` takes each file written, with its requests' ids; an index file is written
    for every :data:`INDEX_FILES` files of a day (or at a new day, or :meth:`flush`, when
    the writer stops). Until then those files are read directly by
    :func:`request_rows`, so a writer that dies loses no lookup, only its speed.

    Examples:
        >>> index = RequestIndex(".mooring/predictions")
        >>> index.add(".mooring/predictions/date=2026-11-20/part-1-ab.parquet", ["r1", "r2"])
        >>> index.flush()  # doctest: +SKIP
        '.mooring/predictions/date=2026-11-20/_ids-1763596800000-5e1f.arrow'
    """

    def __init__(self, url: str, *, files: int = INDEX_FILES) -> None:
        self.url = url.rstrip("/")
        self.files = files
        self._day: str | None = None
        self._names: list[str] = []
        self._keys: list[int] = []
        self._counts: list[int] = []

    def add(self, path: str, request_ids: Sequence[str]) -> str | None:
        """Index the log file ``path`` (as :func:`write_log_table` returned it) holding
        ``request_ids``; the index file written, if this file completed one."""
        match = _DATE_DIR.search(path)
        day = match.group(1) if match else ""
        written = self.flush() if self._names and day != self._day else None
        self._day = day
        self._names.append(path.rsplit("/", 1)[-1])
        self._keys.extend(request_key(r) for r in request_ids)
        self._counts.append(len(request_ids))
        if len(self._names) >= self.files:
            written = self.flush()
        return written

    def flush(self) -> str | None:
        """Write the index file of the files added since the last one; its path (None:
        nothing to write)."""
        if not self._names:
            return None
        table = pa.table(
            {
                "file": pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(np.arange(len(self._names)), self._counts), pa.int32()),
                    pa.array(self._names, pa.string()),
                ),
                "key": pa.array(self._keys, pa.uint64()),
            }
        )
        folder = f"{self.url}/date={self._day}" if self._day else self.url
        stamp = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._names, self._keys, self._counts = [], [], []
        return atomic_write_url(
            f"{folder}/{_INDEX_PREFIX}{stamp}{_INDEX_SUFFIX}", sink.getvalue().to_pybytes()
        )


# -- reading ---------------------------------------------------------------------------


def _files(url: str) -> list[tuple[str, str]]:
    """(date, path) of every Parquet file under ``url``, newest first."""
    return _listing(url)[0]


def _listing(url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(date, path) of every Parquet file under ``url``, newest first, and of every index
    file of request ids (:class:`RequestIndex`)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        return [], []
    found: list[tuple[str, str]] = []
    indexes: list[tuple[str, str]] = []
    for path in fs.find(root):
        name = path.rsplit("/", 1)[-1]
        parquet = path.endswith(".parquet")
        if not parquet and not (name.startswith(_INDEX_PREFIX) and name.endswith(_INDEX_SUFFIX)):
            continue
        match = _DATE_DIR.search(path)
        (found if parquet else indexes).append((match.group(1) if match else "", path))
    # Names are date=DAY/part-<epoch ms>-<random>: the date, then the name, orders by time.
    found.sort(key=lambda item: (item[0], item[1].rsplit("/", 1)[-1]), reverse=True)

    def full(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(day, f"{fs.unstrip_protocol(p)}" if "://" in url else p) for day, p in items]

    return full(found), full(indexes)


def _read(path: str) -> pa.Table:
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    with fs.open(inner, "rb") as handle:
        try:
            schema = pq.read_schema(handle)
            # Text features read dictionary-encoded: a few distinct values, decoded once.
            text = [
                f.name for f in schema if pa.types.is_string(f.type) and f.name not in LOG_COLUMNS
            ]
            handle.seek(0)
            # ParquetFile, not read_table: no pyarrow.dataset (and pandas) import on the way.
            return pq.ParquetFile(handle, read_dictionary=text).read()
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"prediction log file '{path}' is not a readable Parquet file ({exc}); "
                "move it out of the log folder (the server writes whole files only)"
            ) from exc


def log_files(url: str, *, since: datetime | None = None) -> list[str]:
    """The log's Parquet files, oldest first; with ``since``, only days from its date on.

    Examples:
        >>> log_files(".mooring/predictions")  # doctest: +SKIP
        ['.mooring/predictions/date=2026-11-20/part-1763596800000-ab12.parquet', ...]
    """
    since_day = since.astimezone(UTC).strftime("%Y-%m-%d") if since is not None else None
    return [
        path
        for day, path in reversed(_files(url))
        if since_day is None or not day or day >= since_day
    ]


def read_log_file(
    path: str,
    model: str,
    *,
    version: int | None = None,
    since: datetime | None = None,
    shadow: bool = False,
) -> pa.Table:
    """One log file's rows of ``model`` (and ``version``), answers or shadow rows, since a time.

    Raises:
        DataError: the file is not a prediction log file.
    """
    import pyarrow.compute as pc  # on first use: the server's start does without it

    table = _read(path)
    missing = [c for c in (TIMESTAMP, MODEL, MODEL_VERSION) if c not in table.column_names]
    if missing:
        raise DataError(
            f"'{path}' is not a prediction log file (no {', '.join(missing)} column); "
            "keep only files written by `mooring serve` in the log folder"
        )
    mask = pc.equal(table[MODEL], model)
    if version is not None:
        mask = pc.and_(mask, pc.equal(table[MODEL_VERSION], version))
    if SHADOW in table.column_names:
        marked = pc.fill_null(table[SHADOW], False)
        mask = pc.and_(mask, marked if shadow else pc.invert(marked))
    elif shadow:  # written before shadow traffic existed: answers only
        mask = pc.and_(mask, pa.scalar(False))
    if since is not None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        ts = table[TIMESTAMP]
        if ts.type.tz is None:
            ts = pc.assume_timezone(ts, "UTC")
        mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(since, ts.type)))
    return table.filter(mask)


def read_prediction_log(
    url: str,
    model: str,
    *,
    version: int | None = None,
    last: int | None = None,
    since: datetime | None = None,
    shadow: bool = False,
) -> pa.Table:
    """The logged rows of ``model`` (optionally one version) in a window, oldest first.

    Only the answers clients got, unless ``shadow=True``: then only the rows a shadow
    version computed for its copies of requests.

    Args:
        url: the log folder (``[serving] log_url``, default ``<home>/predictions``).
        model: model name; rows of other models are left out.
        version: only rows served by this version.
        last: at most this many rows, the newest.
        since: only rows logged at or after this time (a naive time is taken as UTC).
        shadow: read the shadow rows instead of the answers.

    Raises:
        UsageError: ``last`` is not positive.
        NotFoundError: the log holds no file at all.
        DataError: a file is not a prediction log file.

    Examples:
        >>> read_prediction_log("/srv/.mooring/predictions", "income", last=10000)  # doctest: +SKIP
    """
    import pyarrow.compute as pc  # on first use: the server's start does without it

    if last is not None and last < 1:
        raise UsageError(f"last must be a positive number of rows, got {last}; e.g. --last 5000")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    files = _files(url)
    if not files:
        raise NotFoundError(
            f"the prediction log '{url}' holds no Parquet file; set [serving] log_sample_rate "
            "above 0 and send traffic, or point [serving] log_url at the log"
        )
    parts: list[pa.Table] = []
    rows = 0
    since_day = since.astimezone(UTC).strftime("%Y-%m-%d") if since is not None else None
    for day, path in files:
        if since_day is not None and day and day < since_day:
            break
        table = read_log_file(path, model, version=version, since=since, shadow=shadow)
        if table.num_rows:
            parts.append(table)
            rows += table.num_rows
        if last is not None and rows >= last:
            break
    if not parts:
        schema = _read(files[0][1]).schema
        return schema.empty_table()
    parts.reverse()
    table = pa.concat_tables(parts, promote_options="permissive")
    order = pc.sort_indices(table, sort_keys=[(TIMESTAMP, "ascending")])
    table = table.take(order)
    if last is not None and table.num_rows > last:
        table = table.slice(table.num_rows - last)
    return table


def find_request_ids(url: str, model: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the log holds as ``model``'s answers, at any time and version.

    Reads only the id, model and shadow columns, files newest first, and stops once every
    id is found: a label whose request is in the log but outside a window is told apart
    from one whose request id the log never held. No log file at all: none is held.

    Raises:
        DataError: a file is not a readable Parquet file.
    """
    import pyarrow.compute as pc  # on first use: the server's start does without it

    wanted = set(ids)
    found: set[str] = set()
    for _, path in _files(url) if wanted else []:
        table = _read_columns(path, (REQUEST_ID, MODEL, SHADOW))
        if REQUEST_ID not in table.column_names or MODEL not in table.column_names:
            continue  # not a log file: read_prediction_log says so
        mask = pc.equal(table[MODEL], model)
        if SHADOW in table.column_names:
            mask = pc.and_(mask, pc.invert(pc.fill_null(table[SHADOW], False)))
        candidates = table[REQUEST_ID].filter(mask)
        pending = pa.array(sorted(wanted - found), type=candidates.type)
        hits = candidates.filter(pc.is_in(candidates, value_set=pending))
        found.update(str(v) for v in hits.to_pylist() if v is not None)
        if found == wanted:
            break
    return found


def request_rows(url: str, model: str, request_id: str) -> pa.Table:
    """The rows ``model`` answered to the request ``request_id`` (its ``X-Request-Id``),
    from the newest file holding it: inputs, outputs and log columns, as logged.

    Day by day, newest first: the day's index files (:class:`RequestIndex`) name the log
    files that may hold the request; of those, and of the files no index covers, the id,
    model and shadow columns are read, newest first, and the whole of the one file that
    holds the request. A request absent from the log reads every index file and the
    uncovered files, not every log file.

    Raises:
        NotFoundError: the log does not hold the request (not sampled, another model's,
            or older than the log).
        DataError: a file is not a readable Parquet file.

    Examples:
        >>> request_rows(".mooring/predictions", "income", "3f9c…").num_rows  # doctest: +SKIP
        1
    """
    import pyarrow.compute as pc

    def answered(table: pa.Table) -> Any:
        mask = pc.and_(pc.equal(table[MODEL], model), pc.equal(table[REQUEST_ID], request_id))
        if SHADOW in table.column_names:
            mask = pc.and_(mask, pc.invert(pc.fill_null(table[SHADOW], False)))
        return mask

    for path in _candidates(url, request_id):
        ids = _read_columns(path, (REQUEST_ID, MODEL, SHADOW))
        known = REQUEST_ID in ids.column_names and MODEL in ids.column_names
        if known and pc.any(answered(ids)).as_py():
            table = _read(path)
            return table.filter(answered(table))
    raise NotFoundError(
        f"the prediction log under '{url}' holds no answer of model '{model}' to request "
        f"{request_id!r}; check the id (the X-Request-Id the server answered with) and the "
        "model, and that [serving] log_sample_rate logged it"
    )


def _candidates(url: str, request_id: str) -> Iterator[str]:
    """The log files that may hold ``request_id``, day by day, newest first: those whose
    index holds its key, and those no index covers (each day's index read only once the
    newer days' candidates were read)."""
    files, indexes = _listing(url)
    by_day: dict[str, list[str]] = {}
    for day, path in indexes:
        by_day.setdefault(day, []).append(path)
    key = request_key(request_id)
    day_of_files: str | None = None
    covered: set[str] = set()
    hits: set[str] = set()
    for day, path in files:
        if day != day_of_files:  # files come grouped by day: read that day's index once
            day_of_files = day
            covered, hits = _indexed(by_day.get(day, []), key)
        name = path.rsplit("/", 1)[-1]
        if name in hits or name not in covered:
            yield path


def _indexed(paths: Sequence[str], key: int) -> tuple[set[str], set[str]]:
    """The log file names that index files ``paths`` cover, and those holding ``key``.
    An index file that cannot be read covers nothing (its files are then read)."""
    import fsspec
    import pyarrow.compute as pc

    covered: set[str] = set()
    hits: set[str] = set()
    for path in paths:
        fs, inner = fsspec.core.url_to_fs(path)
        try:
            with fs.open(inner, "rb") as handle:
                table = pa.ipc.open_file(handle).read_all()
            files = table["file"].combine_chunks()
            names = files.dictionary.to_pylist()
            found = pc.equal(table["key"].combine_chunks(), pa.scalar(key, pa.uint64()))
            positions = files.indices.filter(found)
        except (pa.ArrowInvalid, OSError, KeyError, AttributeError, TypeError):
            continue
        covered.update(names)
        hits.update(names[i] for i in positions.to_pylist())
    return covered, hits


def _read_columns(path: str, names: Sequence[str]) -> pa.Table:
    """Only the columns ``names`` a log file has (any of them may be missing)."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    with fs.open(inner, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            present = [n for n in names if n in parquet.schema_arrow.names]
            return parquet.read(columns=present)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"prediction log file '{path}' is not a readable Parquet file ({exc}); "
                "move it out of the log folder (the server writes whole files only)"
            ) from exc


def feature_table(table: pa.Table, names: list[str] | None = None) -> pa.Table:
    """The input feature columns of logged rows (log and ``output.*`` columns left out).

    The server logs a missing string as ``""``; compute statistics of this table with
    ``mooring.monitoring.LOG_READ_OPTIONS`` so that ``""`` counts as missing again.

    Examples:
        >>> t = pa.table({"request_id": ["a"], "sex": [""], "output.classes": ["x"]})
        >>> feature_table(t).column_names
        ['sex']
    """
    keep = [
        c
        for c in table.column_names
        if c not in LOG_COLUMNS
        and not c.startswith(OUTPUT_PREFIX)
        and (names is None or c in names)
    ]
    return table.select(keep)


def _probabilities(column: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    array = column.combine_chunks()
    if array.null_count == 0 and len(array):
        flat = np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
        if flat.size % len(array) == 0:
            return flat.reshape(len(array), flat.size // len(array))
    rows = array.to_pylist()
    width = max((len(r) for r in rows if r is not None), default=1)
    return np.array([r if r is not None else [np.nan] * width for r in rows], dtype=np.float64)


def output_table(table: pa.Table) -> pa.Table:
    """The model's outputs as drift-ready columns.

    Classifiers give ``output.class`` (the predicted class) and ``output.score`` (binary:
    the positive-class probability; multiclass: the top-label confidence); regressors
    give ``output.value``. The same shape comes from :func:`outputs_from_arrays`.

    Examples:
        >>> t = pa.table({"output.probabilities": [[0.8, 0.2]], "output.classes": ["<=50K"]})
        >>> output_table(t).to_pydict()
        {'output.score': [0.2], 'output.class': ['<=50K']}
    """
    import pyarrow.compute as pc  # on first use: the server's start does without it

    names = table.column_names
    logged_probabilities = output_column("probabilities")
    logged_values = output_column("value")
    logged_classes = output_column("classes")
    probabilities = (
        _probabilities(table[logged_probabilities]) if logged_probabilities in names else None
    )
    data = outputs_from_arrays(
        probabilities=probabilities,
        values=(
            np.asarray(table[logged_values].to_numpy(zero_copy_only=False))
            if logged_values in names
            else None
        ),
    )
    if logged_classes in names:
        # Classes are logged as bytes (TensorFlow strings); the cast decodes them as UTF-8.
        data = data.append_column(
            output_column("class"), pc.cast(table[logged_classes], pa.string())
        )
    return data


def outputs_from_arrays(
    *,
    probabilities: npt.NDArray[Any] | None = None,
    classes: Sequence[Any] | npt.NDArray[Any] | None = None,
    values: npt.NDArray[Any] | None = None,
) -> pa.Table:
    """Drift-ready output columns from prediction arrays (the log's, or the evaluation's)."""
    data: dict[str, pa.Array] = {}
    if probabilities is not None and probabilities.size:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.ndim == 1:
            score = proba
        elif proba.shape[1] == 2:
            score = proba[:, 1]
        else:
            score = proba.max(axis=1)
        data[output_column("score")] = pa.array(score, pa.float64())
    if classes is not None:
        data[output_column("class")] = pa.array(
            [
                c.decode() if isinstance(c, bytes) else (None if c is None else str(c))
                for c in classes
            ],
            pa.string(),
        )
    if values is not None:
        data[output_column("value")] = pa.array(np.asarray(values, dtype=np.float64).reshape(-1))
    return pa.table(data)
