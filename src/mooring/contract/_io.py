"""Reading tabular data as a stream of Arrow record batches.

Sources: CSV (optionally compressed: ``.gz``, ``.bz2``, ``.zst``), Parquet, a pandas
DataFrame or an Arrow table, from a local path or any fsspec URL. Files are
streamed in record batches of about ``batch_mb`` so memory stays bounded however
large the file is. Every failure a user can cause becomes a
:class:`~mooring.errors.DataError` that names the file, the problem and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mooring.config._base import DEFAULT_NA_VALUES
from mooring.config._data import DataConfig
from mooring.contract._cleaning import DictionaryCache, clean_strings, is_text, is_text_dictionary
from mooring.errors import DataError, NotFoundError
from mooring.formats._files import is_url, open_binary

__all__ = [
    "ParquetPiece",
    "ReadOptions",
    "detect_delimiter",
    "iter_batches",
    "read_table",
    "source_name",
]


CSV_BLOCKS_PER_BATCH = 8
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
# Arrow names the row too when it converts serially (one CPU: a Ray task, a container).
_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'"
)
_OTHER_DELIMITERS = {";": "';'", "\t": "'\\t' (tab)", "|": "'|'", ",": "','"}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source. ``column_types`` forces Arrow types for named columns."""

    format: str = "auto"
    delimiter: str = ","
    header: bool = True
    na_values: tuple[str, ...] = DEFAULT_NA_VALUES
    trim_whitespace: bool = True
    batch_mb: float = 16.0
    column_types: Mapping[str, pa.DataType] = field(default_factory=dict)

    @classmethod
    def from_config(cls, data: DataConfig) -> ReadOptions:
        return cls(
            format=data.format,
            delimiter=data.delimiter,
            header=data.header,
            na_values=tuple(data.na_values),
            trim_whitespace=data.trim_whitespace,
            batch_mb=data.batch_mb,
        )

    def with_types(self, types: Mapping[str, pa.DataType]) -> ReadOptions:
        return replace(self, column_types={**self.column_types, **types})


@dataclass(frozen=True)
class ParquetPiece:
    """Some row groups of one Parquet file: a source of its own, read like the file.

    Large Parquet files are split into pieces so that several workers read one file.

    Examples:
        >>> ParquetPiece("part-0.parquet", (0, 1, 2))
        ParquetPiece(path='part-0.parquet', row_groups=(0, 1, 2))
    """

    path: str
    row_groups: tuple[int, ...]

    def __str__(self) -> str:
        first, last = self.row_groups[0], self.row_groups[-1]
        return f"{self.path} (row groups {first}–{last})"


class RetypeColumnError(Exception):
    """Internal: a column's inferred type did not hold for a later block; read it again."""

    def __init__(self, column: str, arrow_type: pa.DataType, value: str) -> None:
        super().__init__(column)
        self.column = column
        self.arrow_type = arrow_type
        self.value = value


def source_name(source: Any) -> str:
    """A short human-readable name for a source, for messages and reports."""
    if isinstance(source, str | Path | ParquetPiece):
        return str(source)
    return f"<{type(source).__name__}>"


def _detect_format(path: str, options: ReadOptions) -> str:
    if options.format != "auto":
        return options.format
    lowered = path.lower()
    for suffix in _COMPRESSED:
        lowered = lowered.removesuffix(suffix)
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def detect_delimiter(path: str | Path) -> str:
    """A CSV file's field separator: of ``','``, ``';'``, a tab and ``'|'``, the one that
    splits the header and the lines after it (up to 50, as the CSV reader reads quoted
    fields) into the most fields, the same number on every line; ``','`` on a tie or when
    none does (one column). A ``;`` file from a spreadsheet in a comma-decimal locale
    gives ``';'``; a Parquet file ``','``.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.csv").write_text("Alter;Betrag (€);Ergebnis\\n41;12,50;ja\\n")
        >>> detect_delimiter(folder / "a.csv")
        ';'
    """
    import csv
    import io

    name = str(path)
    if _detect_format(name, ReadOptions()) != "csv":
        return ","
    head = _sniff(name).decode("utf-8-sig", errors="replace")
    lines = head.splitlines()
    if len(lines) > 1 and not head.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line read is cut short
    text = "\n".join(lines[:50])

    def widths(delimiter: str) -> list[int]:
        rows = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [len(row) for row in rows if row]

    if not text:
        return ","
    best, most = ",", 1
    for delimiter in (",", ";", "\t", "|"):
        found = widths(delimiter)
        if found and found[0] > most and all(width == found[0] for width in found[1:]):
            best, most = delimiter, found[0]
    return best


