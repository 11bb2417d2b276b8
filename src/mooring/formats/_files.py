"""Files every layer writes or fingerprints: atomic writes, sha256 fingerprints, URL opening.

A crash at any point of :func:`atomic_write` leaves either the old file or the new
one, never half of one: the payload goes to a temporary file in the same folder,
is flushed to disk and renamed over the target.

Examples:
    >>> from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "report.json"
    >>> _ = atomic_write(target, b"{}")
    >>> len(file_fingerprint(target))
    64
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "atomic_write_url", "file_fingerprint", "is_url", "open_binary"]


def atomic_write(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_url(url: str, payload: bytes) -> str:
    """Write ``payload`` to a local path or an fsspec URL so no reader sees half of it.

    A local path goes through :func:`atomic_write` (its temporary name starts with a
    dot and ends in random letters, so folder scans for ``*.parquet`` never match it);
    an object store takes one put, which is all or nothing.
    """
    if not is_url(url):
        return str(atomic_write(Path(url.removeprefix("file://")), payload))
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, payload)
    return url


def is_url(text: str) -> bool:
    """Whether ``text`` names an fsspec URL (``s3://…``) rather than a local path."""
    return "://" in text and not text.startswith("file://")


def open_binary(path: str) -> Any:
    """A binary file object for a URL (decompressed when the name says so)."""
    import fsspec

    return fsspec.open(path, "rb", compression="infer").open()


def file_fingerprint(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (streamed): the data fingerprint used for lineage and caching."""
    digest = hashlib.sha256()
    text = str(path)
    opener = open_binary(text) if is_url(text) else open(text, "rb")  # noqa: SIM115
    with opener as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
