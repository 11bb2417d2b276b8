"""Servers for tests: real SavedModels, a real SQLite registry and real HTTP servers.

Shared by the serving, dashboard, monitoring and pipeline tests; ``model_dirs`` is a
fixture: import it into a conftest to use it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mooring.config import MooringConfig, ServingConfig
from mooring.formats._metrics import REQUESTS, read_samples, total
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving import RegistrySource, Server, build_app
from mooring.serving._door import Door
from tests._support.ports import bound_socket
from tests._support.ports import free_port as free_port  # where the tests import it from
from tests._support.serving_model import build_model_dir
from tests._support.waiting import wait_until

BLESSED: dict[str, Any] = {"blessed": True, "gates": []}
LINEAGE: dict[str, Any] = {"data_fingerprint": "0" * 64, "code_version": "test"}
NAME = "income"


def listening(port: int) -> bool:
    """Whether anything on this machine listens on TCP ``port`` (``/proc/net/tcp*``)."""
    hexed = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            if any(hexed in line and line.split()[3] == "0A" for line in handle):
                return True
    return False


class ServerThread:
    """mooring's server (any ASGI app behind the door, or behind ``door``) on 127.0.0.1 and
    a free port, in a background thread of this process."""

    def __init__(self, app: Starlette | Any, door: Door | None = None) -> None:
        self.app = app
        # The socket is bound here and handed to the server, so no other process can take
        # the port between choosing it and listening (a model's load can take seconds).
        self.socket = bound_socket()
        self.port: int = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(app, host="127.0.0.1", port=self.port, door=door)
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],), daemon=True)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def __enter__(self) -> ServerThread:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError(f"the test server on {self.url} stopped while starting")
            return bool(self.server.started)

        wait_until(started, f"the test server to listen on {self.url}", interval=0.02)
        return self

    def wait_ready(self) -> None:
        wait_until(
            lambda: httpx.get(f"{self.url}/v2/health/ready", verify=False).status_code == 200,
            f"{self.url}/v2/health/ready to answer 200",
        )

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.socket.close()


@contextmanager
def following(
    cfg: MooringConfig, registry: Registry, name: str, *, feedback: bool = False
) -> Iterator[ServerThread]:
    """A ready server following ``name``'s deployment in ``registry``, as ``mooring serve``.

    It logs predictions (and, with ``feedback``, takes labels) under ``cfg.home``; the
    registry is closed on the way out.
    """
    app = build_app(
        [RegistrySource(registry, name)],
        cfg.serving,
        prediction_log_url=str(cfg.home / "predictions"),
        registry=registry,
        feedback_url=str(cfg.home / "feedback") if feedback else None,
    )
    try:
        with ServerThread(app) as server:
            server.wait_ready()
            yield server
    finally:
        registry.close()


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real exported models (different weights) and a folder that is not a SavedModel."""
    root = tmp_path_factory.mktemp("models")
    broken = root / "broken"
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    (broken / "mooring.json").write_text("{}")
    return {
        "a": build_model_dir(root / "a", seed=0),
        "b": build_model_dir(root / "b", seed=1),
        "broken": broken,
    }


def new_registry(root: Path, model_dirs: dict[str, Path]) -> Registry:
    """A SQLite registry holding a (v1), b (v2), broken (v3); nothing deployed."""
    reg = Registry.open(f"sqlite:///{root / 'registry.db'}", artifacts=root / "artifacts")
    for key in ("a", "b", "broken"):
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dirs[key],
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
    return reg


# Quick to follow the registry; a request's deadline is a safety net here (tests of the
# deadline set their own), so a loaded machine answers late rather than 504.
FAST = ServingConfig(
    poll_interval_s=0.1,
    warmup_requests=2,
    max_batch_size=32,
    batch_timeout_ms=1.0,
    body_limit_bytes=64 * 1024,
    deadline_ms=120_000,
)


def request_statuses(server: ServerThread, model: str | None = None) -> dict[str, float]:
    """``mooring_requests_total`` by status, summed over models (or of ``model`` alone)
    and versions, from the server's ``/metrics``."""
    counts: dict[str, float] = {}
    for s in read_samples(server.client.get("/metrics").text):
        if s.name == total(REQUESTS) and model in (None, s.labels.get("model")):
            counts[s.labels["status"]] = counts.get(s.labels["status"], 0.0) + s.value
    return counts
