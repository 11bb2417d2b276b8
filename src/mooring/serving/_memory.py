"""The memory ceiling of a serving process: a model's run is stopped before it passes it,
and a worker that kept too much of it is replaced before it serves again.

A model's graph can compute an allocation's size from its input (``OneHot`` of a depth
read from a request, ``Tile`` to 2 GiB), which no check of its constants sees. So the
operating system bounds what a run may take: once the process has started (and after
each version loads), its data segment is limited (``RLIMIT_DATA``) to what it holds then
plus ``[serving] worker_memory_bytes``. TensorFlow's CPU allocator fails the allocation
that would pass it with ``ResourceExhaustedError`` ("OOM when allocating tensor"), the
batcher answers that request 507 naming the limit (:class:`MemoryCeilingError`), and the
process, its other models and their requests go on. ``RLIMIT_DATA`` counts writable
private mappings only, not the address space TensorFlow reserves without writing
(``RLIMIT_AS`` does, which is why it cannot be used: it trips on those reservations).

TensorFlow's oneDNN allocator sends large tensors to a BFC pool that, refused memory,
retries for ten seconds before it gives up, holding the batch's thread (and every
request queued behind it) that long; :func:`use_system_allocator` (set before the
runtime starts) sends every tensor to ``malloc``, which fails at once.

A run that fits under the limit but leaves the process holding more than half of it
(private resident memory, ``/proc/self/statm``, above what it held when armed) is
caught after its batch: the C library is asked to give freed memory back first
(``malloc_trim``), and a worker of ``mooring serve --workers N`` still above stops taking
connections, answers what it has under way, flushes its prediction log and exits; its
supervisor starts another (:mod:`mooring.serving._workers`). A server alone on its port
has no one to replace it: it warns, and its limit still bounds it.

Examples:
    >>> ceiling = MemoryCeiling(512 * 2**20)
    >>> ceiling.armed, describe_bytes(ceiling.headroom or 0)
    (False, '512 MiB')
    >>> ceiling.after_run()  # not armed (a test's in-process app): nothing is read
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

from mooring.errors import MooringError

__all__ = [
    "WORKERS_ENV",
    "MemoryCeiling",
    "MemoryCeilingError",
    "describe_bytes",
    "out_of_memory",
    "use_system_allocator",
    "worker_headroom",
]

log = logging.getLogger("mooring.serving")

#: Set by the supervisor in each worker's environment: how many workers share the machine.
WORKERS_ENV = "MOORING_SERVE_WORKERS"
#: The smallest headroom "auto" gives a process.
MIN_AUTO_BYTES = 256 * 2**20
#: A run shorter than this cannot have written half of any headroom (128 MiB at least,
#: memory written at several GB/s), so its size is read only once per :data:`EVERY_S`.
QUICK_RUN_S = 0.002
EVERY_S = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class MemoryCeilingError(MooringError):
    """A model's run needed more memory than the process's ceiling allows (507)."""

    http_status = 507


def describe_bytes(size: int) -> str:
    """``size`` in the largest binary unit that keeps it readable.

    >>> describe_bytes(3 * 2**30), describe_bytes(1536 * 2**20), describe_bytes(700)
    ('3 GiB', '1.5 GiB', '700 B')
    """
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def worker_headroom(
    setting: int | Literal["auto", "off"], *, workers: int, available: int | None
) -> int | None:
    """The bytes a process's runs may take past its loaded versions; None: no ceiling.

    ``"auto"``: half the memory available when the server starts, shared by its
    ``workers`` (so every worker can spike at once and half is left for the loaded
    versions, the page cache and the rest of the machine), at least 256 MiB; off where
    the available memory is unknown.

    >>> worker_headroom("auto", workers=2, available=8 * 2**30) == 2 * 2**30
    True
    >>> worker_headroom("off", workers=1, available=8 * 2**30) is None
    True
    >>> worker_headroom(2**30, workers=4, available=None) == 2**30
    True
    """
    if setting == "off":
        return None
    if setting != "auto":
        return int(setting)
    if available is None:
        return None
    return max(MIN_AUTO_BYTES, available // (2 * max(1, workers)))


#: oneDNN's allocator: every tensor from the system's ``malloc`` (read when TensorFlow's
#: runtime starts), not large ones from a pool that retries a refused allocation for 10 s.
SYSTEM_ALLOCATOR_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def use_system_allocator() -> None:
    """Have TensorFlow allocate every tensor with ``malloc`` in this process, unless the
    environment says otherwise; before its runtime starts (a model's load)."""
    os.environ.setdefault(SYSTEM_ALLOCATOR_ENV, "1")


_statm_fd: tuple[int, int] | None = None  # (pid, descriptor of its /proc/self/statm)


def _statm() -> tuple[int, int]:
    """``(data, private resident)`` bytes of this process: its data segment (what
    ``RLIMIT_DATA`` bounds, with the stack) and its resident pages not backed by a file.

    Read after every batch, so the file stays open (read again from its start); a forked
    process opens its own.
    """
    global _statm_fd
    pid = os.getpid()
    if _statm_fd is None or _statm_fd[0] != pid:
        _statm_fd = (pid, os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
    fields = os.pread(_statm_fd[1], 256, 0).split()
    resident, shared, data = int(fields[1]), int(fields[2]), int(fields[5])
    return data * _PAGE, (resident - shared) * _PAGE


def _malloc_trim() -> None:
    """Ask glibc to hand freed heap memory back to the system (a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryCeiling:
    """One process's ceiling: ``headroom`` bytes past what it holds when armed (None: off).

    Inert until :meth:`start` (``mooring serve``'s own processes; an app built in a test's
    process never limits that process). A version loads inside :meth:`loading`: the
    limit is lifted meanwhile (TensorFlow's runtime, its thread pools and XLA's compiler
    threads start then, and a thread it cannot create aborts the process) and set again
    from the new size once no load is under way. :meth:`after_run` after each model run.
    """

    def __init__(self, headroom: int | None) -> None:
        self.headroom = headroom
        self.armed = False
        #: Called once, with the reason, when the process should be replaced (a worker).
        self.retire: Callable[[str], None] | None = None
        self.retired = False
        self._base = 0  # private resident bytes when armed
        self._limit = 0  # the data segment's limit set when armed
        self._restore: tuple[int, int] | None = None
        self._warned = False
        self._read_at = 0.0  # time.monotonic() of the last read after a run
        self._loading = 0  # versions loading (the limit is lifted while any is)
        self._lock = threading.Lock()

    def start(self, retire: Callable[[str], None] | None) -> None:
        """Limit this process from now on; ``retire`` (a worker's) is called when it
        should be replaced, None when nothing can replace it."""
        if self.headroom is None or not sys.platform.startswith("linux"):
            return
        self.retire = retire
        self._restore = resource.getrlimit(resource.RLIMIT_DATA)
        self.armed = True
        self.arm()

    def stop(self) -> None:
        """Lift the limit (the server stops)."""
        if self.armed and self._restore is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_DATA, self._restore)
        self.armed = False

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Load a version without the limit; it is set again, from the size the process
        has then, once no load is under way (a version's weights are not a run's growth)."""
        with self._lock:
            self._loading += 1
            if self.armed and self._restore is not None:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(resource.RLIMIT_DATA, self._restore)
        try:
            yield
        finally:
            with self._lock:
                self._loading -= 1
            self.arm()

    def arm(self) -> None:
        """Set the limit to what the process holds now plus the headroom: at start and
        after loads and unloads, unless a version is loading."""
        if not self.armed or self.headroom is None:
            return
        with self._lock:
            if self._loading:
                return
            data, private = _statm()
            hard = self._restore[1] if self._restore is not None else resource.RLIM_INFINITY
            limit = data + self.headroom
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            try:
                resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
            except (ValueError, OSError) as exc:  # pragma: no cover - a hard limit below it
                log.warning("the memory ceiling could not be set: %s", exc)
                return
            self._base, self._limit = private, limit

    def after_run(self, took: float = 1.0) -> None:
        """After a model's run of ``took`` seconds: a process that kept more than half its
        headroom is retired (once), or, with nothing to replace it, warned about. The
        size is read after a run of :data:`QUICK_RUN_S` or more, and after a quick one
        once per :data:`EVERY_S` (quick runs that each keep a little add up)."""
        if not self.armed or self.retired or self.headroom is None or self._loading:
            return
        now = time.monotonic()
        if took < QUICK_RUN_S and now - self._read_at < EVERY_S:
            return
        self._read_at = now
        if _statm()[1] - self._base <= self.headroom // 2:
            return
        _malloc_trim()
        kept = _statm()[1] - self._base
        if kept <= self.headroom // 2:
            return
        why = (
            f"a model's run left this process holding {describe_bytes(kept)} more than "
            f"after its models loaded, over half its memory ceiling of "
            f"{describe_bytes(self.headroom)} ([serving] worker_memory_bytes)"
        )
        with self._lock:
            if self.retired:
                return
            if self.retire is not None:
                self.retired = True
                log.warning("%s; this worker stops and another takes its place", why)
                self.retire(why)
            elif not self._warned:
                self._warned = True
                log.warning(
                    "%s; nothing replaces a server alone on its port: restart it, or "
                    "serve with --workers 2 or more so that a worker is replaced",
                    why,
                )

    def refusal(self) -> MemoryCeilingError:
        """The error a run stopped at the ceiling is answered with."""
        size = describe_bytes(self.headroom) if self.headroom is not None else "its limit"
        return MemoryCeilingError(
            f"the model's run needed more memory than this server's ceiling of {size} "
            "past its loaded models ([serving] worker_memory_bytes) and was stopped; send "
            "fewer rows or smaller inputs, or raise [serving] worker_memory_bytes"
        )


def out_of_memory(exc: BaseException) -> bool:
    """Did a run fail for want of memory (TensorFlow's ``ResourceExhaustedError``, or
    Python's ``MemoryError``)? TensorFlow is looked up only once imported.

    >>> out_of_memory(MemoryError()), out_of_memory(ValueError("bad"))
    (True, False)
    """
    if isinstance(exc, MemoryError):
        return True
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(exc, tf.errors.ResourceExhaustedError)
