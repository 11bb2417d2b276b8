"""``mooring serve --model-dir`` without a ``mooring.toml``: a ``.keras`` file, a plain
SavedModel folder and a mooring model folder answer over REST with every setting's
default; a model it cannot serve stops it with exit 2 and the reason, with one process
or several.

Most models served here take ``[None]`` inputs (one value per row), which every loader
serves; one imported model takes a ``[None, None]`` input, which the server decodes as
a tensor and warms up at the inner shape its import recorded (``example_shape``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from mooring.errors import ModelLoadError
from mooring.serving._workers import WorkerRun
from mooring.training._import import import_model
from tests._support.byom import (
    TABULAR_ROWS,
    YDF_ROWS,
    expected_scores,
    ranker_module,
    tabular_keras,
    tabular_saved_model,
    ydf_folder,
)
from tests._support.server import free_port
from tests._support.waiting import wait_until

pytestmark = pytest.mark.slow


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MOORING_CACHE_DIR": str(folder / "cache")}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mooring", "serve", "--no-access-log", *args]


@contextmanager
def _serving(folder: Path, *args: str) -> Iterator[str]:
    """``mooring serve ARGS`` run in ``folder`` (no mooring.toml there) until it is ready;
    its base URL. Stopped with SIGINT on the way out."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            _command("--port", str(port), *args),
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(folder),
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        return httpx.get(f"{url}/v2/health/ready", verify=False).status_code == 200

    try:
        wait_until(
            ready,
            "mooring serve --model-dir to become ready",
            ignoring=(httpx.TransportError,),
            seen=lambda: log.read_text(errors="replace")[-2000:],
        )
        yield url
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _predicted(url: str, name: str) -> list[float]:
    answer = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": TABULAR_ROWS})
    assert answer.status_code == 200, answer.text
    return [float(np.ravel(row)[0]) for row in answer.json()["predictions"]]


def _built(folder: Path, what: str) -> Path:
    if what == "keras":
        return tabular_keras(folder / "income.keras")
    if what == "saved_model":
        return tabular_saved_model(folder / "income")
    source = tabular_saved_model(folder / "exported")
    return import_model(source, folder / "income").folder


@pytest.mark.parametrize(
    ("what", "args"),
    [("keras", ()), ("saved_model", ("--workers", "2")), ("mooring_folder", ())],
)
def test_a_model_is_served_without_a_project_file(
    tmp_path: Path, what: str, args: tuple[str, ...]
) -> None:
    served = _built(tmp_path, what)
    assert not (tmp_path / "mooring.toml").exists()
    with _serving(tmp_path, "--model-dir", str(served.relative_to(tmp_path)), *args) as url:
        # Named after the folder, or the file without .keras: 'income'.
        scores = _predicted(url, "income")
        status = httpx.get(f"{url}/v1/models/income").json()
    np.testing.assert_allclose(scores, expected_scores(TABULAR_ROWS), rtol=1e-5)
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert not (tmp_path / ".mooring").exists()  # nothing written without a project
    if what == "keras":
        assert [p.name for p in (tmp_path / "cache").iterdir()] != []


def test_a_model_name_can_be_given(tmp_path: Path) -> None:
    served = tabular_saved_model(tmp_path / "exported")
    with _serving(tmp_path, "--model-dir", str(served), "--model-name", "churn") as url:
        scores = _predicted(url, "churn")
    np.testing.assert_allclose(scores, expected_scores(TABULAR_ROWS), rtol=1e-5)


def test_an_imported_model_with_a_tensor_input_is_served_from_its_folder(tmp_path: Path) -> None:
    source = ranker_module(tmp_path / "ranker")
    import_model(
        source, tmp_path / "ranker-imported", signature="predict", input_shapes={"ids": (4,)}
    )
    rows = [{"x": 1.0, "ids": [1, 2, 3, 4]}, {"x": 2.0, "ids": [0, 0, 0, 1]}]
    with _serving(tmp_path, "--model-dir", "ranker-imported") as url:
        answer = httpx.post(f"{url}/v1/models/ranker-imported:predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["score"] for p in predictions] == [2.0, 4.0]
    assert [p["count"] for p in predictions] == [10, 1]


def test_a_ydf_folder_is_converted_and_served(tmp_path: Path) -> None:
    ydf_folder(tmp_path / "trees")
    with _serving(tmp_path, "--model-dir", "trees") as url:
        answer = httpx.post(f"{url}/v1/models/trees:predict", json={"instances": YDF_ROWS})
    assert answer.status_code == 200, answer.text
    scores = answer.json()["predictions"]
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def _exits(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command("--port", str(free_port()), *args),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(folder),
    )


def test_a_folder_that_holds_no_model_exits_2_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    # A folder whose asset links outside it: refused before anything reads it.
    (tmp_path / "linked" / "assets").mkdir(parents=True)
    (tmp_path / "linked" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "linked" / "assets" / "leak").symlink_to(tmp_path / "notes.txt")
    for path, says in (
        ("empty", "'empty' is a folder without saved_model.pb"),
        ("notes.txt", "'notes.txt' is a file, neither .keras"),
        ("nowhere", "'nowhere' does not exist"),
        ("linked", "--model-dir 'linked': 'assets/leak' is a symbolic link"),
    ):
        done = _exits(tmp_path, "--model-dir", path)
        assert done.returncode == 2, done.stderr
        assert says in " ".join(done.stderr.split()), done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_model_it_cannot_serve_exits_2_with_the_reason(tmp_path: Path, workers: str) -> None:
    # Its one signature is 'predict': the server serves 'serving_default'.
    ranker_module(tmp_path / "ranker")
    done = _exits(tmp_path, "--model-dir", "ranker", "--workers", workers)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert "ranker' cannot be served" in said, said
    assert "has no 'serving_default' signature (found ['predict'])" in said
    assert "Traceback" not in said
    if workers == "2":
        assert "a worker could not start" in said


def test_a_worker_whose_check_fails_is_never_ready(tmp_path: Path) -> None:
    def refuse() -> None:
        raise ModelLoadError("--model-dir 'x' cannot be served: no serving_default")

    run = WorkerRun(0, tmp_path, os.getpid(), check_ready=refuse)
    with pytest.raises(ModelLoadError, match=r"cannot be served"):
        run.mark_ready()
    assert not run.ready_file().exists()
    WorkerRun(0, tmp_path, os.getpid(), check_ready=lambda: None).mark_ready()
    assert run.ready_file().exists()
