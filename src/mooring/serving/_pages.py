"""Memory a process holds but will never use again, handed back to the machine.

The supervisor of ``mooring serve --workers N`` (:mod:`mooring.serving._workers`) imports
TensorFlow once so that its forked workers inherit it, and never runs it; what its
import ran once need not stay mapped (:func:`release_package_pages`). Its
:func:`resident_bytes` is also the process memory the server's metrics report.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from pathlib import Path

__all__ = ["MADV_DONTNEED", "release_package_pages", "resident_bytes"]

#: ``madvise`` advice: unmap these pages (a file's pages stay in the page cache).
MADV_DONTNEED = 4


def release_package_pages(module: str) -> int:
    """Unmap the pages of ``module``'s files that this process has not written.

    The supervisor imports TensorFlow once so that its forked workers inherit it, and
    never runs it. Importing it runs the libraries' start-up code (op and kernel
    registration), and those pages stay mapped in the supervisor: about 300 MiB of
    ``libtensorflow_cc`` and ``libtensorflow_framework`` on Adult, more than half of
    its memory. Once the workers run, every mapping of a file in the package's folder
    that is read-only and holds no page of this process's own (``Anonymous: 0`` in
    ``/proc/self/smaps``: code and constants, never relocated or written) is advised
    ``MADV_DONTNEED``. The supervisor stops mapping those pages; should one be touched
    again, it comes back unchanged from its file. The workers keep their own mappings,
    and the files' pages stay in the page cache until the kernel needs the memory, so
    a process that imports TensorFlow soon after reads them from there, not from disk.
    Mappings this process wrote (relocated tables, data) are left alone.

    Returns the bytes by which this process's resident memory fell (0 where the
    package is not imported or the platform is not Linux).

    Examples:
        >>> release_package_pages("tensorflow") >> 20  # doctest: +SKIP
        304
    """
    package = sys.modules.get(module)
    # /proc/self/maps names files by their real path, not by a symlinked venv's.
    folder = os.path.dirname(getattr(package, "__file__", None) or "")
    folder = os.path.realpath(folder) if folder else ""
    if not folder or not sys.platform.startswith("linux"):
        return 0
    try:
        spans = _unwritten_mappings(folder + os.sep)
        libc = ctypes.CDLL(None, use_errno=True)
        before = resident_bytes()
        for start, end in spans:
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED)
        return max(0, before - resident_bytes())
    except (OSError, AttributeError, ValueError):
        return 0


def _unwritten_mappings(prefix: str) -> list[tuple[int, int]]:
    """Address ranges of this process's read-only mappings of files under ``prefix``
    that hold no anonymous (written, copied-on-write) page."""
    spans: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            fields = line.split(maxsplit=5)
            if not fields:
                continue
            if not fields[0].endswith(":"):  # a mapping's first line: range, perms, …, path
                start, end = (int(x, 16) for x in fields[0].split("-"))
                path = fields[5].rstrip("\n") if len(fields) > 5 else ""
                eligible = path.startswith(prefix) and "w" not in fields[1]
                current = (start, end) if eligible else None
            elif fields[0] == "Anonymous:" and current is not None:
                if int(fields[1]) == 0:
                    spans.append(current)
                current = None
    return spans


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc; elsewhere the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