def _check_exists(path: str) -> None:
    if is_url(path):
        return
    local = Path(path.removeprefix("file://"))
    if not local.exists():
        where = "" if local.is_absolute() else f" (relative to {Path.cwd()})"
        raise NotFoundError(
            f"data file '{path}' does not exist{where}; check the path, or the [data] paths "
            "in mooring.toml when it came from there"
        )
    if local.is_dir():
        raise DataError(f"'{path}' is a folder; point at a CSV or Parquet file")
    if local.stat().st_size == 0:
        raise DataError(f"'{path}' is empty (0 bytes); it needs a header row and data rows")


def _sniff(path: str) -> bytes:
    if is_url(path):
        with open_binary(path) as fh:
            return bytes(fh.read(8192))
    local = path.removeprefix("file://")
    if local.lower().endswith(_COMPRESSED):
        try:
            with open_binary(local) as fh:
                return bytes(fh.read(8192))
        except (OSError, EOFError) as exc:
            raise _compressed_error(path, exc) from None
    with open(local, "rb") as fh:
        return fh.read(8192)


def _compressed_error(path: str, exc: BaseException) -> DataError:
    """A compressed file that ends early or is not what its suffix says."""
    reason = str(exc)[:120] or type(exc).__name__
    return DataError(
        f"'{path}' is a truncated or corrupted compressed file ({reason}); "
        "copy it again in full, or check that its suffix names its compression"
    )


def _looks_binary(head: bytes) -> bool:
    """NUL bytes or mostly control characters: not text (a Parquet file, an archive)."""
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control > len(head) // 10


