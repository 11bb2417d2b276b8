"""Shards: the files a sharded source names, in one stable order.

A source is a file, a folder (every CSV or Parquet file under it, recursively, hidden
files and ``_``-prefixed markers such as ``_SUCCESS`` left out), a glob
(``data/part-*.parquet``), or a list of any of these, on a local path or any fsspec URL
(``s3://bucket/features/``). The order is the sorted full paths, so every engine
merges the shards' partial results in the same order.

Examples:
    >>> list_shards(["b.csv", "a.csv"], must_exist=False)
    ['a.csv', 'b.csv']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from mooring.contract._io import ParquetPiece
from mooring.errors import NotFoundError, UsageError
from mooring.formats._files import is_url

__all__ = ["DATA_SUFFIXES", "PIECE_ROWS", "list_shards", "plan_pieces", "shard_name"]

#: What a folder's scan picks up (compressed CSV included).
DATA_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".parquet", ".pq", ".tsv", ".txt")
_GLOB_CHARS = frozenset("*?[")
#: A Parquet shard with more rows than this (and several row groups) is split into
#: pieces of about this many rows, so that several workers read one large file.
PIECE_ROWS = 1_000_000
#: Splitting reads each file's footer on the driver; above this many shards the
#: shards alone keep the workers busy and no footer is read.
SPLIT_BELOW_SHARDS = 64


def _fs(path: str) -> tuple[Any, str, str]:
    """(filesystem, path inside it, protocol prefix to put back)."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    prefix = path.split("://", 1)[0] + "://" if is_url(path) else ""
    return fs, inner, prefix


def _visible(path: str, root: str) -> bool:
    parts = PurePosixPath(path[len(root) :].lstrip("/")).parts
    return not any(p.startswith((".", "_")) for p in parts)


def _expand(spec: str) -> list[str]:
    fs, inner, prefix = _fs(spec.removeprefix("file://"))
    if any(c in inner for c in _GLOB_CHARS):
        found = [p for p in fs.glob(inner) if fs.isfile(p)]
        if not found:
            raise NotFoundError(f"no file matches {spec!r}; check the pattern")
        return [prefix + p for p in found]
    if not fs.exists(inner):
        raise NotFoundError(f"data source {spec!r} does not exist; check the path")
    if not fs.isdir(inner):
        return [spec]
    root = inner.rstrip("/")
    found = [
        p
        for p in fs.find(root)
        if p.lower().endswith(DATA_SUFFIXES) and _visible(p, root) and fs.isfile(p)
    ]
    if not found:
        raise NotFoundError(
            f"folder {spec!r} holds no CSV or Parquet file (looked for {', '.join(DATA_SUFFIXES)})"
        )
    return [prefix + p for p in found]


def list_shards(source: str | Sequence[str], *, must_exist: bool = True) -> list[str]:
    """Every file ``source`` names, sorted, each once.

    Raises:
        NotFoundError: a path does not exist, a glob matches nothing, or a folder holds
            no data file.
        UsageError: an empty list.
    """
    specs = [source] if isinstance(source, str) else list(source)
    if not specs:
        raise UsageError("no data source given; pass a file, a folder, a glob or a list of them")
    if not must_exist:
        return sorted(set(specs))
    shards: set[str] = set()
    for spec in specs:
        shards.update(_expand(str(spec)))
    return sorted(shards)


def shard_name(shard: str) -> str:
    """The shard's file name without its data suffix (``part-0003`` for ``…/part-0003.parquet``)."""
    name = shard.rstrip("/").rsplit("/", 1)[-1]
    lowered = name.lower()
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".pq"))


def _split(path: str, rows_per_piece: int) -> list[str | ParquetPiece]:
    import pyarrow.parquet as pq

    from mooring.formats._files import open_binary

    try:
        with open_binary(path) if is_url(path) else open(path, "rb") as handle:
            meta = pq.ParquetFile(handle).metadata
    except Exception:  # an unreadable file is reported by the task that reads it
        return [path]
    if meta.num_rows <= rows_per_piece or meta.num_row_groups < 2:
        return [path]
    pieces: list[str | ParquetPiece] = []
    groups: list[int] = []
    rows = 0
    for index in range(meta.num_row_groups):
        groups.append(index)
        rows += meta.row_group(index).num_rows
        if rows >= rows_per_piece:
            pieces.append(ParquetPiece(path, tuple(groups)))
            groups, rows = [], 0
    if groups:
        pieces.append(ParquetPiece(path, tuple(groups)))
    return pieces


def plan_pieces(
    shards: Sequence[str], *, rows_per_piece: int | None = None
) -> list[str | ParquetPiece]:
    """The units of work: each shard, with large Parquet shards split by row groups.

    The pieces keep the shards' order and, inside a file, the row groups' order, so
    merging their results in order is merging the file's.
    """
    if len(shards) >= SPLIT_BELOW_SHARDS:
        return list(shards)
    size = rows_per_piece or PIECE_ROWS
    planned: list[str | ParquetPiece] = []
    for shard in shards:
        planned.extend(_split(shard, size) if _is_parquet(shard) else [shard])
    return planned
