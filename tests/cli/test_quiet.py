"""A quiet console: TensorFlow's and YDF's native lines stay off a user's terminal unless
asked for, training says what it trains, ``mooring serve`` says where it listens and what
it serves, and logs requests only when asked to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mooring._tensorflow import LOGS_ENV
from mooring.cli import TF_LOGS_ENV
from tests._support.candidates import write_candidates_project
from tests._support.project import request_rows, write_adult
from tests._support.server import free_port
from tests._support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("quiet-cli")]

NATIVE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )", re.MULTILINE)


def _evaluate(tmp_path: Path, *args: str, **env: str) -> str:
    """``mooring evaluate`` on a project with no trained model: loads TensorFlow, then
    stops with a one-line error (exit 2)."""
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "m"\nhome = "home"\n[data]\ntrain = "t.csv"\n')
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    result = subprocess.run(
        [sys.executable, "-m", "mooring", "evaluate", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )
    assert result.returncode == 2, result.stderr
    assert "(or `mooring train`) first" in " ".join(result.stderr.split())
    return result.stderr


def test_native_tensorflow_lines_are_hidden_unless_asked_for(tmp_path: Path) -> None:
    quiet = _evaluate(tmp_path)
    assert not NATIVE.search(quiet), quiet
    assert "Traceback" not in quiet
    loud = _evaluate(tmp_path, MOORING_TF_LOGS="1")
    if not NATIVE.search(loud):
        pytest.skip("this TensorFlow build prints nothing when it loads")
    assert len(loud.splitlines()) > len(quiet.splitlines())

    # --verbose (a root option, also taken after the command) does what the variable does.
    verbose = _evaluate(tmp_path, "--verbose")
    assert len(verbose.splitlines()) > len(quiet.splitlines())
    assert TF_LOGS_ENV == LOGS_ENV


JSON_LINE = re.compile(r'^\{"request_id":', re.MULTILINE)


def _quiet_env() -> dict[str, str]:
    """The environment of a user who set none of the logging variables."""
    drop = ("TF_CPP_MIN_LOG_LEVEL", LOGS_ENV)
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``mooring run`` of three candidates (linear, mlp, gbt): the project's file and
    what the command printed (stdout, then stderr). Its [features] lists a column it
    also excludes, which each candidate's features warn of."""
    root = tmp_path_factory.mktemp("quiet")
    toml = write_candidates_project(root / "project", write_adult(root / "data"))
    with toml.open("a", encoding="utf-8") as file:
        file.write('\n[features]\nfnlwgt = { transform = "log_normalize" }\nexclude = ["fnlwgt"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "mooring", "run", "-c", str(toml)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_quiet_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return toml, result.stdout + result.stderr


def test_run_names_each_candidate_and_prints_no_native_lines(ran: tuple[Path, str]) -> None:
    _, output = ran
    # The gbt candidate's export, parity check and evaluation load YDF's op library,
    # whose native lines ("I0000 … kernel.cc] Loading model from path") are hidden.
    assert not NATIVE.search(output), output
    # Nor a library's log line ("WARNING:absl:…"). Adult's names print none; the zoo's
    # wine table ('od280/od315_of_diluted_wines') is the one that did, checked in
    # tests/benchmarks/test_bench_zoo.py.
    assert not re.search(r"^WARNING:", output, re.MULTILINE), output
    assert re.search(
        r"^training candidate mlp \(mlp\): [\d,]+ rows, 1 epoch\(s\)$", output, re.MULTILINE
    ), output
    assert re.search(r"^mlp epoch 1/1 · [\d,]+ rows  .*val_auc", output, re.MULTILINE)
    # The linear model is solved: one line a pass over the rows, with its loss.
    assert re.search(
        r"^training candidate linear \(linear\): [\d,]+ rows, solved in at most 50 passes$",
        output,
        re.MULTILINE,
    ), output
    assert re.search(r"^linear epoch 2/50 · [\d,]+ rows  loss 0\.\d+$", output, re.MULTILINE)
    assert re.search(r"^training candidate gbt \(gbt\): [\d,]+ rows$", output, re.MULTILINE)
    assert not re.search(r"^epoch \d", output, re.MULTILINE), "an epoch line without its model"
    # A warning once a run, not once a candidate.
    assert output.count("[features] lists 'fnlwgt' and also excludes it") == 1, output


class _Serve:
    """``mooring serve ARGS`` on a free port, its stdout and stderr in a file."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"serve-{self.port}.log"
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mooring", "serve", "--port", str(self.port), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=_quiet_env(),
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str) -> None:
        def seen() -> bool:
            assert self.proc.poll() is None, self.output()
            return text in self.output()

        wait_until(seen, f"{text!r} in the server's output", seen=self.output)

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        return self.output()


def test_serve_says_where_it_listens_and_logs_no_requests_by_default(
    ran: tuple[Path, str],
) -> None:
    toml, _ = ran
    folder = toml.parent
    [gbt] = folder.glob("state/runs/*/train/gbt/model")
    grpc = free_port()
    serve = _Serve(
        folder, "-c", str(toml), "--model-dir", str(gbt), "--workers", "1", "--grpc-port", str(grpc)
    )
    try:
        serve.wait_for("model 'income': production version 1 loaded")
        rows = request_rows(toml.parent.parent / "data" / "adult.test.csv", 2)
        rows = [{k: v for k, v in row.items() if k != "fnlwgt"} for row in rows]  # excluded
        answer = httpx.post(f"{serve.url}/v1/models/income:predict", json={"instances": rows})
        assert answer.status_code == 200, answer.text
    finally:
        output = serve.stop()
    assert f"mooring serve: listening on {serve.url} " in output, output
    assert f"  gRPC       127.0.0.1:{grpc} " in output
    assert f"POST {serve.url}/v1/models/income:predict" in output
    assert "dashboard" not in output  # --model-dir serves no dashboard
    assert not JSON_LINE.search(output), output
    # A tree model: YDF's op library loads and says nothing.
    assert not NATIVE.search(output), output


def test_serve_without_a_deployed_version_says_how_to_get_one(tmp_path: Path) -> None:
    """Started before the first run, the server creates the registry without Alembic's
    migration notes, and a model not registered yet is not a registry outage."""
    toml = tmp_path / "mooring.toml"
    toml.write_text(
        '[project]\nname = "income"\nhome = "state"\n[data]\ntrain = "t.csv"\n',
        encoding="utf-8",
    )
    serve = _Serve(tmp_path, "-c", str(toml), "--workers", "2", "--access-log")
    try:
        serve.wait_for("deployed yet")
        httpx.get(f"{serve.url}/v1/models/income")  # its status: no version yet
        wait_until(lambda: JSON_LINE.search(serve.output()), "the request's access-log line")
        metrics = httpx.get(f"{serve.url}/metrics").text
    finally:
        output = serve.stop()
    up = [line for line in metrics.splitlines() if line.startswith("mooring_registry_up{")]
    assert up and all(line.endswith(" 1.0") for line in up), up
    assert "alembic" not in output and "Running upgrade" not in output, output
    assert "deployment not read" not in output, output
    assert not (tmp_path / "state").exists()  # the project is left as it was
    assert f"mooring serve: listening on {serve.url} (" in output, output
    assert "2 workers" in output
    assert f"  dashboard  {serve.url}/ui/" in output
    assert f"no version of 'income' is deployed yet: run `mooring run -c {toml}`" in output
    assert '"path":"/v1/models/income"' in output
    assert "unmapped" not in output  # the supervisor's memory notes are debug lines
