"""The ``mooring`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
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
