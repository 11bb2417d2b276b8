"""A prediction log of made-up answers, written by the server's own PredictionLog, and
labels for some of its requests: for what ``mooring live`` counts, no model needed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mooring.config import MooringConfig
from mooring.formats._feedback import FeedbackStore
from mooring.serving._log import PredictionLog
from tests._support.rollout import NAME


def log_requests(
    url: str | Path,
    ids: Sequence[str],
    *,
    model: str = NAME,
    version: int = 1,
    shadow: bool = False,
) -> None:
    """One logged row per request id, in one file of its own (written after the last one)."""
    plog = PredictionLog(str(url), sample_rate=1.0, buffer_rows=len(ids) + 1)
    plog.start()
    for rid in ids:
        plog.record(
            model=model,
            version=version,
            request_id=rid,
            columns={"age": np.array([40.0], dtype=np.float32)},
            outputs={"probabilities": np.array([[0.7, 0.3]])},
            rows=1,
            shadow=shadow,
            sampled=True,
        )
    plog.close()
    time.sleep(0.01)  # the next file's name (its epoch ms) sorts after this one


def send_labels(cfg: MooringConfig, ids: Sequence[str], label: str = "1") -> None:
    """A label for each request id, as ``mooring feedback`` stores them."""
    FeedbackStore(str(cfg.home / "feedback")).write(NAME, [(rid, label) for rid in ids])
