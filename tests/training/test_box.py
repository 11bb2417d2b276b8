"""The first call in a box: a child process that answers, fails as itself, or is
stopped at a limit, without re-running its caller's script."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from mooring.errors import ModelLoadError, MooringError, UsageError
from mooring.explain import ExplainUnavailable
from mooring.training._box import Limits, run_boxed


def _where() -> str:
    """The child's working folder."""
    return os.getcwd()


def _refuse(kind: type[Exception], text: str) -> None:
    raise kind(text)


def _abort() -> None:
    os.abort()


def test_the_child_runs_in_a_scratch_folder_without_the_callers_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's script without a ``__main__`` guard is not run again in the child."""
    marker = tmp_path / "ran-again"
    script = tmp_path / "train.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('the script ran again')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    scratch = run_boxed(_where, (), Limits(timeout_s=120), what="the call")
    assert Path(scratch).name.startswith("mooring-probe-") and not Path(scratch).exists()
    assert not marker.exists()


@pytest.mark.parametrize("kind", [UsageError, ExplainUnavailable], ids=lambda k: k.__name__)
def test_an_error_in_the_child_is_raised_as_its_own_class(kind: type[MooringError]) -> None:
    """Its class travels, not its name: one defined outside ``mooring.errors`` too."""
    with pytest.raises(kind, match=r"^--input-shape x=0 is wrong$"):
        run_boxed(_refuse, (kind, "--input-shape x=0 is wrong"), Limits(timeout_s=120), what="")


def test_any_other_error_in_the_child_is_a_model_load_error_naming_it() -> None:
    with pytest.raises(ModelLoadError, match=r"^ValueError: shapes \(3,\) and \(4,\)$"):
        run_boxed(_refuse, (ValueError, "shapes (3,) and (4,)"), Limits(timeout_s=120), what="")


def test_a_child_that_dies_says_so() -> None:
    with pytest.raises(ModelLoadError, match=r"'m': the process .* was ended by signal 6"):
        run_boxed(_abort, (), Limits(timeout_s=120), what="'m'")


def test_limits_are_positive() -> None:
    assert Limits.of(None, None) == Limits(memory_bytes=4 * 2**30, timeout_s=300.0)
    with pytest.raises(UsageError, match=r"--probe-memory 0 / --probe-timeout 300"):
        Limits.of(0, None)
