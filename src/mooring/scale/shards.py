"""Shards: the files a sharded source names, in one stable order.

A source is a file, a folder (every CSV or Parquet file under it, recursively, hidden
files and ``_``-prefixed markers such as ``_SUCCESS`` left out), a glob
(``data/part-*.parquet``), or a list of any of these, on a local path or any fsspec URL
(``s3://bucket/features/``). The order is the sorted full paths, so every engine
merges the shards' partial results in the same order.

Example:
    >>> list_shards(["b.csv", "a.csv"], must_exist=False)
    ['a.csv', 'b.csv']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from mooring.errors import NotFoundError, UsageError
from mooring.formats.files import is_url

__all__ = ["DATA_SUFFIXES", "list_shards", "shard_name"]

#: What a folder's scan picks up (compressed CSV included).
DATA_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".parquet", ".pq", ".tsv", ".txt")
_GLOB_CHARS = frozenset("*?[")


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
