"""The access log names every request by its id; a full prediction-log buffer drops, counts and
never holds a request back."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from mooring.serving import DirectorySource, build_app
from tests._support.server import FAST, NAME, ServerThread
from tests._support.serving_model import row

PREDICT = f"/v1/models/{NAME}:predict"


def test_access_log_is_one_json_line_per_request_with_its_id(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mooring.serving.access")
    ok = server.client.post(PREDICT, json={"instances": [row()]}, headers={"X-Request-Id": "req-1"})
    bad = server.client.post(PREDICT, json={"instances": []})
    assert ok.status_code == 200 and bad.status_code == 400
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "mooring.serving.access"
    ]
    by_id = {line["request_id"]: line for line in lines}
    # The line names the server's id (answered as X-Request-Id) and the client's own.
    first = by_id[ok.headers["X-Request-Id"]]
    assert first["client_request_id"] == "req-1" == ok.headers["X-Client-Request-Id"]
    assert first["method"] == "POST" and first["path"] == PREDICT
    assert (first["status"], first["model"], first["version"]) == (200, NAME, "1")
    assert first["duration_ms"] >= 0 and first["client"] == "127.0.0.1"
    assert first["trace_id"] is None  # tracing is off
    generated = bad.headers["X-Request-Id"]
    assert len(generated) == 32 and by_id[generated]["status"] == 400
    assert by_id[generated]["client_request_id"] is None


class _StuckStorage(MemoryFileSystem):
    """In-memory storage whose writes wait until released: a stalled object store."""

    protocol = "stuckstorage"
    entered = threading.Event()
    release = threading.Event()

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" in mode:
            type(self).entered.set()
            type(self).release.wait(60)
        return super()._open(path, mode, **kwargs)


def test_a_full_log_buffer_drops_and_counts_without_blocking_serving(
    model_dirs: dict[str, Path],
) -> None:
    fsspec.register_implementation("stuckstorage", _StuckStorage, clobber=True)
    _StuckStorage.entered.clear()
    _StuckStorage.release.clear()
    cfg = FAST.model_copy(
        update={"log_sample_rate": 1.0, "log_buffer": 4, "log_flush_rows": 1, "log_flush_s": 0.05}
    )
    app = build_app(
        [DirectorySource(model_dirs["a"], NAME)], cfg, prediction_log_url="stuckstorage://plog"
    )
    plog = app.state.mooring.prediction_log
    try:
        with ServerThread(app) as server:
            server.wait_ready()
            body = {"instances": [row()]}
            assert server.client.post(PREDICT, json=body).status_code == 200
            # The writer took that row and is now stuck in the store.
            assert _StuckStorage.entered.wait(30)
            for i in range(30):
                res = server.client.post(PREDICT, json={"instances": [row(age=float(i))] * 2})
                assert res.status_code == 200, res.text  # a stuck log never holds a request
            metrics = server.client.get("/metrics").text
            # 60 rows offered to a 4-row buffer: 2 requests fit, 28 requests' rows drop.
            assert "mooring_prediction_log_dropped_total 56.0" in metrics
            assert plog.dropped == 56
            _StuckStorage.release.set()
    finally:
        _StuckStorage.release.set()
    # Shutting down wrote what the buffer held: the first row and the 4 buffered ones.
    assert plog.written == 5
    store = _StuckStorage()
    written = [k for k in store.store if "plog/date=" in k]
    files = [f for f in written if f.endswith(".parquet")]
    # Beside the log files, only the request-id index the writer leaves when it stops.
    assert files and all(f in files or f.rsplit("/", 1)[1].startswith("_ids-") for f in written)
    rows = sum(pq.read_table(store.open(f, "rb")).num_rows for f in files)
    assert rows == 5
