"""``mooring run`` / ``init`` / ``status`` as a user runs them: real subprocesses, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mooring._project import Project
from mooring.cli import main
from mooring.config import load_config
from mooring.errors import ConfigError
from mooring.pipeline._run import find_runs
from mooring.pipeline._steps import validate as validate_step
from mooring.pipeline._workspace import Workspace
from mooring.registry import Registry
from tests._support.cli import mooring_in_process, python_handles_sigint
from tests._support.cli import run_mooring as mooring
from tests._support.project import break_ages, edit, write_adult, write_project
from tests._support.waiting import PATIENCE, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline-cli")]

# Each command is a new process that hashes mooring's source for the code version; while
# the source is being edited next to the tests, the version alone keeps the caches steady.
PACKAGE_VERSION = 'code_fingerprint = "package"\n'


# The command line's entry point, then whether the command imported TensorFlow.
MAIN_THEN_TENSORFLOW = (
    "import sys; from mooring.cli import main; code = main(sys.argv[1:]); "
    "print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr); sys.exit(code)"
)


def without_tensorflow(*args: str) -> subprocess.CompletedProcess[str]:
    """``mooring ARGS`` in a fresh interpreter, which succeeds without importing TensorFlow."""
    done = subprocess.run(
        [sys.executable, "-c", MAIN_THEN_TENSORFLOW, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "tensorflow imported: False", done.stderr
    return done


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_adult(tmp_path_factory.mktemp("adult-cli"))


def test_run_then_cached_rerun_then_failed_gate(tmp_path: Path, data: dict[str, Path]) -> None:
    toml = write_project(tmp_path, data, extra=PACKAGE_VERSION)
    first = mooring("run", "--config", str(toml), "--json")
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["status"] == "succeeded" and record["result"]["version"] == 1
    assert record["result"]["deployed_as"] == "production"
    assert (tmp_path / "state" / "runs" / record["run_id"] / "run.json").is_file()

    again = without_tensorflow("run", "-c", str(toml), "--json")  # no step needed it
    cached = json.loads(again.stdout)
    assert cached["run_id"] != record["run_id"]
    assert cached["cached_steps"] == ["validate", "train", "evaluate", "gate", "register", "deploy"]
    assert not (tmp_path / "state" / "runs" / cached["run_id"] / "train").exists()

    status = mooring("status", "-c", str(toml), "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["production"] == 1 and state["canary"] is None
    assert state["last_run"]["run_id"] == cached["run_id"]
    # A monitor tick reads the outputs frozen at registration: no model, no TensorFlow.
    tick = without_tensorflow("monitor", "-c", str(toml), "--json")
    assert json.loads(tick.stdout)["rollout"]["action"] == "idle"

    edit(toml, r"^lower = 0.7$", "lower = 0.9999")
    rejected = mooring("run", "-c", str(toml))
    assert rejected.returncode == 1
    assert "not blessed" in rejected.stderr and "nothing was deployed" in rejected.stderr
    assert "Traceback" not in rejected.stderr
    with Registry.from_config(load_config(toml)) as registry:
        assert len(registry.versions("income")) == 1
        assert registry.deployment("income").production == 1


def test_broken_data_file_exits_1_with_the_contract_error(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    broken = break_ages(data["test"], tmp_path / "broken.csv")
    toml = write_project(tmp_path / "project", {**data, "test": broken})
    result = mooring("run", "-c", str(toml))
    assert result.returncode == 1, result.stderr
    assert "data contract failed" in result.stderr and "age" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "project" / "state" / "registry.db").exists()


def test_bad_config_exits_2(tmp_path: Path, data: dict[str, Path]) -> None:
    toml = write_project(tmp_path, data, extra="replay_max_flip_rate = 2\n")
    result = mooring("run", "-c", str(toml))
    assert result.returncode == 2
    assert "replay_max_flip_rate" in result.stderr


def test_a_project_without_eval_data_stops_before_training(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    toml = write_project(tmp_path, data)
    edit(toml, r'eval = "[^"]*"\n', "")
    done = mooring_in_process("run", "-c", str(toml))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "[data] eval is not set" in done.stderr and "nothing was trained" in done.stderr
    assert not (tmp_path / "state" / "runs").exists()  # no training time was spent
    with pytest.raises(ConfigError, match=r"held-out file .* nothing was trained"):
        Project.load(toml).run()


def test_run_after_train_evaluates_the_model_train_made(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    """The tutorial's order: `mooring train`, then `mooring run`, which reuses that model
    (same data, contract, model and code), and a train with another [model] is not."""
    toml = write_project(tmp_path, data)
    trained = mooring_in_process("train", "-c", str(toml), "--json")
    assert trained.returncode == 0, trained.stderr
    model_dir = json.loads(trained.stdout)["model_dir"]
    run = mooring_in_process("run", "-c", str(toml), "--json")
    assert run.returncode == 0, run.stderr
    steps = {s["name"]: s for s in json.loads(run.stdout)["steps"]}
    assert steps["train"]["status"] == "cached", steps["train"]
    assert steps["train"]["outputs"]["model_dir"] == model_dir
    assert "mooring train" in steps["train"]["message"]
    with Registry.from_config(load_config(toml)) as registry:
        assert registry.get("income").lineage.model_key == steps["train"]["key"]
    # Trained with a [model] the project does not have (--epochs 2): never the run's.
    other = mooring_in_process("train", "-c", str(toml), "--epochs", "2", "--json")
    assert other.returncode == 0, other.stderr
    again = mooring_in_process("run", "-c", str(toml), "--json")
    steps = {s["name"]: s for s in json.loads(again.stdout)["steps"]}
    assert steps["train"]["outputs"]["model_dir"] == model_dir
    assert json.loads(other.stdout)["model_dir"] != model_dir


def test_a_ctrl_c_whose_interrupt_python_dropped_still_stops_the_run_at_the_next_step(
    tmp_path: Path, data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGINT's handler may run inside a weak reference's callback (objects freed after a
    # step's work): Python drops the KeyboardInterrupt raised there and goes on.
    checked_overlap = validate_step.refuse_overlap
    dropped: list[BaseException | None] = []

    def ctrl_c_inside_a_callback(ws: Workspace) -> dict[str, object] | None:
        found = checked_overlap(ws)
        freed = _Freed()
        ref = weakref.ref(freed, lambda _: signal.raise_signal(signal.SIGINT))
        del freed
        assert ref() is None
        return found

    monkeypatch.setattr(validate_step, "refuse_overlap", ctrl_c_inside_a_callback)
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))
    toml = write_project(tmp_path, data, extra=PACKAGE_VERSION)
    with python_handles_sigint():
        outcome = mooring_in_process("run", "-c", str(toml))
    assert [type(e) for e in dropped] == [KeyboardInterrupt]
    assert outcome.returncode == 130, outcome.stderr
    assert outcome.stderr.splitlines()[-1:] == [
        "interrupted; the next `mooring run` continues it where it stopped"
    ], outcome.stderr
    # It stopped after validate, before training began; the next run starts there.
    [record] = find_runs(tmp_path / "state")
    assert record.status == "interrupted"
    stored = record.to_dict()
    assert stored["error"]["step"] == "train", stored["error"]
    assert stored["error"]["type"] == "KeyboardInterrupt"
    steps = {s["name"]: s["status"] for s in stored["steps"]}
    assert steps["validate"] == "done" and steps["train"] == "pending", steps


class _Freed:
    """An object whose weak reference's callback runs when it is freed."""


