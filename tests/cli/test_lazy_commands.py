"""The command line imports only the module of the command it runs."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.main import get_command

from mooring.cli import COMMANDS, app


def _run(argv: list[str]) -> tuple[int, list[str], str]:
    script = (
        "import json, sys\n"
        "from mooring.cli import main\n"
        f"code = main({argv!r})\n"
        "mods = sorted(m for m in sys.modules if m.startswith('mooring.cli.'))\n"
        "print(json.dumps({'code': code, 'mods': mods, 'tf': 'tensorflow' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["tf"], "no command's --help may import TensorFlow"
    return report["code"], report["mods"], proc.stdout + proc.stderr


def test_every_registered_command_is_mapped_to_the_module_that_registers_it() -> None:
    registered = set(get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(COMMANDS)
    for command, module in COMMANDS.items():
        assert app is sys.modules[f"mooring.cli.{module}"].app, command


def test_serve_imports_only_the_serve_command() -> None:
    code, mods, out = _run(["serve", "--help"])
    assert code == 0 and "--model-dir" in out
    assert mods == ["mooring.cli._app", "mooring.cli._common", "mooring.cli.serve"]


def test_debug_flag_before_the_command_still_finds_it() -> None:
    code, mods, out = _run(["--debug", "validate", "--help"])
    assert code == 0 and "--schema" in out
    assert "mooring.cli.contract" in mods and "mooring.cli.serve" not in mods


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
