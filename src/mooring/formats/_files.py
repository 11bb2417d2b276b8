"""Files every layer writes or fingerprints: atomic writes, sha256 fingerprints, URL opening.

A crash at any point of :func:`atomic_write` leaves either the old file or the new
one, never half of one: the payload goes to a temporary file in the same folder,
is flushed to disk and renamed over the target. The file gets the mode any program's
new file gets, 0666 less the umask (0644 under the usual umask 022), so the others a
project is shared with can read it; ``private=True`` keeps a secret (the audit key) to
its owner, 0600. :func:`temporary_folder` does the same for a folder that is filled,
then renamed into place (a model folder): 0777 less the umask, not ``mkdtemp``'s 0700.

Examples:
    >>> from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "report.json"
    >>> _ = atomic_write(target, b"{}")
    >>> len(file_fingerprint(target))
    64
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_url",
    "file_fingerprint",
    "is_url",
    "open_binary",
    "temporary_folder",
]

#: Tries at a free random name before giving up (each collision is a 1 in 2**32 chance).
_TRIES = 100


def _fresh_name(parent: Path, prefix: str) -> Path:
    return parent / f"{prefix}{secrets.token_hex(4)}"


def atomic_write(path: Path, payload: bytes, *, private: bool = False) -> Path:
    """Write ``payload`` to ``path`` via a temporary file and an atomic rename.

    The new file's mode is 0666 less the process's umask (0644 under umask 022), as
    ``open()`` would give it, whatever mode an earlier file at ``path`` had;
    ``private=True`` gives 0600 (less the umask) for a key or a token. The kernel
    applies the umask as the temporary file is created, so nothing reads or changes the
    process-wide umask (which other threads share).

    >>> import stat, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> key = atomic_write(folder / "audit.key", b"00" * 32 + b"\\n", private=True)
    >>> oct(stat.S_IMODE(key.stat().st_mode))
    '0o600'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(_TRIES):
        tmp = _fresh_name(path.parent, f".{path.name}.")
        try:
            fd = os.open(tmp, flags, 0o600 if private else 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name beside it", str(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def temporary_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` named ``prefix`` and random letters, with the mode
    ``mkdir`` gives (0777 less the umask: 0755 under umask 022).

    For a folder written and then renamed into place, which ``tempfile.mkdtemp``'s 0700
    would leave unreadable to everyone but its owner; the caller removes it.

    >>> import tempfile
    >>> folder = temporary_folder(Path(tempfile.mkdtemp()), ".model.partial-")
    >>> folder.name.startswith(".model.partial-"), list(folder.iterdir())
    (True, [])
    """
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_TRIES):
        folder = _fresh_name(parent, prefix)
        try:
            folder.mkdir(0o777)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary folder name", str(parent / prefix))


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
