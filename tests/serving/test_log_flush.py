"""``POST /admin/flush`` writes what the server's prediction log holds, in every worker,
so that ``mooring live`` and ``mooring drift`` read what the server has answered; when no
server answers they say how old the newest row they read is."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from starlette.testclient import TestClient

from mooring.cli._log_flush import Flushed, ask_to_flush
from mooring.config import MooringConfig
from mooring.formats._predictions import read_prediction_log
from mooring.serving import RegistrySource, build_app
from mooring.serving._flush import flush_logs
from mooring.serving._follow import follow_notices
from mooring.serving._log import PredictionLog
from mooring.serving._state import ServerState
from mooring.serving._workers import WorkerRun
from tests._support.server import FAST, NAME, ServerThread, free_port, new_registry

#: A log that would write on its own only after an hour or 100,000 rows.
SLOW_LOG = {"log_sample_rate": 1.0, "log_flush_s": 3600.0, "log_flush_rows": 100_000}
ROW = {
    "age": 39.0,
    "hours-per-week": 40.0,
    "workclass": "Private",
    "sex": "Male",
}


def _record(plog: PredictionLog, request_id: str, rows: int = 3) -> None:
    plog.record(
        model=NAME,
        version=1,
        request_id=request_id,
        columns={"age": np.full(rows, 40.0, dtype=np.float32)},
        outputs={"score": np.full(rows, 0.5)},
        rows=rows,
    )


def test_a_flush_writes_what_is_buffered_at_once_and_a_log_that_is_off_says_so(
    tmp_path: Path,
) -> None:
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=100_000, flush_s=3600.0)
    assert plog.flush() is None  # not started: nothing is ever written
    plog.start()
    try:
        _record(plog, "a")
        _record(plog, "b")
        assert plog.flush() == 6
        assert (
            read_prediction_log(str(tmp_path), NAME)["request_id"].to_pylist()
            == ["a"] * 3 + ["b"] * 3
        )
        assert plog.flush() == 0  # nothing more to write: no empty file
        assert len(list(tmp_path.rglob("*.parquet"))) == 1
    finally:
        plog.close()


def test_every_worker_flushes_on_the_notice_and_the_answer_waits_for_them(tmp_path: Path) -> None:
    # Two workers of one run (in this process: a worker is its index and pid), each with
    # its own log buffer; a third ready file is a worker that died. The worker asked to
    # flush writes its own, announces it, and answers once the other has written too.
    (tmp_path / "run").mkdir()
    runs = [WorkerRun(i, tmp_path / "run", os.getppid()) for i in (0, 1)]
    for run in runs:
        run.ready_file().touch()
    dead = 2**22 + 17
    (tmp_path / "run" / f"ready-2-{dead}").touch()
    logs = [
        PredictionLog(str(tmp_path / "log"), sample_rate=1.0, flush_rows=10**5, flush_s=3600.0)
        for _ in runs
    ]
    for plog in logs:
        plog.start()
    _record(logs[0], "asked", rows=2)
    _record(logs[1], "other", rows=5)
    states = [
        cast(ServerState, SimpleNamespace(prediction_log=plog, worker=run))
        for plog, run in zip(logs, runs, strict=True)
    ]

    async def run() -> dict[str, Any]:
        other = asyncio.create_task(follow_notices(states[1], runs[1]))
        await asyncio.sleep(0)  # the other worker follows its notices before the flush
        try:
            return await flush_logs(states[0])
        finally:
            other.cancel()

    try:
        answer = asyncio.run(run())
    finally:
        for plog in logs:
            plog.close()
    assert answer == {"log": "written", "rows": 7, "workers": 2, "unanswered": 0}
    ids = read_prediction_log(str(tmp_path / "log"), NAME)["request_id"].to_pylist()
    assert sorted(set(ids)) == ["asked", "other"] and len(ids) == 7


@pytest.fixture(scope="module")
def logged_server(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[tuple[ServerThread, Path]]:
    """A server whose log writes on its own only after an hour, and its log folder."""
    root = tmp_path_factory.mktemp("flush")
    reg = new_registry(root, model_dirs)
    reg.deploy(NAME, production=1)
    log = root / "predictions"
    app = build_app(
        [RegistrySource(reg, NAME)],
        FAST.model_copy(update=SLOW_LOG),
        registry=reg,
        prediction_log_url=str(log),
    )
    with ServerThread(app) as running:
        running.wait_ready()
        yield running, log
    reg.close()


def test_live_and_drift_ask_the_server_to_write_what_it_answered(
    logged_server: tuple[ServerThread, Path], tmp_path: Path
) -> None:
    server, log = logged_server
    answered = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [ROW] * 4})
    assert answered.status_code == 200, answered.text
    request_id = answered.headers["x-request-id"]
    assert not list(log.rglob("*.parquet"))  # an hour before the log writes on its own
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": NAME, "home": str(tmp_path)},
            "data": {"train": "t.csv", "label": "y"},
            "rollout": {"metrics_urls": [f"{server.url}/metrics"]},
        },
        root=tmp_path,
    )
    flushed = ask_to_flush(cfg)
    answer = flushed.answers[f"{server.url}/admin/flush"]
    assert answer == {"log": "written", "rows": 4, "workers": 1, "unanswered": 0}
    assert str(log.parent) not in str(answer)  # no path of the server's machine
    assert flushed.note() == "log: read after the server wrote the 4 row(s) it held"
    table = read_prediction_log(str(log), NAME)
    assert table["request_id"].to_pylist() == [request_id] * 4


def test_with_an_admin_token_the_flush_takes_it_and_without_one_only_this_machine(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    reg = new_registry(tmp_path, model_dirs)
    try:
        open_app = build_app(
            [RegistrySource(reg, NAME)],
            FAST.model_copy(update=SLOW_LOG),
            prediction_log_url=str(tmp_path / "log"),
        )
        remote = TestClient(open_app, client=("10.0.0.2", 40000))
        refused = remote.post("/admin/flush")
        assert refused.status_code == 401
        assert "client on the server's machine only" in refused.json()["error"]
        assert "MOORING_ADMIN_TOKEN" in refused.json()["error"]
        local = TestClient(open_app, client=("127.0.0.1", 40000))
        with local:
            assert local.post("/admin/flush").json()["log"] == "written"
        guarded = build_app(
            [RegistrySource(reg, NAME)],
            FAST.model_copy(update={**SLOW_LOG, "admin_token": "s3cret"}),
            prediction_log_url=str(tmp_path / "log"),
        )
        with TestClient(guarded, client=("127.0.0.1", 40000)) as client:
            assert client.post("/admin/flush").status_code == 401
            ok = client.post("/admin/flush", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200 and ok.json()["log"] == "written"
    finally:
        reg.close()


def test_without_a_server_the_note_says_how_old_the_newest_row_is(tmp_path: Path) -> None:
    port = free_port()
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": NAME, "home": str(tmp_path)},
            "data": {"train": "t.csv", "label": "y"},
            "rollout": {"metrics_urls": [f"http://127.0.0.1:{port}/metrics"]},
        },
        root=tmp_path,
    )
    flushed = ask_to_flush(cfg, timeout=2.0)
    assert not flushed.written and list(flushed.failures) == [
        f"http://127.0.0.1:{port}/admin/flush"
    ]
    note = flushed.note("2026-01-01T00:00:00+00:00")
    assert note.startswith(f"log: not flushed (http://127.0.0.1:{port}/admin/flush did not answer")
    assert "rows a server holds in memory are not read; newest logged row " in note
    assert note.endswith("the server writes its log every 10 s ([serving] log_flush_s)")
    assert (
        Flushed(10.0)
        .note(None)
        .endswith("no row read; the server writes its log every 10 s ([serving] log_flush_s)")
    )
