"""Ctrl-C, noted for the whole process: also where Python drops its KeyboardInterrupt.

A command's SIGINT handler (``noting_interrupts``, installed by the ``mooring`` command)
raises ``KeyboardInterrupt`` as Python's own does, and notes that SIGINT came. Python
drops an exception raised where the handler happens to run inside a weak-reference
callback or a ``__del__`` (it prints "Exception ignored in ..." and goes on), so a long
command also checks the note at its safe points with ``stop_if_interrupted``: the
pipeline does between its steps, so a swallowed Ctrl-C still stops the run there.

Examples:
    >>> with noting_interrupts():
    ...     interrupted()
    False
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupted", "noting_interrupts", "stop_if_interrupted"]

_received = False


def interrupted() -> bool:
    """Whether SIGINT came since the command's handler was installed."""
    return _received


def stop_if_interrupted(where: str) -> None:
    """Raise ``KeyboardInterrupt`` when SIGINT came, also if its own was dropped.

    ``where`` is the exception's message: the safe point it stopped at.
    """
    if _received:
        raise KeyboardInterrupt(where)


@contextlib.contextmanager
def noting_interrupts() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt as Python's own handler does, and is noted.

    Where another handler is installed (a command's own, an ignored SIGINT, or none
    off the main thread) it is left alone and nothing is noted. The note is clear
    on the way in and out: it belongs to one command.
    """
    global _received
    own = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )

    def handler(signum: int, frame: FrameType | None) -> None:
        global _received
        _received = True
        raise KeyboardInterrupt

    _received = False
    if own:
        signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        _received = False
        if own and signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)
