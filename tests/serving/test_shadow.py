"""Shadow traffic: copies of production's requests on the shadow version, never the client's.

A real registry (a: v1, b: v2, broken: v3), real SavedModels and a real server.
The failure cases break the shadow in process (its batcher raises or never answers) and
check that every client request still gets production's answer.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mooring.formats._metrics import read_samples
from mooring.formats._predictions import read_prediction_log
from mooring.registry import Registry
from mooring.serving import RegistrySource, build_app
from mooring.serving._models import ModelManager
from tests._support.server import FAST, NAME, ServerThread, new_registry
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
ROWS = [row(age=float(a), hours=float(h)) for a, h in ((25, 40), (39, 50), (61, 20))]
BODY = orjson.dumps({"instances": ROWS})
TOKEN = "shadow-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def registry(tmp_path: Path, model_dirs: dict[str, Path]) -> Iterator[Registry]:
    reg = new_registry(tmp_path, model_dirs)
    reg.deploy(NAME, production=1)
    yield reg
    reg.close()


@contextmanager
def serving(
    registry: Registry, logs: Path | None, **settings: Any
) -> Iterator[tuple[ServerThread, ModelManager]]:
    # Deadlines and shadow timeouts far longer than any test takes, unless it sets them.
    roomy = {"deadline_ms": PATIENCE * 1000, "shadow_timeout_ms": PATIENCE * 1000}
    cfg = FAST.model_copy(update={"admin_token": TOKEN, **roomy, **settings})
    app = build_app(
        [RegistrySource(registry, NAME)],
        cfg,
        prediction_log_url=None if logs is None else str(logs),
        registry=registry,
    )
    with ServerThread(app) as server:
        server.wait_ready()
        yield server, app.state.mooring.managers[NAME]


def shadow_counts(server: ServerThread) -> dict[tuple[str, ...], float]:
    """``mooring_shadow_*`` samples by (name, label values)."""
    text = server.client.get("/metrics").text
    return {
        (s.name, *(v for k, v in sorted(s.labels.items()) if k != "model")): s.value
        for s in read_samples(text)
        if s.name.startswith("mooring_shadow_") and s.labels.get("model") == NAME
    }


def predict(client: httpx.Client, request_id: str) -> dict[str, Any]:
    res = client.post(PREDICT, content=BODY, headers={"X-Request-Id": request_id})
    assert res.status_code == 200, res.text
    assert res.headers["X-Model-Version"] == "1"
    body: dict[str, Any] = res.json()
    return body


def direct_probabilities(folder: Path) -> np.ndarray[Any, Any]:
    """What a SavedModel computes for ROWS, straight from TensorFlow."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    inputs = {
        k: tf.constant([r[k] for r in ROWS], tf.string if isinstance(v, str) else tf.float32)
        for k, v in ROWS[0].items()
    }
    return np.asarray(signature(**inputs)["probabilities"].numpy(), dtype=np.float64)


def until_copies(server: ServerThread, key: tuple[str, ...], count: int) -> None:
    wait_until(
        lambda: shadow_counts(server).get(key) == count,
        f"{count} shadow copies counted as {key}",
        seen=lambda: shadow_counts(server),
    )


def set_shadow(server: ServerThread, body: dict[str, Any]) -> dict[str, Any]:
    res = server.client.post("/admin/deployment", json=body, headers=AUTH)
    assert res.status_code == 200, res.text
    out: dict[str, Any] = res.json()
    return out


