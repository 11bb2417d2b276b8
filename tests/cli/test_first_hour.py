"""The first hour: every mistake a new user makes gets one clear line, before TensorFlow.

Each scenario breaks a project one way and runs every command it concerns in one
subprocess (``main()`` called per command, stderr captured per call). For each: the exit
code, exactly one line on stderr that starts with ``error:`` and names the thing, no
traceback, no "internal error", and TensorFlow never imported (``sys.modules``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._support.project import edit, write_adult, write_project

SCRIPT = """\
import contextlib, io, json, sys
from mooring.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    out.append({"argv": argv, "code": code, "err": err.getvalue(),
                "tf": "tensorflow" in sys.modules})
print(json.dumps(out))
"""

Case = tuple[list[str], int, str]  # argv, exit code, what the one line must say


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_adult(tmp_path_factory.mktemp("first-hour-data"), train_rows=50, test_rows=20)


def walk(cwd: Path, cases: list[Case]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([argv for argv, _, _ in cases])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "300"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, code, says), got in zip(cases, results, strict=True):
        lines = [line for line in got["err"].splitlines() if line.strip()]
        where = f"mooring {' '.join(argv)}: {got['err']!r}"
        assert got["code"] == code, where
        assert len(lines) == 1 and lines[0].startswith("error: "), where
        assert says in lines[0], where
        assert "Traceback" not in got["err"] and "internal error" not in got["err"], where
        assert not got["tf"], f"{where}: TensorFlow was imported before the answer"


@pytest.fixture
def project(tmp_path: Path, data: dict[str, Path]) -> Path:
    write_project(tmp_path, data)
    return tmp_path


EVERY_PROJECT_COMMAND = [
    ["run"],
    ["train"],
    ["evaluate"],
    ["monitor"],
    ["status"],
    ["serve", "--workers", "1"],
    ["ui"],
    ["drift"],
    ["live"],
    ["explain", "0c5e7f3a"],
    ["feedback", "labels.csv"],
    ["score", "--data", "x.csv", "--out", "scores"],
    ["export", "lite", "income"],
    ["ops", "prometheus"],
]


def test_no_config_points_to_mooring_init(tmp_path: Path) -> None:
    says = "config file 'mooring.toml' does not exist"
    cases: list[Case] = [(argv, 2, says) for argv in EVERY_PROJECT_COMMAND]
    cases += [
        (["run", "-c", "other.toml"], 2, "config file 'other.toml' does not exist"),
        (["models", "list"], 2, "no registry given and no mooring.toml"),
        (["validate"], 2, "give a data file, or --config"),
        (["stats", "missing.csv"], 2, "data source 'missing.csv' does not exist"),
    ]
    walk(tmp_path, cases)
    proc = subprocess.run(
        [sys.executable, "-m", "mooring", "run"], capture_output=True, text=True, cwd=tmp_path
    )
    assert "mooring init" in proc.stderr and "examples/" not in proc.stderr


def test_toml_syntax_error_names_the_file_and_line(project: Path) -> None:
    toml = project / "mooring.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "[model\n", encoding="utf-8")
    cases: list[Case] = [
        (argv, 2, "mooring.toml: not valid TOML") for argv in EVERY_PROJECT_COMMAND
    ]
    cases.append((["models", "list", "-c", "mooring.toml"], 2, "not valid TOML"))
    walk(project, cases)


def test_unknown_key_names_the_key_and_the_close_one(project: Path) -> None:
    edit(project / "mooring.toml", r"^epochs = 1$", "epoch = 1")
    says = "[model]: unknown key 'epoch'; did you mean 'epochs'?"
    walk(project, [(argv, 2, says) for argv in EVERY_PROJECT_COMMAND])


def test_missing_data_file_names_the_key_and_the_path(project: Path) -> None:
    edit(project / "mooring.toml", r"^train = .*$", 'train = "nowhere.csv"')
    says = "[data] train = 'nowhere.csv' does not exist"
    walk(
        project,
        [
            (["run"], 2, says),
            (["train"], 2, says),
            (["run", "--train-data", "fresh.csv"], 2, "--train-data file 'fresh.csv'"),
            (["evaluate", "--data", "gone.csv"], 2, "no trained model"),
            (["score", "-d", "gone.csv", "-o", "o"], 2, "data source 'gone.csv' does not exist"),
            (["validate", "gone.csv"], 2, "data source 'gone.csv' does not exist"),
        ],
    )


def test_missing_label_column_lists_the_columns(project: Path) -> None:
    edit(project / "mooring.toml", r'^label = "class"$', 'label = "income"')
    says = "[data] label 'income' is not a column of the train data"
    walk(project, [(["run"], 2, says), (["train"], 2, says)])
    walk(project, [(["run", "--train-data", str(project / "nope.csv")], 2, "--train-data")])


def test_unknown_model_folder_or_version(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    not_a_model = tmp_path_factory.mktemp("not-a-model")
    walk(
        project,
        [
            (["evaluate"], 2, "no trained model under"),
            (["evaluate", "--model", "nowhere"], 2, "--model 'nowhere' does not exist"),
            (["evaluate", "-m", str(not_a_model)], 2, "is not a mooring model folder"),
            (["models", "show", "nosuch"], 2, "nothing is in the registry yet"),
            (["export", "lite", "nosuch"], 2, "nothing is in the registry yet"),
        ],
    )


def test_no_production_version_yet(project: Path) -> None:
    """Nothing trained: scoring and showing the model say so, and leave the project without
    a registry (serve's banner: test_quiet)."""
    (project / "in.csv").write_text("age\n1\n", encoding="utf-8")
    walk(
        project,
        [
            (["score", "-d", "in.csv", "-o", "o"], 2, "nothing is in the registry yet"),
            (["models", "show", "income"], 2, "nothing is in the registry yet"),
            (["explain", "0c5e7f3a"], 2, "holds no answer of model 'income' to request"),
        ],
    )
    assert not list(project.rglob("registry.db"))


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_port_in_use_is_said_before_anything_starts(project: Path, held_port: int) -> None:
    says = f"port {held_port} on 127.0.0.1 is in use (by another mooring serve?); pass --port N"
    walk(
        project,
        [
            (["serve", "--workers", "1", "--port", str(held_port)], 2, says),
            (["serve", "--workers", "2", f"--port={held_port}"], 2, says),
            (["ui", "--port", str(held_port)], 2, says),
            (["serve", "--port", "1", "--grpc-port", str(held_port)], 2, "--grpc-port N"),
        ],
    )


def _home_under_a_file(project: Path) -> None:
    (project / "afile").write_text("", encoding="utf-8")
    edit(project / "mooring.toml", r'^home = "state"$', 'home = "afile/sub"')


def _home_read_only(project: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder; the file case covers it")
    (project / "ro").mkdir(mode=0o500)
    edit(project / "mooring.toml", r'^home = "state"$', 'home = "ro/sub"')


@pytest.mark.parametrize("setup", [_home_under_a_file, _home_read_only], ids=["file", "chmod"])
def test_unusable_home_folder(project: Path, setup: Callable[[Path], None]) -> None:
    setup(project)
    says = "[project] home = "
    walk(project, [(["run"], 2, says), (["train"], 2, says), (["serve"], 2, says)])
