"""Drift for a model whose inputs are images: the log's per-row summaries against the
references its import computed from ``--data``.

A CNN is imported with a table of small images; a real server logs a summary of each
request's pixels (mean, spread, extremes, share of zeros), never the pixels. Traffic like
the data is judged ok; brighter images (a camera's new exposure) drift on the summaries,
while every request still answers 200.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mooring.monitoring import check_drift
from mooring.pipeline._import import import_version
from mooring.registry import Registry
from tests._support.imported_models import build_cnn
from tests._support.rollout import project
from tests._support.server import following
from tests._support.traffic import logged_rows
from tests._support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring-project")]

NAME = "digits"
ROWS = 1200
SERVING = {
    "poll_interval_s": 0.1,
    "warmup_requests": 2,
    "log_sample_rate": 1.0,
    "log_flush_rows": 400,
    "log_flush_s": 0.2,
    "deadline_ms": 120_000,
}


def _images(rng: np.random.Generator, rows: int, *, brighter: bool = False) -> np.ndarray:
    """Small grey images: a blob of light on a dark field, some pixels exactly 0."""
    images = rng.random((rows, 8, 8, 1), dtype=np.float32) * rng.random((rows, 1, 1, 1)).astype(
        np.float32
    )
    images[images < 0.05] = 0.0
    if brighter:
        images = np.clip(images * 0.6 + 0.4, 0.0, 1.0)
    return images


def _send(client: httpx.Client, images: np.ndarray) -> None:
    for start in range(0, len(images), 4):
        answer = client.post(
            f"/v1/models/{NAME}:predict",
            json={"inputs": {"image": images[start : start + 4].tolist()}},
        )
        assert answer.status_code == 200, answer.text


def test_brighter_images_drift_on_their_summaries(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = _images(rng, ROWS)
    labels = [f"d{int(i.mean() * 10) % 3}" for i in data]
    pq.write_table(pa.table({"image": data.tolist(), "digit": labels}), tmp_path / "images.parquet")
    cfg = project(tmp_path / "home", serving=SERVING)
    cfg = cfg.model_copy(
        update={
            "project": cfg.project.model_copy(update={"name": NAME}),
            "data": cfg.data.model_copy(
                update={"label": "digit", "eval": str(tmp_path / "images.parquet")}
            ),
        }
    )
    registry = Registry.from_config(cfg)
    mv = import_version(
        registry, NAME, build_cnn(tmp_path / "cnn"), task="multiclass",
        data=tmp_path / "images.parquet", config=cfg, classes=["d0", "d1", "d2"],
    )  # fmt: skip
    columns: dict[str, Any] = (mv.statistics or {}).get("columns", {})
    assert {"image.mean", "image.std", "image.max", "image.zeros"} <= set(columns)
    registry.promote(NAME, version=mv.version, force=True, reason="random weights, a drift test")
    log = cfg.home / "predictions"
    with following(cfg, Registry.from_config(cfg), NAME) as server:
        _send(server.client, _images(np.random.default_rng(1), ROWS))
        wait_until(lambda: logged_rows(log) >= ROWS, "the like-the-data rows in the log")
        same = check_drift(cfg, registry, last=ROWS, write=False)
        assert not any(f.startswith("image.") for f in same.drifted), same.drifted
        _send(server.client, _images(np.random.default_rng(2), ROWS, brighter=True))
        wait_until(lambda: logged_rows(log) >= 2 * ROWS, "the brighter rows in the log")
        brighter = check_drift(cfg, registry, last=ROWS, write=False)
    assert brighter.status == "drift"
    assert {"image.mean", "image.min"} <= set(brighter.drifted), brighter.drifted
    registry.close()