def _check_utf8(path: str, head: bytes) -> None:
    """Name the line of the first byte that is not UTF-8 (latin-1 exports are common)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:
            return  # a multi-byte character cut at the end of the sample
        line = head.count(b"\n", 0, exc.start) + 1
        bad = head[exc.start : exc.start + 1]
        raise DataError(
            f"'{path}' is not UTF-8 text: line {line} has the byte {bad!r}; re-encode it as "
            "UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def _csv_reader(
    path: str, options: ReadOptions, names: list[str] | None, dictionary: bool = False
) -> Any:
    read_opts = pacsv.ReadOptions(
        # Arrow's streaming reader keeps several blocks in flight ahead of the consumer,
        # so a block is a fraction of the budget to keep the whole window near batch_mb.
        block_size=max(1 << 16, int(options.batch_mb * (1 << 20) / CSV_BLOCKS_PER_BATCH)),
        column_names=names,
        skip_rows=1 if (names is not None and options.header) else 0,
        autogenerate_column_names=names is None and not options.header,
    )
    types = dict(options.column_types)
    if dictionary:
        # Columns known to be text are encoded as they are parsed, in the reader's threads:
        # cleaning and counting then touch each distinct value once per batch, not every row.
        types = {n: pa.dictionary(pa.int32(), t) if is_text(t) else t for n, t in types.items()}
    convert = pacsv.ConvertOptions(
        null_values=list(options.na_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        column_types=types,
    )
    parse = pacsv.ParseOptions(delimiter=options.delimiter, ignore_empty_lines=True)
    target = open_binary(path) if is_url(path) else path.removeprefix("file://")
    return pacsv.open_csv(
        target, read_options=read_opts, parse_options=parse, convert_options=convert
    )


def _delimiter_hint(header: str, options: ReadOptions) -> str | None:
    for candidate, shown in _OTHER_DELIMITERS.items():
        if candidate != options.delimiter and header.count(candidate) >= 1:
            return shown
    return None


def _csv_error(path: str, exc: Exception, options: ReadOptions) -> DataError:
    text = str(exc)
    if "Empty CSV file" in text:
        return DataError(f"'{path}' is empty; it needs a header row and data rows")
    if "Expected" in text and "columns" in text:
        short = text.split(":")[0:2]
        return DataError(
            f"'{path}' is not a consistent CSV ({':'.join(short).strip()}); every row needs the "
            f"same number of fields — check data.delimiter (now {options.delimiter!r}) and quoting"
        )
    if "UTF8" in text or "utf-8" in text.lower():
        return DataError(
            f"'{path}' is not UTF-8 text; re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        )
    if "straddling" in text:
        block = max(1 << 16, int(options.batch_mb * (1 << 20) / CSV_BLOCKS_PER_BATCH))
        return DataError(
            f"'{path}' has a field (or a row) longer than the reader's block of "
            f"{block / (1 << 20):.1f} MiB; raise [data] batch_mb (now {options.batch_mb:g}; the "
            f"block is batch_mb / {CSV_BLOCKS_PER_BATCH}) above {CSV_BLOCKS_PER_BATCH}× the "
            "longest row, or check the quoting (an unclosed quote makes one huge field)"
        )
    return DataError(f"'{path}' cannot be read as CSV: {text[:200]}")


def _header_names(head: bytes, options: ReadOptions) -> list[str]:
    import csv
    import io

    # utf-8-sig: a byte-order mark (spreadsheet exports write one) is not part of a name.
    first = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
    if not first:
        return []
    return next(csv.reader(io.StringIO(first[0]), delimiter=options.delimiter), [])


def _conversion_error(exc: Exception, names: list[str]) -> RetypeColumnError | None:
    match = _CONVERSION.search(str(exc))
    if not match or int(match.group(1)) >= len(names):
        return None
    value = match.group(3)
    new_type = pa.float64() if is_number(value) else pa.string()
    return RetypeColumnError(names[int(match.group(1))].strip(), new_type, value)


def _open_csv(
    path: str,
    options: ReadOptions,
    names: list[str] | None,
    header: list[str],
    dictionary: bool = False,
) -> Any:
    try:
        return _csv_reader(path, options, names, dictionary)
    except pa.ArrowInvalid as exc:
        retype = _conversion_error(exc, names or header)
        if retype is not None:
            raise retype from None
        raise _csv_error(path, exc, options) from None
    except (OSError, EOFError) as exc:
        if path.lower().endswith(_COMPRESSED):
            raise _compressed_error(path, exc) from None
        raise


def _iter_csv(
    path: str, options: ReadOptions, dictionary: bool = False
) -> Iterator[pa.RecordBatch]:
    head = _sniff(path)
    if _looks_binary(head):
        raise DataError(
            f"'{path}' does not look like delimited text (binary content); "
            "point [data] at a CSV or Parquet file"
        )
    _check_utf8(path, head)
    header = _header_names(head, options) if options.header else []
    stripped = [n.strip() for n in header] if options.trim_whitespace else header
    if options.header and len(set(stripped)) != len(stripped):
        dupes = sorted({n for n in stripped if stripped.count(n) > 1})
        raise DataError(f"'{path}' repeats column names {dupes}; column names must be unique")
    if options.header and len(stripped) == 1:
        hint = _delimiter_hint(stripped[0], options)
        if hint is not None:
            raise DataError(
                f"'{path}' has a single column named {stripped[0][:60]!r}; the delimiter looks "
                f"like {hint}, not {options.delimiter!r} — set [data] delimiter, or pass "
                f"--delimiter {hint} (init, stats, validate)"
            )
    # Read with the trimmed header names so forced column types apply by name.
    use_names = stripped if (options.header and stripped) else None
    reader = _open_csv(path, options, use_names, stripped, dictionary)
    names = list(reader.schema.names)
    cache: DictionaryCache = {}
    yielded = False
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            if not yielded:
                # A header-only file is an empty dataset, not an unreadable one.
                yield pa.RecordBatch.from_pylist([], schema=reader.schema)
            return
        except pa.ArrowInvalid as exc:
            retype = _conversion_error(exc, names)
            if retype is not None:
                raise retype from None
            raise _csv_error(path, exc, options) from None
        except (OSError, EOFError) as exc:
            if path.lower().endswith(_COMPRESSED):
                raise _compressed_error(path, exc) from None
            raise
        yielded = True
        yield clean_strings(batch, options, na_applied=True, cache=cache)


def is_number(text: str) -> bool:
    """True when ``float(text)`` parses (the CSV reader's test for a numeric token)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _open_parquet(path: str, **kwargs: Any) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(open_binary(path) if is_url(path) else path, **kwargs)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"'{path}' is not a readable Parquet file ({exc}); check the file"
        ) from None


