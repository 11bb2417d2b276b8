"""Backpressure and deadlines over HTTP: 503 with Retry-After, 504, never a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from mooring.serving import DirectorySource, build_app
from tests._support.held import Held
from tests._support.server import FAST, NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

pytestmark = pytest.mark.decisions

PREDICT = f"/v1/models/{NAME}:predict"


def test_a_full_queue_answers_503_with_retry_after(model_dirs: dict[str, Path]) -> None:
    # The batcher's queue is under test, not the door: admit every request. The deadline
    # is far longer than the test: the held requests must end 200, not 504.
    cfg = FAST.model_copy(
        update={"max_queue": 1, "max_in_flight": 1024, "deadline_ms": PATIENCE * 1000}
    )
    app = build_app([DirectorySource(model_dirs["a"], NAME)], cfg)
    body = orjson.dumps({"instances": [row()]})
    with ServerThread(app) as server:
        server.wait_ready()
        manager = app.state.mooring.managers[NAME]
        batcher = manager.slots[manager.production].batcher
        # The model holds its batch until the test lets it go: a request in the model, one
        # in the queue (max_queue=1), and the next finds the queue full, however fast.
        held = Held(batcher.predict)
        batcher.predict = held
        batcher.inline_when = None  # never on the event loop, which must keep answering

        def post() -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=PATIENCE) as client:
                return client.post(PREDICT, content=body)

        with ThreadPoolExecutor(2) as pool:
            try:
                running = pool.submit(post)
                held.wait_entered("the first request to be in the model")
                queued = pool.submit(post)
                wait_until(lambda: batcher.depth == 1, "the second request to be queued",
                           seen=lambda: batcher.depth)  # fmt: skip
                refused = server.client.post(PREDICT, content=body)
            finally:
                held.release.set()
            answered = [running.result(), queued.result()]
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert "max_queue=1" in refused.json()["error"]
        assert [r.status_code for r in answered] == [200, 200], [r.text for r in answered]


def test_a_passed_deadline_answers_504(model_dirs: dict[str, Path]) -> None:
    cfg = FAST.model_copy(update={"deadline_ms": 0.001})
    app = build_app([DirectorySource(model_dirs["a"], NAME)], cfg)
    with ServerThread(app) as server:
        server.wait_ready()
        res = server.client.post(PREDICT, content=orjson.dumps({"instances": [row()]}))
        assert res.status_code == 504, res.text
        assert "deadline" in res.json()["error"]
        metrics = server.client.get("/metrics").text
        assert 'status="504"' in metrics
