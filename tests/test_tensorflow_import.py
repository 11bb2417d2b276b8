"""The deferred modules behind ``import_tensorflow``, on small modules of their own.

TensorFlow itself is covered in tests/serving/test_import_tensorflow.py (a fresh
interpreter); these check the import machinery: one run, under a lock, on first use.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring._tensorflow import LOGS_ENV, _DeferModules, _DeferredModule

PACKAGE = "deferred_probe"


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        yield root
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def import_deferred(name: str) -> types.ModuleType:
    finder = _DeferModules(f"{PACKAGE}.")
    sys.meta_path.insert(0, finder)
    try:
        __import__(f"{PACKAGE}.{name}")
    finally:
        sys.meta_path.remove(finder)
    return sys.modules[f"{PACKAGE}.{name}"]


def test_a_deferred_module_runs_on_first_attribute_access(package: Path) -> None:
    (package / "ran.py").write_text("import builtins\nbuiltins.deferred_probe_ran = True\nX = 1\n")
    module = import_deferred("ran")
    assert type(module) is _DeferredModule
    assert not getattr(builtins, "deferred_probe_ran", False)
    assert module.X == 1
    assert type(module) is types.ModuleType
    assert builtins.deferred_probe_ran
    del builtins.deferred_probe_ran


def test_threads_that_touch_it_first_together_all_see_it_whole(package: Path) -> None:
    # The module takes a while to run: every thread must wait for it, and it runs once.
    (package / "slow.py").write_text(
        "import time\nimport builtins\n"
        "builtins.deferred_probe_runs = getattr(builtins, 'deferred_probe_runs', 0) + 1\n"
        "FIRST = 1\ntime.sleep(0.3)\nLAST = 2\n"
    )
    module = import_deferred("slow")
    start = threading.Barrier(8)
    seen: list[object] = []

    def touch() -> None:
        start.wait()
        seen.append(module.LAST)

    threads = [threading.Thread(target=touch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2] * 8
    assert builtins.deferred_probe_runs == 1
    del builtins.deferred_probe_runs


def test_its_own_code_reads_it_while_it_runs(package: Path) -> None:
    # Re-entry from the running thread (a module that reads itself, or a sub-import that
    # reads its parent) gets the module as it stands, not a deadlock.
    (package / "selfread.py").write_text("import sys\nA = 1\nB = sys.modules[__name__].A + 1\n")
    assert import_deferred("selfread").B == 2


def test_a_failing_module_raises_on_use_and_runs_again_next_time(package: Path) -> None:
    (package / "fails.py").write_text(
        "import builtins\n"
        "if not getattr(builtins, 'deferred_probe_fixed', False):\n"
        "    raise RuntimeError('not yet')\n"
        "OK = True\n"
    )
    module = import_deferred("fails")
    with pytest.raises(RuntimeError, match="not yet"):
        _ = module.OK
    builtins.deferred_probe_fixed = True
    try:
        assert module.OK is True
    finally:
        del builtins.deferred_probe_fixed


def test_attributes_set_before_it_runs_are_kept(package: Path) -> None:
    # The import system binds a deferred package's imported children on it before it
    # runs; those bindings, and the module's identity in sys.modules, survive the run.
    (package / "keeps.py").write_text("X = 'from the module'\nY = 'from the module'\n")
    module = import_deferred("keeps")
    setattr(module, "Y", "set early")  # noqa: B010 - as the import system binds a child
    assert module.X == "from the module"
    assert module.Y == "set early"
    assert sys.modules[f"{PACKAGE}.keeps"] is module


def test_deleting_an_attribute_runs_the_module_first(package: Path) -> None:
    (package / "deletes.py").write_text("X = 1\nY = 2\n")
    module = import_deferred("deletes")
    del module.X
    assert not hasattr(module, "X")
    assert module.Y == 2


def test_other_modules_import_as_usual(package: Path) -> None:
    (package / "plain.py").write_text("X = 1\n")
    finder = _DeferModules("some_other_prefix.")
    sys.meta_path.insert(0, finder)
    try:
        import deferred_probe.plain as plain  # type: ignore[import-not-found]
    finally:
        sys.meta_path.remove(finder)
    assert type(plain) is types.ModuleType
    assert plain.X == 1


def test_only_direct_children_outside_keep_are_deferred(package: Path) -> None:
    # Deeper modules (a namespace's sub-namespaces) run with their parent, and the
    # names in `keep` (TensorFlow's packages that share a namespace's name) run as usual.
    (package / "kept.py").write_text("X = 1\n")
    (package / "outer").mkdir()
    (package / "outer" / "__init__.py").write_text("")
    (package / "outer" / "inner.py").write_text("Y = 2\n")
    finder = _DeferModules(f"{PACKAGE}.", keep=frozenset({"kept"}))
    sys.meta_path.insert(0, finder)
    try:
        import deferred_probe.kept as kept  # type: ignore[import-not-found]
        import deferred_probe.outer.inner as inner  # type: ignore[import-not-found]
    finally:
        sys.meta_path.remove(finder)
    assert type(kept) is types.ModuleType and kept.X == 1
    assert type(inner) is types.ModuleType and inner.Y == 2
    # Importing a child made the (deferred) parent run, as the import system reads it.
    assert type(sys.modules[f"{PACKAGE}.outer"]) is types.ModuleType


_ABSL_NOTES = """
from absl import logging as absl_logging
from mooring._tensorflow import hide_python_logs, quiet_python_logs