def _dictionary_columns(file: pq.ParquetFile) -> list[str]:
    """Text columns stored dictionary-encoded in every row group (cheap to read as such)."""
    meta = file.metadata
    leaves = {file.schema.column(i).path: i for i in range(len(file.schema))}
    names = []
    for arrow_field in file.schema_arrow:
        leaf = leaves.get(arrow_field.name)
        if leaf is None or not is_text(arrow_field.type) or meta.num_row_groups == 0:
            continue
        groups = range(meta.num_row_groups)
        if all(meta.row_group(g).column(leaf).has_dictionary_page for g in groups):
            names.append(arrow_field.name)
    return names


def _iter_parquet(
    path: str, options: ReadOptions, dictionary: bool, row_groups: Sequence[int] | None = None
) -> Iterator[pa.RecordBatch]:
    file = _open_parquet(path)
    groups = list(row_groups) if row_groups is not None else None
    # Size batches by the decoded width of a sample: Parquet's encoded sizes can be
    # 20x smaller than the Arrow arrays they decode into.
    row_bytes = 100.0
    if file.metadata.num_rows:
        sample = next(file.iter_batches(batch_size=1024), None)
        if sample is not None and sample.num_rows:
            row_bytes = max(1.0, sample.nbytes / sample.num_rows)
    rows = max(1024, int(options.batch_mb * (1 << 20) / row_bytes))
    encoded = _dictionary_columns(file) if dictionary else []
    yielded = False
    if encoded:
        # Text read as dictionaries: trimming and na_values then touch each distinct value
        # once per batch instead of every row. The reader starts a new batch at each row
        # group; re-cut to the plain reader's boundaries so every result stays identical.
        pieces = _open_parquet(path, read_dictionary=encoded).iter_batches(
            batch_size=rows, row_groups=groups
        )
        cache: DictionaryCache = {}
        cleaned = (clean_strings(piece, options, cache=cache) for piece in pieces)
        batches = _rechunk(cleaned, rows)
    else:
        batches = (
            clean_strings(batch, options)
            for batch in file.iter_batches(batch_size=rows, row_groups=groups)
        )
    for batch in batches:
        yielded = True
        yield _cast_batch(batch, options, keep_dictionary=dictionary)
    if not yielded:
        yield pa.RecordBatch.from_pylist([], schema=file.schema_arrow)


def _rechunk(pieces: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last may be shorter) from pieces of any size."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for piece in pieces:
        while piece.num_rows:
            step = min(rows - have, piece.num_rows)
            pending.append(piece.slice(0, step) if step < piece.num_rows else piece)
            piece = piece.slice(step)
            have += step
            if have == rows:
                yield _concat_batches(pending)
                pending, have = [], 0
    if pending:
        yield _concat_batches(pending)


