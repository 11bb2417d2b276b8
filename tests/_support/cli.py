"""The ``mooring`` command as a user runs it: in a subprocess, or through its entry point."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def run_mooring(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m mooring ARGS``: its exit code, stdout and stderr (text)."""
    return subprocess.run(
        [sys.executable, "-m", "mooring", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def mooring_in_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The same command through the CLI's entry point in this process: its exit code and
    what it printed, as :func:`run_mooring` returns them, without a new interpreter
    (TensorFlow's import alone takes seconds). For commands whose test is about what they
    do and say; a test about the script itself (native log lines, warnings, signals) uses
    :func:`run_mooring`."""
    from mooring.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["mooring", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def python_handles_sigint() -> Iterator[None]:
    """Within the block, this process handles SIGINT with Python's own handler (Ctrl-C
    raises KeyboardInterrupt), whatever it inherited; the disposition before comes back
    after. Main thread only, as ``signal`` requires.

    A test run started in the background (``command &`` in a script, CI's runner)
    ignores SIGINT, and a child inherits an ignored signal: Python then leaves it
    ignored, and so does mooring, which honours a caller's choice. A handled signal is
    reset to its default in a new program instead, so a process started in the block
    gets SIGINT as a terminal's foreground command does, and a test can press Ctrl-C for
    its user.

    Examples:
        >>> with python_handles_sigint():
        ...     signal.getsignal(signal.SIGINT) is signal.default_int_handler
        True
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
