"""An unexpected internal error prints one line naming a crash file, never a traceback."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import mooring.cli._run as run_module
from mooring.cli import main
from tests._support.cli import python_handles_sigint


def _project(tmp_path: Path) -> Path:
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "income"\nhome = "{tmp_path / "home"}"\n[data]\ntrain = "t.csv"\n'
    )
    return config


def test_an_internal_error_is_one_line_and_a_file_under_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug deep inside")

    monkeypatch.setattr(run_module, "project_status", broken)
    config = _project(tmp_path)
    assert main(["status", "-c", str(config)]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error in `mooring status`: KeyError" in err and "--debug" in err
    [crash] = (tmp_path / "home" / "logs").glob("crash-*.txt")
    assert str(crash) in err.replace("\n", "")
    text = crash.read_text()
    assert "Traceback" in text and "a bug deep inside" in text and "status -c" in text

    assert main(["--debug", "status", "-c", str(config)]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_flags_render_as_flags_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--json" in out and "<bool>" not in out
    assert "<path>" in out  # options that take a value still say what


@pytest.mark.parametrize("command", ["validate", "run", "train"])
def test_a_train_file_that_does_not_exist_is_the_users_error_not_an_internal_one(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path)  # [data] train = "t.csv", which is not there
    assert main([command, "-c", str(config)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "[data] train = 't.csv' does not exist" in err, err
    assert str(tmp_path / "t.csv") in err and "fix the path in mooring.toml" in err, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert not (tmp_path / "home" / "logs").exists()


def test_ctrl_c_is_one_line_and_130_also_when_a_library_rewords_the_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # TensorFlow can turn a KeyboardInterrupt raised inside its calls into an error of
    # its own; the command was still interrupted, not broken.
    def interrupted(*args: object, **kwargs: object) -> None:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise RuntimeError("cancelled while the graph ran") from None

    monkeypatch.setattr(run_module, "project_status", interrupted)
    config = _project(tmp_path)
    with python_handles_sigint():
        assert main(["status", "-c", str(config)]) == 130
        assert capsys.readouterr().err == "interrupted\n"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        monkeypatch.setattr(run_module, "project_status", lambda *a, **k: signal.raise_signal(2))
        assert main(["status", "-c", str(config)]) == 130
        assert capsys.readouterr().err == "interrupted\n"
    assert not (tmp_path / "home" / "logs").exists()