def test_killed_run_is_resumed_by_the_next_run(tmp_path: Path, data: dict[str, Path]) -> None:
    # [data] train names a file that is not there: --train-data supplies it on both runs.
    toml = write_project(tmp_path, data, train="fresh.csv", extra=PACKAGE_VERSION)
    command = [sys.executable, "-m", "mooring", "run", "-c", str(toml)]
    command += ["--train-data", str(data["train"]), "--json"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    runs = tmp_path / "state" / "runs"

    def training() -> str | None:
        """The run's id once its train step is running."""
        assert process.poll() is None, "the run finished before it could be killed"
        for path in runs.glob("*/run.json"):
            try:
                record = json.loads(path.read_text())
            except ValueError:
                continue  # being written
            running = [s["name"] for s in record["steps"] if s["status"] == "running"]
            if running == ["train"]:
                return str(record["run_id"])
        return None

    try:
        killed_in = wait_until(training, "the run to start its train step", timeout=240)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=PATIENCE)
    assert process.returncode == -signal.SIGKILL
    stale = json.loads((runs / killed_in / "run.json").read_text())
    assert stale["status"] == "running"  # the process died without a word

    resumed = mooring("run", "-c", str(toml), "--train-data", str(data["train"]), "--json")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(resumed.stdout)
    assert record["run_id"] == killed_in
    assert [a["status"] for a in record["attempts"]] == ["interrupted", "succeeded"]
    assert record["resumed_after"] == "validate"
    steps = {s["name"]: s["status"] for s in record["steps"]}
    assert steps["validate"] == "cached" and steps["train"] == "done"
    assert record["result"]["version"] == 1
    assert record["inputs"]["train_data"] == str(data["train"].resolve())


