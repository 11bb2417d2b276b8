"""The dynamic batcher: merging, splitting, backpressure and deadlines."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.serving import Batcher, DeadlineExceededError, OverloadedError

Columns = dict[str, np.ndarray[Any, Any]]


def doubling(columns: Any) -> Columns:
    return {"y": np.asarray(columns["x"]) * 2.0, "n": np.full(len(columns["x"]), len(columns["x"]))}


async def _run(
    sizes: list[int], *, max_batch: int, gate: threading.Event | None = None, workers: int = 1
) -> tuple[list[Columns], list[int]]:
    batches: list[int] = []

    def predict(columns: Any) -> Columns:
        if gate is not None:
            gate.wait(5)
        return doubling(columns)

    with ThreadPoolExecutor(workers) as pool:
        batcher = Batcher(
            predict,
            max_batch_size=max_batch,
            batch_timeout_s=0.05,
            max_queue=1000,
            executor=pool,
            workers=workers,
            on_batch=batches.append,
        )
        await batcher.start()
        start = 0
        jobs = []
        for size in sizes:
            cols = {"x": np.arange(start, start + size, dtype=np.float32)}
            jobs.append(batcher.submit(cols, rows=size, timeout_s=10))
            start += size
        if gate is not None:
            asyncio.get_running_loop().call_later(0.05, gate.set)
        results = await asyncio.gather(*jobs)
        await batcher.stop()
    return list(results), batches


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=30),
    max_batch=st.integers(1, 16),
    workers=st.sampled_from([1, 2]),
)
def test_results_split_back_to_their_requests(
    sizes: list[int], max_batch: int, workers: int
) -> None:
    results, batches = asyncio.run(_run(sizes, max_batch=max_batch, workers=workers))
    start = 0
    for size, out in zip(sizes, results, strict=True):
        np.testing.assert_array_equal(out["y"], np.arange(start, start + size) * 2.0)
        start += size
    assert sum(batches) == sum(sizes)
    assert all(b <= max(max_batch, max(sizes)) for b in batches)


def test_concurrent_requests_merge_while_the_model_is_busy() -> None:
    gate = threading.Event()
    results, batches = asyncio.run(_run([1] * 40, max_batch=16, gate=gate))
    assert len(results) == 40
    assert max(batches) == 16  # merged up to the limit while the first batch ran
    assert len(batches) < 40


def test_full_queue_refuses_at_once_and_deadline_gives_504() -> None:
    async def scenario() -> None:
        release = threading.Event()

        def slow(columns: Any) -> Columns:
            release.wait(5)
            return doubling(columns)

        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(
                slow, max_batch_size=1, batch_timeout_s=0.0, max_queue=2, executor=pool
            )
            await batcher.start()
            x = {"x": np.ones(1, np.float32)}
            running = asyncio.create_task(batcher.submit(x, rows=1, timeout_s=10))
            await asyncio.sleep(0.05)  # the first request is now inside the model
            queued = [
                asyncio.create_task(batcher.submit(x, rows=1, timeout_s=0.2)) for _ in range(2)
            ]
            await asyncio.sleep(0.01)
            with pytest.raises(OverloadedError, match="max_queue=2") as info:
                await batcher.submit(x, rows=1, timeout_s=10)
            assert info.value.retry_after >= 1
            for task in queued:
                with pytest.raises(DeadlineExceededError, match="deadline"):
                    await task
            release.set()
            assert (await running)["y"].tolist() == [2.0]
            await batcher.stop()

    asyncio.run(scenario())