@pytest.mark.decisions
def test_a_full_shadow_changes_no_answer_and_logs_its_own_rows(
    registry: Registry, tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    logs = tmp_path / "predictions"
    # Room for every copy at once: none is dropped, however slowly the shadow runs.
    settings = {"log_sample_rate": 0.01, "log_flush_rows": 10_000, "shadow_max_in_flight": 32}
    with serving(registry, logs, **settings) as (server, mgr):
        before = [predict(server.client, f"plain-{i}") for i in range(5)]
        out = set_shadow(server, {"shadow": 2, "shadow_rate": 1.0, "reason": "compare b"})
        assert out["deployment"]["shadow"] == 2 and out["deployment"]["shadow_rate"] == 1.0
        assert out["status"]["shadow"] == {
            "version": 2,
            "loaded": True,
            "rate": 1.0,
            "error": None,
            "loading": False,
        }
        # The shadow is never a served version: pinning it is refused like any unserved one.
        assert server.client.post(f"/v1/models/{NAME}/versions/2:predict", content=BODY).is_error
        after = [predict(server.client, f"copied-{i}") for i in range(20)]
        assert all(a == before[0] for a in [*before, *after])
        until_copies(server, ("mooring_shadow_requests_total", "ok", "2"), 20)
        assert mgr.served_versions() == [1]
    # Shutting down flushed the log. Every copied request is there twice, answer and shadow.
    answers = read_prediction_log(str(logs), NAME)
    shadows = read_prediction_log(str(logs), NAME, shadow=True)
    copied = {f"copied-{i}" for i in range(20)}  # the clients' ids, logged beside the server's
    assert copied <= set(answers["client_request_id"].to_pylist())
    assert set(shadows["client_request_id"].to_pylist()) == copied

    # A shadow row carries its request's server id as production's answer does.
    def ids(table: pa.Table) -> set[tuple[str, str]]:
        servers, clients = table["request_id"].to_pylist(), table["client_request_id"].to_pylist()
        return set(zip(servers, clients, strict=True))

    assert ids(shadows) <= ids(answers)
    assert set(shadows["model_version"].to_pylist()) == {2}
    assert set(answers["model_version"].to_pylist()) == {1}
    assert pq.read_table(logs).column("shadow").to_pylist().count(True) == 60
    expected = direct_probabilities(model_dirs["b"])
    for rid in sorted(copied):
        mine = shadows.filter(np.asarray(shadows["client_request_id"].to_pylist()) == rid)
        got = np.asarray(mine["output.probabilities"].to_pylist(), dtype=np.float64)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    production = direct_probabilities(model_dirs["a"])
    np.testing.assert_allclose(
        np.asarray(before[0]["predictions"][0]["probabilities"]),
        production[0],
        rtol=1e-5,
    )


def test_a_shadow_that_fails_to_load_or_raises_never_reaches_a_client(
    registry: Registry, tmp_path: Path
) -> None:
    with serving(registry, tmp_path / "predictions", shadow_max_in_flight=32) as (server, mgr):
        expected = predict(server.client, "reference")
        # Version 3 is not a SavedModel: the shadow is reported, production answers on.
        out = set_shadow(server, {"shadow": 3, "shadow_rate": 1.0})
        assert out["status"]["shadow"]["loaded"] is False
        assert out["status"]["shadow"]["error"]
        assert out["status"]["failures"] == {} and out["status"]["ready"] is True
        assert all(predict(server.client, f"r{i}") == expected for i in range(5))
        assert not any(k[0] == "mooring_shadow_requests_total" for k in shadow_counts(server))

        # A shadow whose model raises: counted as errors, clients get production's answer.
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        slot = mgr.shadow_slot()
        assert slot is not None and slot.version == 2

        def raises(columns: Any) -> Any:
            raise RuntimeError("the shadow's kernel failed")

        slot.batcher.predict = raises
        assert all(predict(server.client, f"e{i}") == expected for i in range(10))
        until_copies(server, ("mooring_shadow_requests_total", "error", "2"), 10)
        assert server.client.get("/healthz").json()["ready"] is True


@pytest.mark.decisions
def test_a_shadow_that_hangs_is_abandoned_at_its_timeout(registry: Registry) -> None:
    # Its batcher never answers, so the 200 ms timeout fires whatever the machine's speed.
    with serving(registry, None, shadow_timeout_ms=200.0) as (server, mgr):
        expected = predict(server.client, "reference")
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        slot = mgr.shadow_slot()
        assert slot is not None and slot.version == 2

        async def never(*args: Any, **kwargs: Any) -> Any:
            await asyncio.Event().wait()

        slot.batcher.submit = never  # type: ignore[method-assign]
        assert all(predict(server.client, f"h{i}") == expected for i in range(5))
        until_copies(server, ("mooring_shadow_requests_total", "timeout", "2"), 5)
        assert server.client.get("/healthz").json()["ready"] is True


@pytest.mark.decisions
def test_under_load_copies_are_dropped_first(registry: Registry) -> None:
    # One copy at a time, and the shadow never answers: every further copy is dropped.
    with serving(registry, None, shadow_max_in_flight=1, max_in_flight=64) as (server, mgr):
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        slot = mgr.shadow_slot()
        assert slot is not None

        async def never(*args: Any, **kwargs: Any) -> Any:
            await asyncio.Event().wait()

        slot.batcher.submit = never  # type: ignore[method-assign]

        async def load() -> list[int]:
            gate = asyncio.Semaphore(16)  # below the door's limit: no request is shed
            async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:

                async def one(i: int) -> int:
                    async with gate:
                        res = await client.post(PREDICT, content=BODY)
                    return res.status_code

                return await asyncio.gather(*(one(i) for i in range(120)))

        statuses = asyncio.run(load())
        assert statuses == [200] * 120
        counts = shadow_counts(server)
        dropped = sum(v for k, v in counts.items() if k[0] == "mooring_shadow_dropped_total")
        assert dropped == 119
        assert ("mooring_shadow_dropped_total", "capacity") in counts
        assert not any(k[0] == "mooring_shadow_requests_total" for k in counts)


@pytest.mark.decisions
def test_busy_server_drops_copies(registry: Registry) -> None:
    # The door holds three of four (this request and two more): copies wait for quieter times.
    with serving(registry, None, max_in_flight=4) as (server, _):
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        server.app.state.mooring.admission.in_flight += 2  # two requests held elsewhere
        try:
            predict(server.client, "under-load")
        finally:
            server.app.state.mooring.admission.in_flight -= 2
        counts = shadow_counts(server)
        assert counts.get(("mooring_shadow_dropped_total", "busy")) == 1
        predict(server.client, "quiet")
        until_copies(server, ("mooring_shadow_requests_total", "ok", "2"), 1)


@pytest.mark.decisions
def test_copies_run_in_batches_and_each_is_logged_with_its_own_rows(
    registry: Registry, tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    # The first batch is held in the shadow's model until every request was answered:
    # the copies that arrive meanwhile run together, as one call, whatever the machine.
    logs = tmp_path / "predictions"
    with serving(registry, logs, log_sample_rate=0.01, log_flush_rows=10_000) as (server, mgr):
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        slot = mgr.shadow_slot()
        assert slot is not None
        model = slot.batcher.predict
        calls: list[int] = []
        release = threading.Event()

        def held(columns: Any) -> Any:
            calls.append(len(next(iter(columns.values()))))
            if len(calls) == 1:
                release.wait(PATIENCE)
            return model(columns)

        slot.batcher.predict = held
        for i in range(12):
            predict(server.client, f"b{i}")
        release.set()
        until_copies(server, ("mooring_shadow_requests_total", "ok", "2"), 12)
        assert len(calls) == 2 and sum(calls) == 12 * len(ROWS), calls
    shadows = read_prediction_log(str(logs), NAME, shadow=True)
    assert sorted(shadows["client_request_id"].to_pylist()) == sorted(
        f"b{i}" for i in range(12) for _ in ROWS
    )
    expected = direct_probabilities(model_dirs["b"])
    for i in range(12):
        mine = shadows.filter(np.asarray(shadows["client_request_id"].to_pylist()) == f"b{i}")
        got = np.asarray(mine["output.probabilities"].to_pylist(), dtype=np.float64)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.decisions
def test_a_retired_shadow_is_let_go(registry: Registry) -> None:
    with serving(registry, None) as (server, mgr):
        set_shadow(server, {"shadow": 2, "shadow_rate": 1.0})
        slot = mgr.shadow_slot()
        assert slot is not None
        model = weakref.ref(slot.model)
        del slot
        predict(server.client, "copied")
        until_copies(server, ("mooring_shadow_requests_total", "ok", "2"), 1)
        set_shadow(server, {"shadow": None})

        def freed() -> bool:
            gc.collect()
            return model() is None

        wait_until(freed, "the retired shadow's model freed")


def test_admin_deployment_validates_shadow_settings(registry: Registry) -> None:
    with serving(registry, None) as (server, _):
        post = server.client.post
        res = post("/admin/deployment", json={"shadow": "2"}, headers=AUTH)
        assert res.status_code == 400 and "shadow: expected an integer" in res.json()["error"]
        res = post("/admin/deployment", json={"shadow": 2, "shadow_rate": 1.5}, headers=AUTH)
        assert res.status_code == 400 and "shadow rate 1.5 is out of range" in res.json()["error"]
        res = post("/admin/deployment", json={"shadow": 1}, headers=AUTH)
        assert res.status_code == 400 and "is the production version" in res.json()["error"]
        res = post("/admin/deployment", json={"reason": "x"}, headers=AUTH)
        assert res.status_code == 400 and "nothing to change" in res.json()["error"]
        set_shadow(server, {"shadow": 2, "shadow_rate": 0.5})
        out = set_shadow(server, {"shadow": None})
        assert out["deployment"]["shadow"] is None and out["status"]["shadow"] is None
        events = [e for e in registry.history(NAME) if e.action == "shadow"]
        assert [e.actor for e in events] == ["mooring-serve-admin"] * 2
        assert events[0].after == {"shadow": 2, "shadow_rate": 0.5}
        assert events[1].after == {"shadow": None, "shadow_rate": 0.0}
