"""The registry's database goes away: the loaded version keeps serving, the outage is reported
(status, /healthz, metrics), and following resumes when the database is back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving import RegistrySource, build_app
from tests._support.pg import fresh_database, start_server
from tests._support.server import BLESSED, FAST, LINEAGE, NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import wait_until

PREDICT = f"/v1/models/{NAME}:predict"
TOKEN = {"Authorization": "Bearer t0ken"}


def set_connections(admin_uri: str, database: str, *, allowed: bool) -> None:
    """Let the database take connections, or refuse new ones and end the open ones."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def registry_up(server: ServerThread) -> float | None:
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith(f'mooring_registry_up{{model="{NAME}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def until_registry_up(server: ServerThread, value: float) -> None:
    wait_until(lambda: registry_up(server) == value, f"mooring_registry_up to be {value:g}",
               seen=lambda: registry_up(server))  # fmt: skip


@pytest.mark.slow
def test_serving_survives_a_registry_outage_and_reports_it(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    admin = start_server()
    with fresh_database(admin) as url:
        database = urlparse(url).path.lstrip("/")
        reg = Registry.open(url, artifacts=tmp_path / "artifacts")
        for key in ("a", "b"):
            register_judged(
                reg,
                name=NAME,
                artifact_dir=model_dirs[key],
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        reg.deploy(NAME, production=1)
        cfg = FAST.model_copy(update={"admin_token": "t0ken"})
        app = build_app([RegistrySource(reg, NAME)], cfg, registry=reg)
        try:
            with ServerThread(app) as server:
                server.wait_ready()
                until_registry_up(server, 1.0)

                set_connections(admin, database, allowed=False)
                until_registry_up(server, 0.0)
                for _ in range(5):
                    res = server.client.post(PREDICT, json={"instances": [row()]})
                    assert res.status_code == 200 and res.headers["X-Model-Version"] == "1"
                health = server.client.get("/healthz")
                assert health.status_code == 200
                assert health.json() == {"ready": True, "registry": "unavailable"}
                assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
                status = server.client.get("/admin/status", headers=TOKEN).json()["models"][0]
                assert status["registry"]["ok"] is False
                assert "registry database" in status["registry"]["error"]
                assert status["registry"]["failing_since"] is not None
                assert status["production"] == 1 and status["ready"] is True
                errors = server.client.get("/metrics").text
                assert f'mooring_registry_errors_total{{model="{NAME}"}}' in errors

                set_connections(admin, database, allowed=True)
                until_registry_up(server, 1.0)
                assert server.client.get("/healthz").json()["registry"] == "ok"
                reg.deploy(NAME, production=2)
                wait_until(
                    lambda: (
                        server.client.post(PREDICT, json={"instances": [row()]}).headers.get(
                            "X-Model-Version"
                        )
                        == "2"
                    ),
                    "version 2 to answer once the registry is back",
                )
        finally:
            set_connections(admin, database, allowed=True)
            reg.close()
