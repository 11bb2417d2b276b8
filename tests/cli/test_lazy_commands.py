"""The command line imports only the module of the command it runs."""

from __future__ import annotations

import atexit
import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from typer.main import get_command

from mooring.cli import COMMANDS, app, main


def _report(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    script = (
        "import gc, json, os, sys\n"
        "from mooring.cli import main\n"
        f"code = main({argv!r})\n"
        "mods = sorted(m for m in sys.modules if m.startswith('mooring.cli.'))\n"
        "print(json.dumps({'code': code, 'mods': mods, 'tf': 'tensorflow' in sys.modules,\n"
        "                  'gc': gc.isenabled(),\n"
        "                  'plugins': os.environ.get('PYDANTIC_DISABLE_PLUGINS')}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_without_plugin_setting(), **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["out"] = proc.stdout + proc.stderr
    return report


def _without_plugin_setting() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}


def _run(argv: list[str]) -> tuple[int, list[str], str]:
    report = _report(argv)
    assert not report["tf"], "no command's --help may import TensorFlow"
    return report["code"], report["mods"], report["out"]


def test_every_registered_command_is_mapped_to_the_module_that_registers_it() -> None:
    registered = set(get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(COMMANDS)
    for command, module in COMMANDS.items():
        assert app is sys.modules[f"mooring.cli.{module}"].app, command


def test_serve_imports_only_the_serve_command() -> None:
    code, mods, out = _run(["serve", "--help"])
    assert code == 0 and "--model-dir" in out
    assert mods == [
        "mooring.cli._app",
        "mooring.cli._common",
        "mooring.cli._preflight",
        "mooring.cli._serve",
    ]


def test_debug_flag_before_the_command_still_finds_it() -> None:
    code, mods, out = _run(["--debug", "validate", "--help"])
    assert code == 0 and "--schema" in out
    assert "mooring.cli._contract" in mods and "mooring.cli._serve" not in mods


def test_root_help_and_unknown_commands_see_every_command() -> None:
    code, mods, out = _run(["--help"])
    assert code == 0
    for command in ("serve", "validate", "models", "drift", "export", "run"):
        assert command in out
    assert {f"mooring.cli.{m}" for m in COMMANDS.values()} <= set(mods)
    code, _, out = _run(["serev"])
    assert code == 2 and "serve" in out  # the error lists or suggests the real command


def test_a_bad_option_value_is_a_usage_error_not_a_traceback() -> None:
    code, _, out = _run(["serve", "--port", "abc"])
    assert code == 2 and "Invalid value for '--port'" in out and "Traceback" not in out


def test_start_up_imports_run_without_the_collector_and_leave_it_on() -> None:
    report = _report(["serve", "--help"])
    assert report["code"] == 0 and report["gc"] is True
    assert report["plugins"] == "__all__"  # pydantic's plugins: not looked for
    chosen = _report(["serve", "--help"], env={"PYDANTIC_DISABLE_PLUGINS": "false"})
    assert chosen["plugins"] == "false"  # a user's own setting stands


def test_the_script_leaves_its_objects_out_of_the_collection_at_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run as the script (no argv), the process exits next: gc.freeze at exit spares it
    # the walk of every object it made. Called with argv (a caller's process goes on),
    # nothing is registered.
    registered: list[Callable[[], object]] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(sys, "argv", ["mooring", "--version"])
    assert main() == 0
    assert registered == [gc.freeze]
    registered.clear()
    assert main(["--version"]) == 0
    assert registered == []
    assert "mooring" in capsys.readouterr().out


def test_the_checks_before_tensorflow_read_options_every_command_still_has() -> None:
    from mooring.cli import _preflight
    from mooring.serving import _workers

    group = get_command(app)
    assert set(_preflight.NEEDS) <= set(COMMANDS)
    for command, names in _preflight.OPTIONS.items():
        found = group
        for word in command.split():  # "export lite": a group's subcommand
            found = found.commands[word]  # type: ignore[attr-defined]
        params = found.params
        opts = {opt for param in params for opt in param.opts}
        assert set(names) <= opts, command
    assert _preflight.WORKER_ENV == _workers.WORKER_ENV


def test_a_missing_config_is_reported_before_the_command_or_tensorflow_is_imported() -> None:
    report = _report(["run", "-c", "/nonexistent/mooring.toml"])
    assert report["code"] == 2 and not report["tf"]
    assert report["mods"] == ["mooring.cli._common", "mooring.cli._preflight"]
    assert "config file '/nonexistent/mooring.toml' does not exist" in report["out"]
