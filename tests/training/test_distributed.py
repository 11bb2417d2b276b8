"""Training on several workers: shards, the supervisor, and real jobs on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.errors import DataError, MooringError, UsageError
from mooring.features._inputs import predict_saved_model
from mooring.formats._labels import LabelEncoding
from mooring.formats._split import training_rows
from mooring.registry import Registry
from mooring.training._distributed import prepare_job, supervise
from mooring.training._fit import TrainingResult
from mooring.training._job import (
    ROW_COLUMN,
    Job,
    cluster_spec,
    free_ports,
    local_batch,
    plan_job,
)
from mooring.training._worker import _auc
from tests._support.cli import run_mooring
from tests._support.distributed import adult_auc, adult_rows
from tests._support.project import MODEL, write_adult, write_project
from tests._support.serve_process import ServeProcess
from tests._support.shared import built_once, shared_root
from tests._support.waiting import wait_until


def _job(tmp_path: Path, **training: object) -> Job:
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": "m"},
            "data": {"train": "t.csv"},
            "training": {"workers": 2, **training},
        },
        root=tmp_path,
    )
    job = Job(
        cfg=cfg,
        spec=None,  # type: ignore[arg-type]
        label=None,  # type: ignore[arg-type]
        seed=1,
        started="",
        fingerprint="f",
        workers=2,
        engine="local",
        output_dir=tmp_path,
        shards=[],
        parity_path="",
    )
    job.folder.mkdir(parents=True)
    return job


class _Sleeper:
    """A stand-in worker: a real process that never joins, or exits with ``code``."""

    def __init__(self, code: int | None = None) -> None:
        script = "import time; time.sleep(600)" if code is None else f"raise SystemExit({code})"
        self.popen = subprocess.Popen([sys.executable, "-c", script])
        if code is not None:
            self.popen.wait()

    def poll(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait()


def test_the_global_batch_is_split_and_per_worker_batches_scale_the_rate() -> None:
    assert local_batch(256, 2, "global") == (128, 256, 1.0)
    assert local_batch(100, 3, "global") == (34, 102, 1.0)  # rounded up to a multiple
    assert local_batch(256, 4, "per_worker") == (256, 1024, 4.0)


def test_cluster_spec_names_the_worker() -> None:
    spec = cluster_spec(["a:1", "b:2"], 1)
    assert spec == {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.floats(0.0, 0.9999), st.floats(0.1, 5.0)),
        min_size=4,
        max_size=200,
    )
)
def test_the_auc_from_score_histograms_is_sklearns_within_a_bin(
    rows: list[tuple[int, float, float]],
) -> None:
    labels = np.asarray([r[0] for r in rows])
    if labels.min() == labels.max():
        return
    # Scores on the histogram's bin centres: no two classes share a bin unless tied.
    scores = (np.floor(np.asarray([r[1] for r in rows]) * 1000) + 0.5) / 1000
    weights = np.asarray([r[2] for r in rows])
    bins = (scores * 1000).astype(int)
    pos = np.bincount(bins, weights=weights * labels, minlength=1000)
    neg = np.bincount(bins, weights=weights * (1 - labels), minlength=1000)
    expected = roc_auc_score(labels, scores, sample_weight=weights)
    assert _auc(pos, neg) == pytest.approx(expected, abs=1e-9)


def test_shards_hold_every_row_once_and_none_the_whole_file(
    tmp_path: Path, adult_train: Path
) -> None:
    cfg = load_config(Path(adult_train).parent / "mooring.toml")
    options = ReadOptions.from_config(cfg.data)
    labels = read_table(adult_train, options).column(str(cfg.data.label))
    vocabulary = tuple(sorted({v for v in labels.to_pylist() if v is not None}))
    job = prepare_job(
        cfg,
        spec=None,  # type: ignore[arg-type]
        label=LabelEncoding(str(cfg.data.label), "binary", vocabulary),
        source=adult_train,
        options=options,
        seed=1,
        started="",
        fingerprint="f",
        output_dir=tmp_path,
        workers=3,
        engine="local",
        parity_table=lambda: read_table(adult_train, options).slice(0, 10),
    )
    total = read_table(adult_train, options).num_rows
    numbers = [pq.read_table(p).column(ROW_COLUMN).to_numpy() for p in job.shards]
    assert sorted(np.concatenate(numbers).tolist()) == list(range(total))
    assert all(abs(len(n) - total / 3) <= 3 for n in numbers)
    assert Job.load(job.folder).shards == job.shards
    # Planned once, by the launcher, from the rows a single process trains on.
    assert job.steps is not None
    assert job.steps.rows == training_rows(labels, cfg.model.validation_split, 1)
    assert job.steps == plan_job(cfg, job.steps.rows)


def test_a_port_in_use_is_refused_before_any_worker_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"worker 0 cannot listen on 127.0.0.1:{port}"):
            free_ports(2, port)


def test_workers_that_never_join_fail_the_job_within_the_timeout(tmp_path: Path) -> None:
    job = _job(tmp_path, start_timeout=1.0)
    started: list[_Sleeper] = []

    def start(job: Job, attempt: int) -> list[_Sleeper]:
        started.extend([_Sleeper(), _Sleeper()])
        return started[-2:]

    with pytest.raises(UsageError, match=r"worker\(s\) \[0, 1\] did not join .* within 1 s"):
        supervise(job, start, poll_seconds=0.05)  # type: ignore[arg-type]
    assert all(s.poll() is not None for s in started)  # none is left running


def test_a_worker_that_keeps_dying_ends_the_job_after_max_restarts(tmp_path: Path) -> None:
    job = _job(tmp_path, max_restarts=2)
    attempts: list[int] = []

    def start(job: Job, attempt: int) -> list[_Sleeper]:
        attempts.append(attempt)
        return [_Sleeper(), _Sleeper(1)]

    with pytest.raises(MooringError, match=r"worker 1 died \(exit code 1\) .* restarted 2 time"):
        supervise(job, start, poll_seconds=0.05)  # type: ignore[arg-type]
    assert attempts == [0, 1, 2]


def test_the_restart_names_the_killed_worker_not_the_peer_that_stopped_with_it(
    tmp_path: Path,
) -> None:
    job = _job(tmp_path, max_restarts=0)

    def start(job: Job, attempt: int) -> list[_Sleeper]:
        # Worker 0 lost its peer (exit 1); worker 1 was killed.
        killed = _Sleeper()
        killed.popen.send_signal(signal.SIGKILL)
        killed.popen.wait()
        return [_Sleeper(1), killed]

    with pytest.raises(MooringError, match=r"worker 1 died \(signal 9\)"):
        supervise(job, start, poll_seconds=0.05)  # type: ignore[arg-type]


def test_a_workers_own_error_is_raised_as_itself_and_never_retried(tmp_path: Path) -> None:
    job = _job(tmp_path)
    attempts: list[int] = []

    def start(job: Job, attempt: int) -> list[_Sleeper]:
        attempts.append(attempt)
        job.error_file(1).write_text(
            json.dumps({"type": "DataError", "message": "label 'class' is missing"}), "utf-8"
        )
        return [_Sleeper(), _Sleeper(3)]

    with pytest.raises(DataError, match="label 'class' is missing"):
        supervise(job, start, poll_seconds=0.05)  # type: ignore[arg-type]
    assert attempts == [0]


def test_worker_index_without_peers_is_a_usage_error(tmp_path: Path) -> None:
    toml = write_project(tmp_path / "p", write_adult(tmp_path / "data", train_rows=300))
    done = run_mooring("train", "-c", str(toml), "--worker-index", "0", "--workers", "2")
    assert done.returncode == 2
    assert "--worker-index and --peers go together" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_two_local_workers_train_what_one_process_trains(
    tmp_path: Path, adult_training: Callable[..., TrainingResult]
) -> None:
    one, two = adult_training(1), adult_training(2)
    assert abs(adult_auc(two.model_dir) - adult_auc(one.model_dir)) <= 0.003
    assert two.parity is not None and two.parity.passed
    distributed = two.record.distributed
    assert distributed["workers"] == 2 and distributed["global_batch"] == 256
    assert distributed["local_batch"] == 128 and distributed["restarts"] == []
    assert not (two.model_dir.parent / "workers" / "shards").exists()
    # It serves: the server's answers are the SavedModel's own.
    rows = adult_rows(5)
    (tmp_path / "srv").mkdir()
    with ServeProcess(tmp_path / "srv", two.model_dir) as server:
        answer = httpx.post(f"{server.url}/v1/models/income:predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    served = [p["probabilities"][1] for p in answer.json()["predictions"]]
    expected = predict_saved_model(two.model_dir, pa.Table.from_pylist(rows))["probabilities"]
    assert served == pytest.approx(expected[:, 1].tolist(), abs=1e-6)


@pytest.mark.slow
def test_trees_on_two_ydf_workers_score_what_one_process_scores(
    adult_training: Callable[..., TrainingResult],
) -> None:
    one, two = adult_training(1, "gbt"), adult_training(2, "gbt")
    assert abs(adult_auc(two.model_dir) - adult_auc(one.model_dir)) <= 0.003
    assert two.parity is not None and two.parity.passed
    assert two.record.distributed == {"workers": 2, "engine": "ydf", "restarts": []}
    folder = two.training_record_path.parent
    assert not (folder / "trees-shards").exists()
    assert list((folder / "trees-work").iterdir())  # the manager's checkpoints


#: Trees enough that the trees are still growing well after a worker is killed a second
#: into them (some 9 s on an idle 2-core machine), on rows few enough to cache quickly.
TREES = 100


def _trees_project(tmp_path: Path, extra: str = "") -> Path:
    data = write_adult(tmp_path / "data", train_rows=10000)
    model = (
        f'[model]\nkind = "gbt"\nparity_records = 20\nseed = 42\n[model.gbt]\nnum_trees = {TREES}\n'
    )
    return write_project(
        tmp_path / "p", data, model=model, extra=f"[training]\nworkers = 2\n{extra}"
    )


def _train_killing_a_ydf_worker(toml: Path, output: Path) -> subprocess.CompletedProcess[str]:
    command = ["train", "-c", str(toml), "--output", str(output), "--quiet"]
    run = subprocess.Popen(
        [sys.executable, "-m", "mooring", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    work = output / "trees-work"
    wait_until(
        lambda: (work / "ydf-manager.log").is_file() or run.poll() is not None,
        "YDF's manager to start",
    )
    if run.poll() is not None:  # it ended before the trees began: say why
        raise AssertionError(
            f"mooring train ended ({run.returncode}) first:\n{run.communicate()[0]}"
        )
    time.sleep(1.0)  # into the trees
    os.kill(json.loads((work / "ydf-workers.json").read_text("utf-8"))["pids"][1], signal.SIGKILL)
    out, _ = run.communicate(timeout=300)
    return subprocess.CompletedProcess(run.args, run.returncode, out, "")


@pytest.mark.slow
def test_a_killed_ydf_worker_is_started_again_and_the_trees_finish(tmp_path: Path) -> None:
    toml = _trees_project(tmp_path)
    done = _train_killing_a_ydf_worker(toml, tmp_path / "run")
    assert done.returncode == 0, done.stdout
    record = json.loads((tmp_path / "run" / "run.json").read_text("utf-8"))
    assert record["distributed"]["restarts"] == ["YDF worker 1 died (signal 9)"]
    assert record["trees"] == TREES and record["parity"]["passed"] is True


@pytest.mark.slow
def test_a_ydf_worker_past_max_restarts_fails_the_run_instead_of_waiting(tmp_path: Path) -> None:
    toml = _trees_project(tmp_path, "max_restarts = 0\n")
    done = _train_killing_a_ydf_worker(toml, tmp_path / "run")
    assert done.returncode == 2, done.stdout
    assert "YDF worker 1 died" in done.stdout and "nothing was registered" in done.stdout
    assert "Traceback" not in done.stdout
    assert not (tmp_path / "run" / "model").exists()


# Epochs of a few steps each: long enough to kill a worker mid-run, short for the suite.
MANY_EPOCHS = MODEL.replace("epochs = 1", "epochs = 6\nbatch_size = 256")


def _train_as_two_pods(folder: Path) -> None:
    """The restart tests' model (``MANY_EPOCHS``, 3,000 rows) trained without interruption
    by two workers started by hand, as a Kubernetes Indexed Job starts its pods: ``shared``
    is their output, ``pods.json`` each one's exit code and output."""
    data = write_adult(folder / "data", train_rows=3000)
    toml = write_project(folder / "p", data, model=MANY_EPOCHS)
    peers = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    shared = str(folder / "shared")
    command = [sys.executable, "-m", "mooring", "train", "-c", str(toml), "--output", shared]
    command += ["--workers", "2", "--peers", peers, "--resume"]
    pods = [
        subprocess.Popen(
            [*command, "--worker-index", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        for i in (1, 0)  # worker 1 first: it waits for worker 0's shards
    ]
    ended = [
        {"output": pod.communicate(timeout=300)[0], "returncode": pod.returncode} for pod in pods
    ]
    (folder / "pods.json").write_text(json.dumps(ended), "utf-8")


@pytest.fixture(scope="session")
def uninterrupted_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two workers trained ``MANY_EPOCHS`` uninterrupted, once per run (read-only): the
    pods test checks the job, the restart test compares its weights with theirs."""
    return built_once(shared_root(tmp_path_factory) / "two-pods-uninterrupted", _train_as_two_pods)


def _start_run(toml: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mooring", "run", "-c", str(toml)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _kill_worker_after_first_epoch(home: Path, index: int) -> None:
    epochs = wait_until(
        lambda: next(
            (p for p in home.glob("runs/*/train/workers/epochs.jsonl") if p.stat().st_size), None
        ),
        "the chief's first epoch",
    )
    pids = json.loads((epochs.parent / "workers.json").read_text("utf-8"))["pids"]
    os.kill(pids[index], signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_worker_restarts_the_job_which_registers_one_version(
    tmp_path: Path, uninterrupted_job: Path
) -> None:
    data = write_adult(tmp_path / "data", train_rows=3000)
    toml = write_project(tmp_path / "p", data, model=MANY_EPOCHS, extra="[training]\nworkers = 2\n")
    run = _start_run(toml)
    _kill_worker_after_first_epoch(tmp_path / "p" / "state", 1)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output
    with Registry.from_config(load_config(toml)) as registry:
        versions = registry.versions("income")
    assert [v.version for v in versions] == [1]
    lineage = versions[0].lineage
    assert lineage.training_workers == 2 and lineage.training_restarts == 1
    record = json.loads(next((tmp_path / "p" / "state").glob("runs/*/train/run.json")).read_text())
    assert record["distributed"]["restarts"] == ["worker 1 died (signal 9)"]
    assert record["parity"]["passed"] is True
    # The restarted job ends where an uninterrupted one (the pods' job) does, bit for bit:
    # the same seed gives the same weights run to run, a restart included.
    resumed = Path(record["model_dir"]).parent / "checkpoints" / "epoch-0006" / "weights.npz"
    clean = uninterrupted_job / "shared" / "checkpoints" / "epoch-0006" / "weights.npz"
    with np.load(resumed) as a, np.load(clean) as b:
        assert a.files == b.files
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.slow
def test_a_job_out_of_restarts_registers_nothing(tmp_path: Path) -> None:
    data = write_adult(tmp_path / "data", train_rows=3000)
    toml = write_project(
        tmp_path / "p",
        data,
        model=MANY_EPOCHS,
        extra="[training]\nworkers = 2\nmax_restarts = 0\n",
    )
    run = _start_run(toml)
    _kill_worker_after_first_epoch(tmp_path / "p" / "state", 0)
    output, _ = run.communicate(timeout=600)
    assert run.returncode != 0
    assert "worker 0 died (signal 9)" in output and "nothing was registered" in output
    assert "Traceback" not in output
    with Registry.from_config(load_config(toml)) as registry:
        assert registry.models() == []
    assert not list((tmp_path / "p" / "state").glob("runs/*/train/model"))


@pytest.mark.slow
def test_pods_started_elsewhere_train_together_as_the_kubernetes_job_runs_them(
    uninterrupted_job: Path,
) -> None:
    shared = uninterrupted_job / "shared"
    outputs = json.loads((uninterrupted_job / "pods.json").read_text("utf-8"))
    assert [pod["returncode"] for pod in outputs] == [0, 0], outputs
    record = json.loads((shared / "run.json").read_text("utf-8"))
    assert record["distributed"]["engine"] == "kubernetes"
    assert record["distributed"]["workers"] == 2 and record["parity"]["passed"] is True
    assert (shared / "model" / "saved_model.pb").is_file()
