"""Following the registry: readiness, hot swaps under load, canary routing, failed loads, admin."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from mooring.config import ServingConfig
from mooring.registry import Registry
from mooring.serving import RegistrySource, bucket_of, build_app
from tests._support.server import FAST, NAME, ServerThread, new_registry, wait_for
from tests._support.serving_model import row

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})


def version_of(server: ServerThread, key: str | None = None) -> str:
    headers = {"X-Request-Key": key} if key else {}
    res = server.client.post(PREDICT, content=BODY, headers=headers)
    assert res.status_code == 200, res.text
    return res.headers["X-Model-Version"]


async def hammer(url: str, stop: asyncio.Event, clients: int) -> Counter[tuple[int, str]]:
    seen: Counter[tuple[int, str]] = Counter()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> None:
            while not stop.is_set():
                res = await client.post(url + PREDICT, content=BODY)
                seen[(res.status_code, res.headers.get("X-Model-Version", "-"))] += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return seen


@pytest.fixture
def registry(tmp_path: Path, model_dirs: dict[str, Path]) -> Registry:
    return new_registry(tmp_path, model_dirs)


def test_swap_under_load_fails_no_request_and_bad_versions_never_serve(
    registry: Registry, tmp_path: Path
) -> None:
    cfg = FAST.model_copy(update={"log_sample_rate": 1.0, "log_flush_rows": 50})
    logs = tmp_path / "predictions"
    app = build_app([RegistrySource(registry, NAME)], cfg, prediction_log_url=str(logs))
    with ServerThread(app) as server:
        # Nothing deployed: not ready, and predictions are 503, not 500.
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
        res = httpx.post(server.url + PREDICT, content=BODY)
        assert res.status_code == 503 and "no production version" in res.json()["error"]
        registry.deploy(NAME, production=1)
        server.wait_ready()

        async def swap() -> Counter[tuple[int, str]]:
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(server.url, stop, clients=8))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(registry.deploy, NAME, production=2)
            await asyncio.to_thread(wait_for, lambda: version_of(server) == "2", 30.0)
            await asyncio.sleep(0.3)
            stop.set()
            return await load

        seen = asyncio.run(swap())
        statuses = {status for status, _ in seen}
        assert statuses == {200}, seen
        assert {v for _, v in seen} == {"1", "2"}

        # Version 3 is not a SavedModel: it is refused and version 2 keeps serving.
        registry.deploy(NAME, production=3, force=True, reason="test a broken artifact")
        wait_for(lambda: "3" in httpx.get(f"{server.url}/v1/models/{NAME}").text)
        status = httpx.get(f"{server.url}/v1/models/{NAME}").json()["model_version_status"]
        states = {s["version"]: s["state"] for s in status}
        assert states == {"2": "AVAILABLE", "3": "END"}
        assert version_of(server) == "2"
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'mooring_model_load_failures_total{model="income",version="3"} 1.0' in metrics
    # Shutting down flushed the sampled prediction log as Parquet.
    table = pq.read_table(logs)
    assert table.num_rows >= sum(seen.values())
    assert {"request_id", "timestamp", "model_version", "age", "sex", "output.classes"} <= set(
        table.column_names
    )


def test_canary_split_is_sticky_by_key_and_weighted_without(registry: Registry) -> None:
    registry.deploy(NAME, production=1, canary=2, weight=30)
    app = build_app([RegistrySource(registry, NAME)], FAST)
    with ServerThread(app) as server:
        server.wait_ready()
        wait_for(
            lambda: httpx.get(f"{server.url}/v2/models/{NAME}").json()["versions"] == ["1", "2"]
        )
        for key in ("alice", "bob", "carol", "dave", "erin", "frank"):
            expected = "2" if bucket_of(key) < 30 else "1"
            assert {version_of(server, key) for _ in range(3)} == {expected}
        counts = Counter(version_of(server) for _ in range(100))
        assert 8 <= counts["2"] <= 60, counts  # 30% expected; bounds far out in the tails
        label = httpx.post(f"{server.url}/v1/models/{NAME}/labels/canary:predict", content=BODY)
        assert label.headers["X-Model-Version"] == "2"


def test_admin_endpoints_need_the_token(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.deploy(NAME, production=1)
    off = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(off) as server:
        res = httpx.get(f"{server.url}/admin/status")
        assert res.status_code == 404 and "MOORING_ADMIN_TOKEN" in res.json()["error"]
    monkeypatch.setenv("MOORING_TEST_TOKEN", "s3cret")
    cfg = FAST.model_copy(update={"admin_token_env": "MOORING_TEST_TOKEN"})
    app = build_app([RegistrySource(registry, NAME)], cfg, registry=registry)
    with ServerThread(app) as server:
        server.wait_ready()
        assert httpx.get(f"{server.url}/admin/status").status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert httpx.get(f"{server.url}/admin/status", headers=bad).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        status = httpx.get(f"{server.url}/admin/status", headers=auth).json()
        assert status["models"][0]["production"] == 1
        res = httpx.post(
            f"{server.url}/admin/deployment",
            headers=auth,
            json={"production": 1, "canary": 2, "weight": 100, "reason": "canary all"},
        )
        assert res.status_code == 200, res.text
        assert res.json()["status"]["canary"] == 2
        assert version_of(server) == "2"
        assert registry.deployment(NAME).canary == 2
        res = httpx.post(f"{server.url}/admin/deployment", headers=auth, json={"weight": "x"})
        assert res.status_code == 400 and "weight" in res.json()["error"]


def test_serving_config_defaults_are_documented() -> None:
    cfg = ServingConfig()
    assert cfg.max_batch_size == 256 and cfg.batch_timeout_ms == 2.0
    for name, field in ServingConfig.model_fields.items():
        assert field.description, name


def test_a_tampered_artifact_is_refused_and_the_old_version_keeps_serving(
    registry: Registry,
) -> None:
    registry.deploy(NAME, production=1)
    stored = registry.artifacts.local_path(registry.get(NAME, version=2).artifact_key)
    with (stored / "mooring.json").open("a", encoding="utf-8") as handle:
        handle.write(" ")
    app = build_app([RegistrySource(registry, NAME)], FAST)
    with ServerThread(app) as server:
        server.wait_ready()
        registry.deploy(NAME, production=2, force=True, reason="test: tampered on purpose")
        wait_for(lambda: "END" in server.client.get(f"/v1/models/{NAME}").text)
        status = server.client.get(f"/v1/models/{NAME}").json()["model_version_status"]
        failed = next(s for s in status if s["version"] == "2")
        assert "mooring.json" in failed["status"]["error_message"]
        assert version_of(server) == "1"


def test_a_restarted_server_falls_back_to_the_last_version_that_verifies(
    registry: Registry,
) -> None:
    registry.deploy(NAME, production=1)
    stored = registry.artifacts.local_path(registry.get(NAME, version=2).artifact_key)
    with (stored / "mooring.json").open("a", encoding="utf-8") as handle:
        handle.write(" ")
    registry.deploy(NAME, production=2, force=True, reason="test: tampered on purpose")
    app = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(app) as server:
        server.wait_ready()
        health = server.client.get("/healthz")
        assert health.status_code == 200, health.text
        fallback = health.json()["fallback"][NAME]
        assert (fallback["wanted"], fallback["serving"]) == (2, 1)
        assert "mooring.json" in fallback["reason"]
        assert version_of(server) == "1"
        assert f'mooring_model_fallback{{model="{NAME}"}} 1.0' in server.client.get("/metrics").text
        status = server.client.get(f"/v1/models/{NAME}").json()["model_version_status"]
        states = {s["version"]: s["state"] for s in status}
        assert states == {"1": "AVAILABLE", "2": "END"}
        # Deploying a version that loads ends the fallback.
        registry.deploy(NAME, production=1)
        wait_for(lambda: "fallback" not in server.client.get("/healthz").json())
        assert f'mooring_model_fallback{{model="{NAME}"}} 0.0' in server.client.get("/metrics").text


def test_with_nothing_that_verifies_the_server_is_not_ready_and_says_why(
    registry: Registry,
) -> None:
    stored = registry.artifacts.local_path(registry.get(NAME, version=1).artifact_key)
    with (stored / "mooring.json").open("a", encoding="utf-8") as handle:
        handle.write(" ")
    registry.deploy(NAME, production=1, force=True, reason="test: tampered on purpose")
    app = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(app) as server:
        wait_for(lambda: 1 in server.app.state.mooring.managers[NAME].failures)
        assert server.client.get("/healthz").status_code == 503
        res = server.client.post(PREDICT, content=BODY)
        assert res.status_code == 503 and "mooring.json" in res.json()["error"]
