"""The ``mooring`` command line: a thin layer over the library API.

Exit codes: 0 ok, 1 checks failed (error-level anomalies, a failed gate),
2 usage or configuration error. Errors print as one line plus a hint; pass
``--debug`` to see the traceback.
"""

from __future__ import annotations

import sys

# Each command group registers its commands on `app` when imported (one line each).
from mooring.cli import contract as _contract  # noqa: F401
from mooring.cli import evaluate as _evaluate  # noqa: F401
from mooring.cli import export as _export  # noqa: F401
from mooring.cli import models as _models  # noqa: F401
from mooring.cli import monitor as _monitor  # noqa: F401
from mooring.cli import monitoring as _monitoring  # noqa: F401
from mooring.cli import run as _run  # noqa: F401
from mooring.cli import serve as _serve  # noqa: F401
from mooring.cli import train as _train  # noqa: F401
from mooring.cli import ui as _ui  # noqa: F401
from mooring.cli._app import app
from mooring.cli._common import run_guarded

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mooring`` script; returns the exit code."""
    return run_guarded(app, sys.argv[1:] if argv is None else argv)