def _concat_batches(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    # Dictionaries that differ between parts are unified by concatenation.
    columns = [
        pa.concat_arrays([part.column(i) for part in parts]) for i in range(parts[0].num_columns)
    ]
    return pa.RecordBatch.from_arrays(columns, names=parts[0].schema.names)


def _cast_batch(
    batch: pa.RecordBatch, options: ReadOptions, *, keep_dictionary: bool = False
) -> pa.RecordBatch:
    """Apply forced column types to in-memory data; unconvertible columns become strings.

    ``keep_dictionary``: dictionary-encoded text stays encoded where strings are wanted.
    """
    if not options.column_types:
        return batch
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = options.column_types.get(name)
        if wanted is not None and column.type != wanted:
            if keep_dictionary and is_text(wanted) and is_text_dictionary(column.type):
                arrays.append(column)
                continue
            try:
                column = column.cast(wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _table_batches(table: pa.Table, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    row_bytes = max(1.0, table.nbytes / max(1, table.num_rows))
    rows = max(1024, int(options.batch_mb * (1 << 20) / row_bytes))
    batches = table.to_batches(max_chunksize=rows)
    if not batches:
        batches = [pa.RecordBatch.from_pylist([], schema=table.schema)]
    for batch in batches:
        yield _cast_batch(clean_strings(batch, options), options)


def iter_batches(
    source: Any, options: ReadOptions | None = None, *, dictionary: bool = False
) -> Iterator[pa.RecordBatch]:
    """Stream ``source`` as Arrow record batches.

    ``dictionary=True`` lets Parquet text columns stored dictionary-encoded, and CSV
    columns whose type ``column_types`` forces to text, arrive as
    ``dictionary<int32, string>`` arrays (trimmed, na_values applied), which is much
    cheaper to clean and summarise; the values row by row and the batch boundaries are
    the same as with plain strings.

    Examples:
        >>> import pyarrow as pa
        >>> batches = list(iter_batches(pa.table({"x": [1, 2, 3]})))
        >>> batches[0].num_rows
        3
    """
    options = options or ReadOptions()
    if isinstance(source, pa.Table):
        yield from _table_batches(source, options)
        return
    if isinstance(source, ParquetPiece):
        _check_exists(source.path)
        yield from _iter_parquet(source.path, options, dictionary, source.row_groups)
        return
    if isinstance(source, pa.RecordBatch):
        yield from _table_batches(pa.Table.from_batches([source]), options)
        return
    if isinstance(source, str | Path):
        path = str(source)
        _check_exists(path)
        if _detect_format(path, options) == "parquet" or _sniff(path)[:4] == b"PAR1":
            yield from _iter_parquet(path, options, dictionary)
        else:
            yield from _iter_csv(path, options, dictionary)
        return
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(
                f"DataFrame cannot be converted to Arrow ({exc}); give each column one type"
            ) from None
        yield from _table_batches(table, options)
        return
    raise DataError(
        f"cannot read data from a {type(source).__name__}; pass a CSV/Parquet path, "
        "a pandas DataFrame or a pyarrow Table"
    )


def read_table(
    source: Any, options: ReadOptions | None = None, *, columns: Sequence[str] | None = None
) -> pa.Table:
    """Read a whole source into memory (for data that fits: evaluation sets, tests).

    Columns whose type changes after the first block are read again with a wider type.
    """
    options = options or ReadOptions()
    for _ in range(64):
        try:
            batches = list(iter_batches(source, options))
        except RetypeColumnError as retype:
            options = options.with_types({retype.column: retype.arrow_type})
            continue
        if not batches:
            raise DataError(f"{source_name(source)} has no columns; it needs a header row")
        table = pa.Table.from_batches(batches)
        if columns is not None:
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise DataError(
                    f"{source_name(source)} lacks columns {missing}; it has {table.column_names}"
                )
            table = table.select(list(columns))
        return table
    raise DataError(
        f"{source_name(source)}: column types keep changing; declare them in the schema"
    )
