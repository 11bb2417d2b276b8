"""TensorFlow's native start-up lines stay off a user's terminal unless asked for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NATIVE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )", re.MULTILINE)


def _evaluate(tmp_path: Path, **env: str) -> str:
    """``mooring evaluate`` on a project with no trained model: loads TensorFlow, then
    stops with a one-line error (exit 2)."""
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "m"\nhome = "home"\n[data]\ntrain = "t.csv"\n')
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    result = subprocess.run(
        [sys.executable, "-m", "mooring", "evaluate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )
    assert result.returncode == 2, result.stderr
    assert "run `mooring train` first" in " ".join(result.stderr.split())
    return result.stderr


def test_native_tensorflow_lines_are_hidden_unless_asked_for(tmp_path: Path) -> None:
    quiet = _evaluate(tmp_path)
    assert not NATIVE.search(quiet), quiet
    assert "Traceback" not in quiet
    loud = _evaluate(tmp_path, MOORING_TF_LOGS="1")
    if not NATIVE.search(loud):
        pytest.skip("this TensorFlow build prints nothing when it loads")
    assert len(loud.splitlines()) > len(quiet.splitlines())
