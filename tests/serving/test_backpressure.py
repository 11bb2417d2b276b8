"""Backpressure and deadlines over HTTP: 503 with Retry-After, 504, never a 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import orjson

from mooring.serving import DirectorySource, build_app
from tests._support.server import FAST, NAME, ServerThread
from tests._support.serving_model import row

PREDICT = f"/v1/models/{NAME}:predict"


async def burst(url: str, body: bytes, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(PREDICT, content=body) for _ in range(n))))


def test_a_full_queue_answers_503_with_retry_after(model_dirs: dict[str, Path]) -> None:
    # The batcher's queue is under test, not the door: admit the whole burst.
    cfg = FAST.model_copy(update={"max_queue": 1, "max_batch_size": 512, "max_in_flight": 1024})
    app = build_app([DirectorySource(model_dirs["a"], NAME)], cfg)
    body = orjson.dumps({"instances": [row(age=float(i)) for i in range(400)]})
    with ServerThread(app) as server:
        server.wait_ready()
        seen: Counter[int] = Counter()
        for _ in range(5):
            responses = asyncio.run(burst(server.url, body, 48))
            seen.update(r.status_code for r in responses)
            for res in responses:
                if res.status_code == 503:
                    assert res.headers["Retry-After"] == "1"
                    assert "max_queue=1" in res.json()["error"]
            if seen[503]:
                break
        assert set(seen) <= {200, 503}, seen
        assert seen[503] > 0 and seen[200] > 0, seen


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
