"""Following the registry: readiness, hot swaps under load, canary routing, failed loads, admin."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from mooring.config import ServingConfig, load_config
from mooring.errors import ConfigError
from mooring.registry import Registry
from mooring.registry._actors import token_digest
from mooring.registry._approval import ReleaseRules
from mooring.serving import RegistrySource, build_app
from mooring.serving._models import bucket_of
from tests._support.artifacts import tamper
from tests._support.server import FAST, NAME, ServerThread, new_registry
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})


def version_of(server: ServerThread, key: str | None = None) -> str:
    headers = {"X-Request-Key": key} if key else {}
    res = server.client.post(PREDICT, content=BODY, headers=headers)
    assert res.status_code == 200, res.text
    return res.headers["X-Model-Version"]


async def hammer(
    url: str, stop: asyncio.Event, clients: int, seen: Counter[tuple[int, str]]
) -> None:
    """``clients`` clients sending predictions until ``stop``; answers counted in ``seen``
    by (status, version)."""
    async with httpx.AsyncClient(timeout=PATIENCE) as client:

        async def one() -> None:
            while not stop.is_set():
                res = await client.post(url + PREDICT, content=BODY)
                seen[(res.status_code, res.headers.get("X-Model-Version", "-"))] += 1

        await asyncio.gather(*(one() for _ in range(clients)))


def answered_by(seen: Counter[tuple[int, str]], version: str) -> int:
    return sum(n for (_, v), n in list(seen.items()) if v == version)


@pytest.fixture
def registry(tmp_path: Path, model_dirs: dict[str, Path]) -> Registry:
    return new_registry(tmp_path, model_dirs)


@pytest.mark.decisions
def test_swap_under_load_fails_no_request_and_bad_versions_never_serve(
    registry: Registry, tmp_path: Path
) -> None:
    # No deadline may pass during the swap, however slowly the new version loads.
    cfg = FAST.model_copy(
        update={"log_sample_rate": 1.0, "log_flush_rows": 50, "deadline_ms": PATIENCE * 1000}
    )
    logs = tmp_path / "predictions"
    app = build_app([RegistrySource(registry, NAME)], cfg, prediction_log_url=str(logs))
    with ServerThread(app) as server:
        # Nothing deployed: not ready, and predictions are 503, not 500.
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
        res = httpx.post(server.url + PREDICT, content=BODY)
        assert res.status_code == 503 and "no production version" in res.json()["error"]
        wait_until(
            lambda: "no production version is deployed" in server.client.get("/healthz").text,
            "/healthz to say that nothing is deployed",
            seen=lambda: server.client.get("/healthz").text,
        )
        why = server.client.get("/healthz").json()["not_ready"][NAME]
        assert why["wanted"] is None and why["reason"].endswith("--production VERSION)")
        registry.deploy(NAME, production=1)
        server.wait_ready()

        seen: Counter[tuple[int, str]] = Counter()

        async def answered(version: str, count: int) -> None:
            await asyncio.to_thread(
                wait_until,
                lambda: answered_by(seen, version) >= count,
                f"{count} answers from version {version} under load",
                seen=lambda: dict(seen),
            )

        async def swap() -> None:
            # Counted, not timed: traffic on v1 before the swap, then on v2 after it.
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(server.url, stop, 8, seen))
            await answered("1", 40)
            await asyncio.to_thread(registry.deploy, NAME, production=2)
            await answered("2", 40)
            stop.set()
            await load

        asyncio.run(swap())
        statuses = {status for status, _ in seen}
        assert statuses == {200}, seen
        assert {v for _, v in seen} == {"1", "2"}

        # Version 3 is not a SavedModel: it is refused and version 2 keeps serving.
        registry.deploy(NAME, production=3, force=True, reason="test a broken artifact")
        wait_until(
            lambda: "3" in httpx.get(f"{server.url}/v1/models/{NAME}", verify=False).text,
            "version 3's failed load to be reported",
        )
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
        wait_until(
            lambda: (
                httpx.get(f"{server.url}/v2/models/{NAME}", verify=False).json()["versions"]
                == ["1", "2"]
            ),
            "versions 1 and 2 to be served",
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


def test_an_admin_token_of_a_person_acts_as_that_person_and_approval_bounds_the_weight(
    registry: Registry, tmp_path: Path
) -> None:
    # The configuration holds hashes only: a token put there by mistake is refused, unshown.
    toml = tmp_path / "mooring.toml"
    toml.write_text(
        '[project]\nname = "x"\n[serving]\nadmin_tokens = { "s3cret-token" = "alice" }\n'
    )
    with pytest.raises(ConfigError, match=r"the key of 'alice' \(12 characters, not shown") as bad:
        load_config(toml)
    assert "s3cret" not in str(bad.value)
    registry.deploy(NAME, production=1)
    registry.release = ReleaseRules(production_requires="approval", first_step=5)
    registrant = registry.get(NAME, version=2).created_by
    tokens = {token_digest("t-registrant"): registrant, token_digest("t-rev"): "reviewer"}
    cfg = FAST.model_copy(update={"admin_tokens": tokens})
    app = build_app([RegistrySource(registry, NAME)], cfg, registry=registry)
    url, events = "/admin/deployment", len(registry.history(NAME))
    canary = {"production": 1, "canary": 2, "reason": "try"}
    with ServerThread(app) as server:
        server.wait_ready()
        theirs = {"Authorization": "Bearer t-registrant"}
        assert (
            server.client.get("/admin/status", headers={"Authorization": "Bearer x"}).status_code
            == 401
        )
        # Her token, another person's name: refused, not recorded under the wrong name.
        res = server.client.post(
            url, headers=theirs, json={**canary, "weight": 5, "actor": "Reviewer"}
        )
        assert res.status_code == 403, res.text
        assert res.json()["error"] == (
            f"actor: the request declares 'Reviewer', but its token is {registrant!r}'s "
            "([serving] admin_tokens); a token acts only for its own person: leave actor out, "
            "or send the declared person's own token"
        )
        # Unapproved, her version serves at most the first rollout step through the API too.
        res = server.client.post(url, headers=theirs, json={**canary, "weight": 99})
        assert res.status_code == 422 and "cannot serve 99% of requests" in res.json()["error"]
        assert len(registry.history(NAME)) == events
        same = {**canary, "weight": 5, "actor": registrant.upper()}
        assert server.client.post(url, headers=theirs, json=same).status_code == 200
        assert registry.history(NAME)[-1].actor == f"{registrant} (mooring-serve-admin)"
    registry.approve(NAME, version=2, reason="read it", actor="reviewer")
    assert registry.deploy(NAME, production=1, canary=2, weight=99).canary_weight == 99


def test_serving_config_defaults_are_documented() -> None:
    cfg = ServingConfig()
    assert cfg.max_batch_size == 256 and cfg.batch_timeout_ms == 2.0
    for name, field in ServingConfig.model_fields.items():
        assert field.description, name


def fallback_metric(server: ServerThread) -> str:
    text = server.client.get("/metrics").text
    prefix = f'mooring_model_fallback{{model="{NAME}"}} '
    return next(line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix))


def states_of(server: ServerThread) -> dict[str, str]:
    res = server.client.get(f"/v1/models/{NAME}")
    assert res.status_code == 200, res.text
    return {s["version"]: s["state"] for s in res.json()["model_version_status"]}


@pytest.mark.decisions
def test_a_running_server_told_to_deploy_a_tampered_version_keeps_the_old_one_and_says_so(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.deploy(NAME, production=1)
    tamper(registry, NAME, 2)
    monkeypatch.setenv("MOORING_TEST_TOKEN", "s3cret")
    cfg = FAST.model_copy(update={"admin_token_env": "MOORING_TEST_TOKEN"})
    app = build_app([RegistrySource(registry, NAME)], cfg, registry=registry)
    with ServerThread(app) as server:
        server.wait_ready()
        assert "fallback" not in server.client.get("/healthz").json()
        assert fallback_metric(server) == "0.0"
        # The admin endpoint refuses it: the caller's mistake, a 422 naming the file.
        res = server.client.post(
            "/admin/deployment",
            headers={"Authorization": "Bearer s3cret"},
            json={"production": 2, "reason": "ship it"},
        )
        assert res.status_code == 422, res.text
        assert "income@2" in res.json()["error"] and "changed: mooring.json" in res.json()["error"]
        assert registry.deployment(NAME).production == 1
        # Forced past the check: the server keeps version 1, stays ready and says why.
        registry.deploy(NAME, production=2, force=True, reason="test: tampered on purpose")
        wait_until(
            lambda: "fallback" in server.client.get("/healthz").json(),
            "/healthz to report the fallback to version 1",
        )
        health = server.client.get("/healthz")
        assert health.status_code == 200 and health.json()["ready"] is True, health.text
        fallback = health.json()["fallback"][NAME]
        assert (fallback["wanted"], fallback["serving"]) == (2, 1)
        assert "changed: mooring.json" in fallback["reason"]
        assert "not_ready" not in health.json()
        assert server.client.get("/v2/health/ready").json() == {"ready": True}
        assert fallback_metric(server) == "1.0"
        assert states_of(server) == {"1": "AVAILABLE", "2": "END"}
        failed = server.client.get(f"/v1/models/{NAME}/versions/2").json()
        assert "mooring.json" in failed["model_version_status"][0]["status"]["error_message"]
        assert version_of(server) == "1"


def test_a_restarted_server_falls_back_to_the_last_version_that_verifies(
    registry: Registry,
) -> None:
    registry.deploy(NAME, production=1)
    tamper(registry, NAME, 2)
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
        assert fallback_metric(server) == "1.0"
        assert states_of(server) == {"1": "AVAILABLE", "2": "END"}
        # Deploying a version that loads ends the fallback.
        registry.deploy(NAME, production=1)
        wait_until(
            lambda: "fallback" not in server.client.get("/healthz").json(),
            "the fallback to end once version 1 is deployed",
        )
        assert fallback_metric(server) == "0.0"


def test_the_fallback_is_the_newest_earlier_production_that_verifies(
    registry: Registry,
) -> None:
    registry.deploy(NAME, production=1)
    registry.deploy(NAME, production=2)
    registry.deploy(NAME, production=3)  # verifies, but is not a SavedModel
    assert registry.deployment(NAME).previous == (1, 2)
    app = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(app) as server:
        server.wait_ready()
        assert server.client.get("/healthz").json()["fallback"][NAME]["serving"] == 2
        assert version_of(server) == "2"
    # Version 2 no longer verifies either: a restarted server goes one further back.
    tamper(registry, NAME, 2, "variables/variables.index")
    app = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(app) as server:
        server.wait_ready()
        fallback = server.client.get("/healthz").json()["fallback"][NAME]
        assert (fallback["wanted"], fallback["serving"]) == (3, 1)
        assert version_of(server) == "1"
        assert states_of(server) == {"1": "AVAILABLE", "2": "END", "3": "END"}
        status = server.client.get(f"/v1/models/{NAME}/versions/2").json()
        message = status["model_version_status"][0]["status"]["error_message"]
        assert "changed: variables/variables.index" in message


def test_with_nothing_that_verifies_the_server_is_not_ready_and_says_why(
    registry: Registry,
) -> None:
    tamper(registry, NAME, 1)
    registry.deploy(NAME, production=1, force=True, reason="test: tampered on purpose")
    app = build_app([RegistrySource(registry, NAME)], FAST, registry=registry)
    with ServerThread(app) as server:
        wait_until(
            lambda: 1 in server.app.state.mooring.managers[NAME].failures,
            "version 1's load to fail",
        )
        health = server.client.get("/healthz")
        assert health.status_code == 503 and health.json()["ready"] is False
        why = health.json()["not_ready"][NAME]
        assert why["wanted"] == 1 and "income@1" in why["reason"]
        assert "changed: mooring.json" in why["reason"]
        assert "no earlier production to fall back to" in why["reason"]
        assert "fallback" not in health.json() and fallback_metric(server) == "0.0"
        assert server.client.get("/v2/health/ready").status_code == 503
        res = server.client.post(PREDICT, content=BODY)
        assert res.status_code == 503 and "mooring.json" in res.json()["error"]
