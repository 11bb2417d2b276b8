"""The first call in a box: a function run in a child process with a memory limit, a
time limit, a scratch working folder and, given :class:`~mooring._sandbox.Rules`, the
operating system's box.

``mooring models import`` loads, describes and probes a model it has never seen in such
a child (:func:`run_boxed`), so a model that allocates without bound, spins, crashes
its process or writes into its working folder harms only the child. The parent polls
the child's resident memory (``/proc``) rather than setting ``RLIMIT_AS``, which
TensorFlow's large virtual reservations would trip before a byte is used, and kills it
past either limit; the error says which limit it hit.

The child is forked from a server process that has TensorFlow imported already
(``multiprocessing``'s *forkserver*), so each probe costs its own work, not
TensorFlow's import: the server starts once per parent process.

With ``rules`` the child boxes itself (:func:`mooring._sandbox.enter`) before it calls
the function: it reads beneath the folders ``rules`` names (the model being imported)
and the Python installation, writes beneath its scratch folder and ``rules``'s (the new
model's folder), binds and connects nowhere. The forkserver is not boxed (it runs no
model); each child is, as its first act, while it is its process's only thread.

Examples:
    >>> run_boxed(len, ("abc",), Limits(), what="a test")  # doctest: +SKIP
    3
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mooring import _sandbox
from mooring.errors import ModelLoadError, MooringError, UsageError
from mooring.formats._vetting import DEFAULT_PROBE_MEMORY, gib

__all__ = ["DEFAULT_PROBE_TIMEOUT", "Limits", "run_boxed"]

#: Seconds the boxed call may take (load, describe, probe) when none is given.
DEFAULT_PROBE_TIMEOUT = 300.0
_POLL = 0.05
_GRACE = 10.0
#: ``mooring`` first: its import makes TensorFlow's import quiet (no native log lines).
_PRELOAD = ["mooring", "tensorflow", "mooring.training._import"]


@dataclass(frozen=True)
class Limits:
    """What the boxed call may use: resident memory (bytes) and wall time (seconds)."""

    memory_bytes: int = DEFAULT_PROBE_MEMORY
    timeout_s: float = DEFAULT_PROBE_TIMEOUT

    @classmethod
    def of(cls, memory_gib: float | None, timeout_s: float | None) -> Limits:
        """``--probe-memory GiB`` and ``--probe-timeout SECONDS``, checked.

        >>> Limits.of(0.5, 20)
        Limits(memory_bytes=536870912, timeout_s=20.0)

        Raises:
            UsageError: a limit that is not positive.
        """
        memory = DEFAULT_PROBE_MEMORY / 2**30 if memory_gib is None else memory_gib
        timeout = DEFAULT_PROBE_TIMEOUT if timeout_s is None else timeout_s
        if not memory > 0 or not timeout > 0:
            raise UsageError(
                f"--probe-memory {memory} / --probe-timeout {timeout}: both must be positive "
                "(GiB and seconds; the defaults are 4 and 300)"
            )
        return cls(memory_bytes=int(memory * 2**30), timeout_s=float(timeout))


@functools.cache
def _context() -> Any:
    """The forkserver context (TensorFlow preloaded in its server, set once before it
    starts); spawn where there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _rss(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes (Linux's ``/proc``); None where
    it cannot be read, so the memory limit holds on Linux only."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # gone, or no /proc (not Linux)
        return None


@contextlib.contextmanager
def _no_main() -> Iterator[None]:
    """Hide the caller's ``__main__`` while a child starts, so the child does not import
    it again: multiprocessing's spawn and forkserver children re-run a script's top
    level (a user's training script without an ``if __name__ == "__main__"`` guard
    would run once more, and try to import again). The child needs nothing from it:
    its function is mooring's own."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _child(
    conn: Connection,
    scratch: str,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    rules: _sandbox.Rules | None = None,
) -> None:
    """In the child: the scratch folder as the working folder, the box, the call, its
    answer."""
    os.chdir(scratch)
    try:
        if rules is not None:
            folder = Path(scratch)
            _sandbox.enter(dataclasses.replace(rules, write=(*rules.write, folder), temp=folder))
        conn.send(("ok", function(*args)))
    except MooringError as exc:
        conn.send(("error", type(exc), exc.message))  # the class itself, pickled by reference
    except BaseException as exc:  # the parent words it; the child must answer
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
        conn.send(("error", ModelLoadError, f"{type(exc).__name__}: {text}"))
    finally:
        conn.close()


def run_boxed(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    limits: Limits,
    *,
    what: str,
    rules: _sandbox.Rules | None = None,
) -> Any:
    """``function(*args)`` in a child process held to ``limits`` and, given ``rules``,
    boxed by the operating system (:mod:`mooring._sandbox`); its return value.

    ``function`` and its arguments and result must pickle. A
    :class:`~mooring.errors.MooringError` raised in the child is raised here as the
    same class with the same message.

    Raises:
        ModelLoadError: the child used more memory or time than ``limits`` allow (the
            message says which, and the option that raises it), or ended without an
            answer (killed, crashed, or aborted by the model).
        MooringError: what the child raised.
    """
    context = _context()
    receive, send = context.Pipe(duplex=False)
    scratch = tempfile.mkdtemp(prefix="mooring-probe-")
    process = context.Process(
        target=_child, args=(send, scratch, function, args, rules), daemon=True
    )
    with _no_main():
        process.start()
    send.close()
    deadline = time.monotonic() + limits.timeout_s
    peak = 0
    answer: Any = None
    try:
        while True:
            if receive.poll(_POLL):
                try:
                    answer = receive.recv()
                except EOFError:
                    answer = None
                break
            if not process.is_alive():
                answer = receive.recv() if receive.poll(0) else None
                break
            peak = max(peak, _rss(process.pid or 0) or 0)
            if peak > limits.memory_bytes:
                process.kill()
                raise ModelLoadError(
                    f"{what} used more than {gib(limits.memory_bytes)} of memory while it was "
                    "loaded and called on its probe batch, and was stopped; a model that needs "
                    "more can be imported with a higher --probe-memory GiB"
                )
            if time.monotonic() > deadline:
                process.kill()
                raise ModelLoadError(
                    f"{what} did not answer in {limits.timeout_s:g} s while it was loaded and "
                    "called on its probe batch, and was stopped; a model that needs longer "
                    "can be imported with a higher --probe-timeout SECONDS"
                )
    finally:
        # An answer given, the child exits; else it is stopped at once.
        process.join(timeout=_GRACE if answer is not None else 0)
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return _answer(answer, process.exitcode, what)


def _answer(answer: Any, exitcode: int | None, what: str) -> Any:
    if isinstance(answer, tuple) and answer and answer[0] == "ok":
        return answer[1]
    if isinstance(answer, tuple) and len(answer) == 3 and answer[0] == "error":
        kind = answer[1]
        if not (isinstance(kind, type) and issubclass(kind, MooringError)):
            kind = ModelLoadError
        raise kind(str(answer[2]))
    how = (
        f"was ended by signal {-exitcode}"
        if exitcode is not None and exitcode < 0
        else f"exited with status {exitcode}"
    )
    raise ModelLoadError(
        f"{what}: the process that loaded and probed it {how} without an answer (the model "
        "crashed or aborted it); check that the model loads and runs where it was built"
    )
