"""Helpers for the rollout tests: a project config, a registry of artifact folders, traffic
recorded on a real ServingMetrics (the server's own Prometheus collectors) and a clock."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving._metrics import ServingMetrics

NAME = "income"
BLESSED: dict[str, Any] = {"blessed": True, "gates": []}
LINEAGE: dict[str, Any] = {"data_fingerprint": "0" * 64, "code_version": "test"}


class Clock:
    """A settable clock (seconds since the epoch), starting at the real time."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def artifact_dir(root: Path, seed: int) -> Path:
    """A small artifact folder laid out like an exported model (the controller never loads it)."""
    folder = root / f"model-{seed}"
    (folder / "variables").mkdir(parents=True)
    payload = bytes((seed * 31 + i * 7) % 256 for i in range(2048))
    (folder / "saved_model.pb").write_bytes(b"pb" + payload)
    (folder / "variables" / "variables.index").write_bytes(payload[:64])
    (folder / "mooring.json").write_text(json.dumps({"seed": seed}))
    return folder


def project(home: Path, **sections: Any) -> MooringConfig:
    """A project whose home is ``home``; extra sections override the defaults."""
    mapping: dict[str, Any] = {
        "project": {"name": NAME, "home": str(home)},
        "data": {"train": "train.csv", "label": "class"},
        "monitoring": {"alerts": {"log": True}},
    }
    for key, value in sections.items():
        mapping[key] = {**mapping.get(key, {}), **value}
    return MooringConfig.from_mapping(mapping, root=home)


def registry_with_versions(cfg: MooringConfig, count: int = 3) -> Registry:
    """A SQLite registry under the project's home with ``count`` blessed versions."""
    reg = Registry.from_config(cfg)
    for seed in range(count):
        register_judged(
            reg,
            name=NAME,
            artifact_dir=artifact_dir(cfg.home / "src", seed),
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
    return reg


def serve(
    metrics: ServingMetrics,
    version: int,
    requests: int,
    *,
    errors: int = 0,
    latency_s: float = 0.002,
    status: str = "500",
) -> None:
    """Count ``requests`` answered by ``version`` (``errors`` of them 5xx), one batch each."""
    ok = requests - errors
    if ok:
        metrics.requests.labels(NAME, str(version), "tfserving", "200").inc(ok)
    if errors:
        metrics.requests.labels(NAME, str(version), "tfserving", status).inc(errors)
    histogram = metrics.inference.labels(NAME, str(version))
    latency = metrics.latency.labels(NAME, str(version), "tfserving")
    for _ in range(requests):
        histogram.observe(latency_s)
        latency.observe(latency_s)


#: ``[serving]`` of a rollout test's server: follows the registry quickly, logs every
#: request and writes the log often; a request's deadline is only a safety net (a
#: loaded machine answers late, not 504).
LOGGED_SERVING: dict[str, Any] = {
    "poll_interval_s": 0.1,
    "warmup_requests": 2,
    "max_batch_size": 32,
    "batch_timeout_ms": 1.0,
    "log_sample_rate": 1.0,
    "log_flush_rows": 50,
    "log_flush_s": 0.2,
    "deadline_ms": 120_000,
}