def test_ctrl_c_while_the_first_model_is_written_leaves_a_run_the_next_one_finishes(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    toml = write_project(tmp_path, data, extra=PACKAGE_VERSION)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with python_handles_sigint():
        process = subprocess.Popen(
            [sys.executable, "-m", "mooring", "run", "-c", str(toml)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    train = tmp_path / "state" / "runs"

    def writing() -> Path | None:
        """The run's train folder once its model is being written."""
        assert process.poll() is None, "the run finished before it could be interrupted"
        found = [*train.glob("*/train/.model.partial-*"), *train.glob("*/train/model")]
        return found[0].parent if found else None

    try:
        folder = wait_until(writing, "the run to write its model", timeout=240)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=PATIENCE)
    assert process.returncode == 130, err
    assert err.splitlines()[-1:] == [
        "interrupted; the next `mooring run` continues it where it stopped"
    ], err
    assert "Traceback" not in err
    # Nothing half-written is left: the model is whole (written before the signal came)
    # or absent.
    assert not list(folder.glob(".model.partial-*"))
    assert not (folder / "model").exists() or (folder / "model" / "mooring.json").is_file()
    # The record says where it stopped (interrupted, or failed where TensorFlow reworded
    # the interrupt): not running, so the next run continues it at once.
    record = json.loads((folder.parent / "run.json").read_text())
    assert record["status"] in ("interrupted", "failed")
    # What a process killed outright while writing in place leaves: the next run
    # recognises both as its own and writes the model again.
    shutil.rmtree(folder / "model", ignore_errors=True)
    (folder / "model" / "variables").mkdir(parents=True)
    (folder / "model" / "saved_model.pb").write_bytes(b"half")
    (folder / ".model.partial-killed").mkdir()

    resumed = mooring_in_process("run", "-c", str(toml), "--json")
    assert resumed.returncode == 0, resumed.stderr
    outcome = json.loads(resumed.stdout)
    assert outcome["run_id"] == folder.parent.name
    assert outcome["result"]["version"] == 1
    assert (folder / "model" / "mooring.json").is_file()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_a_typo_in_a_gate_stops_the_run_before_anything_trains(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    toml = write_project(tmp_path, data, extra=PACKAGE_VERSION)
    edit(toml, r"^lower = 0.7$", 'lower = 0.7\n[[evaluation.gates]]\nmetric = "aucc"\nlower = 0.6')
    done = mooring_in_process("run", "-c", str(toml))
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        "error: [[evaluation.gates]] 2: metric 'aucc' is not a binary metric; did you mean 'auc'?"
    ) in said, said
    [run] = (tmp_path / "state" / "runs").iterdir()
    steps = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["steps"]}
    assert (steps["validate"], steps["train"]) == ("done", "failed")
    assert not (run / "train").exists()


def test_init_writes_a_config_that_loads_and_validates(
    tmp_path: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mooring.toml"
    args = ["init", str(data["train"]), "--eval", str(data["test"])]
    args += ["--na-value", "?", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "class" and "named like a label" in summary["label_reason"]
    assert summary["task"] == "binary" and summary["positive"] == ">50K"
    assert summary["rows"] == 3000
    cfg = load_config(out)
    assert cfg.data.label == "class" and cfg.model.task == "binary"
    assert set(cfg.features.features) == set(summary["columns"]) - {"class"}
    assert cfg.features.features["capital-gain"].transform == "bucketize"
    assert cfg.features.features["workclass"].encoding == "one_hot"
    # No declared gate: the default gates judge, at a threshold chosen for F1.
    assert cfg.evaluation.gates == [] and cfg.evaluation.default_gates
    assert cfg.evaluation.threshold == "f1_optimal"
    # Three candidates by default, picked by the primary metric, gated by the baseline.
    assert [(c.name, c.kind) for c in cfg.model.candidates] == [
        ("linear", "linear"),
        ("mlp", "mlp"),
        ("gbt", "gbt"),
    ]
    assert cfg.model.select == "auc"
    assert [kind for _, kind in ((n, m.kind) for n, m in cfg.model.resolved_candidates())] == [
        "linear",
        "mlp",
        "gbt",
    ]
    assert cfg.rollout.steps[0] < 100
    text = out.read_text()
    assert "#   age: integer" in text and "(label)" in text
    assert Project.load(out).validate().ok
    key = tmp_path / ".mooring" / "audit.key"  # the audit log's HMAC key, private
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600

    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--label", "sex", "--force"]) == 0
    assert load_config(out).data.label == "sex"


def test_init_guesses_the_last_column_and_refuses_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b,score\n" + "".join(f"{i},x{i % 3},{i * 0.5}\n" for i in range(200)))
    out = tmp_path / "mooring.toml"
    assert main(["init", str(data), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "score" and summary["label_reason"] == "the last column"
    assert summary["task"] == "regression" and not summary["warnings"]
    # No --eval: a seeded fifth of the rows is held out, both parts written beside it.
    assert summary["holdout"] == {
        "train": "d.train.parquet",
        "eval": "d.holdout.parquet",
        "train_rows": 160,
        "eval_rows": 40,
        "how": "40 of 200 rows drawn at random (seed 0)",
    }
    cfg = load_config(out)
    assert cfg.data.eval == "d.holdout.parquet" and cfg.evaluation.gates == []
    assert pq.read_metadata(tmp_path / "d.train.parquet").num_rows == 160
    assert main(["init", str(data), "--out", str(out), "--force"]) == 0  # --force rewrites all
    assert main(["init", str(data), "--out", str(tmp_path / "again.toml")]) == 2
    assert "d.train.parquet' already exists; pass --force" in capsys.readouterr().err
    assert not (tmp_path / "again.toml").exists()  # nothing written
    assert main(["init", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_every_command_has_help_with_an_example_and_json_output() -> None:
    from typer.main import get_command

    from mooring.cli import app

    # They serve pages (the dashboard, the documentation) and APIs, or walk a person
    # through the loop (demo, whose state `mooring status --json` then reads): they print
    # no data.
    servers = {"serve", "ui", "docs", "demo"}
    root = get_command(app)
    no_example, no_json = [], []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        for sub_name, sub in (subcommands or {name: command}).items():
            label = f"{name} {sub_name}" if subcommands else name
            if "mooring" not in (sub.epilog or ""):
                no_example.append(label)
            options = {o for param in sub.params for o in getattr(param, "opts", [])}
            if label not in servers and "--json" not in options:
                no_json.append(label)
    assert no_example == [], f"commands without an example in --help: {no_example}"
    assert no_json == [], f"commands printing data without --json: {no_json}"


def test_init_takes_a_delimiter_and_exclusions(
    tmp_path: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text(data["train"].read_text().replace(",", ";"))
    out = tmp_path / "mooring.toml"
    assert main(["init", str(semicolons), "--out", str(out)]) == 0  # the file's own
    assert 'delimiter = ";"' in out.read_text()
    args = ["init", str(semicolons), "--delimiter", ";", "--exclude", "fnlwgt", "--out", str(out)]
    args.append("--force")
    assert main([*args, "--na-value", "?"]) == 0
    text = out.read_text()
    assert 'delimiter = ";"' in text and 'exclude = ["fnlwgt"]' in text
    # Logging and the drift check's sample size are chosen together (see the comments).
    cfg = load_config(out)
    assert cfg.serving.log_sample_rate == 1.0 and cfg.monitoring.min_samples == 1000
    assert "\nfnlwgt = {" not in text
    assert Project.load(out).validate().ok
    # Excluding a column init proposed a line for is not a conflict: exclusion wins.
    edit(out, r'^exclude = \["fnlwgt"\]$', 'exclude = ["fnlwgt", "age"]')
    assert "\nage = {" in out.read_text()
    assert Project.load(out).validate().ok
    assert main(["init", str(semicolons), "--delimiter", ";", "--exclude", "nope", "--out",
                 str(tmp_path / "x.toml")]) == 2  # fmt: skip
    assert "'nope': not a column" in capsys.readouterr().err
