"""The first call in a box: a child process that answers, fails as itself, or is
stopped at a limit, without re-running its caller's script."""

from __future__ import annotations

import functools
import os
import socket
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mooring import _sandbox
from mooring.errors import ModelLoadError, MooringError, UsageError
from mooring.explain import ExplainUnavailable
from mooring.training._box import Limits, run_boxed
from mooring.training._import import import_model
from tests._support.server import free_port, listening

landlock = pytest.mark.skipif(
    _sandbox.abi_version() < 6, reason="needs Linux with Landlock ABI 6 or later"
)


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


@pytest.fixture(scope="module")
def reaching(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The models that reach out of their process, saved once; what they reach for: a
    secret file, a file to write, a port to listen on, a listener to connect to."""
    from tests._support import boxed_models

    root = tmp_path_factory.mktemp("reaching")
    secret = root / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("a secret of the machine\n")
    listen_port, connect_port = free_port(), free_port()
    return {
        "root": root,
        "secret": secret,
        "written": root / "outside" / "written.txt",
        "listen_port": listen_port,
        "connect_port": connect_port,
        "file_reader": boxed_models.file_reader(root / "reader", secret, trigger=None),
        "file_writer": boxed_models.file_writer(root / "writer", root / "outside" / "written.txt"),
        "listener": boxed_models.listener(root / "listener", listen_port),
        "connector": boxed_models.connector(root / "connector", connect_port),
    }


def _admitted(name: str) -> dict[str, str]:
    """Every op the model uses, admitted past the vetting on purpose."""
    from tests._support.boxed_models import OPS

    return {op: "the box must stop it, not the vetting" for op in OPS[name]}


@landlock
@pytest.mark.parametrize("name", ["file_reader", "file_writer", "listener", "connector"])
def test_the_probe_child_box_stops_a_model_the_vetting_admitted(
    reaching: dict[str, Any], name: str, tmp_path: Path
) -> None:
    """Importing runs the model in the probe child: the read, the write, the listen and
    the connect each fail there, so the import is refused and nothing reached out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", reaching["connect_port"]))
        listener.listen()
        listener.settimeout(0.1)
        refusal = {
            "file_reader": ModelLoadError,
            "file_writer": ModelLoadError,
            "listener": None,  # the gRPC server fails to bind; the op itself returns
            "connector": ModelLoadError,
        }[name]
        call = functools.partial(
            import_model,
            reaching[name],
            tmp_path / "out",
            allowed_ops=_admitted(name),
            limits=Limits(timeout_s=120),
        )
        if refusal is None:
            call()
        else:
            with pytest.raises(refusal, match=r"Permission denied|Graph execution|Deadline"):
                call()
        with pytest.raises(TimeoutError, match="timed out"):
            listener.accept()  # nothing connected
    assert not reaching["written"].exists()
    assert listening(reaching["listen_port"]) is False