{setup}
with quiet_python_logs():
    absl_logging.warning("inside the block")
# What TensorFlow's saving code does around an export: verbosity set, then put back,
# which sets the absl logger's level to WARNING again.
absl_logging.set_verbosity(absl_logging.FATAL)
absl_logging.set_verbosity(absl_logging.WARNING)
absl_logging.warning("`od280/od315` is not a valid tf.function parameter name")
absl_logging.error("an error is shown")
"""


@pytest.mark.parametrize(
    ("setup", "shown"),
    [
        ("hide_python_logs()", ["an error is shown"]),
        ("", ["`od280/od315` is not a valid tf.function parameter name", "an error is shown"]),
    ],
    ids=["hidden", "not-hidden"],
)
def test_hidden_notes_stay_hidden_after_absl_resets_its_level(setup: str, shown: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != LOGS_ENV}
    done = subprocess.run(
        [sys.executable, "-c", _ABSL_NOTES.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    assert [line.split(":", 2)[-1] for line in done.stderr.splitlines()] == shown, done.stderr


# A stand-in for TensorFlow that prints on descriptor 2 while it loads, as TensorFlow's
# native libraries do on many machines (this machine's build may print nothing).
_NOISY_TENSORFLOW = """
import os
os.write(2, b"E0000 00:00:1 cuda_executor.cc] failed call to cuInit: UNKNOWN ERROR (303)\\n")


class config:
    @staticmethod
    def list_physical_devices(kind):
        os.write(2, b"I0000 00:00:1 cpu_feature_guard.cc] oneDNN custom operations are on\\n")
        return []
"""


@pytest.mark.parametrize("shown", [False, True], ids=["quiet", "MOORING_TF_LOGS=1"])
def test_importing_mooring_hides_tensorflows_native_lines_unless_asked(
    tmp_path: Path, shown: bool
) -> None:
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(_NOISY_TENSORFLOW)
    env = {k: v for k, v in os.environ.items() if k not in (LOGS_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    if shown:
        env[LOGS_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    done = subprocess.run(
        [sys.executable, "-c", "import mooring, tensorflow; print(tensorflow.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fake / "__init__.py")  # the stand-in was imported
    lines = [line for line in done.stderr.splitlines() if line.startswith(("E0000", "I0000"))]
    assert bool(lines) == shown, done.stderr
