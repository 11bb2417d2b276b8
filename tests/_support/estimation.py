"""Versions registered with a score map (the references' ``estimation``), without a model:
what the estimated-quality guardrail and ``mooring live`` read."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mooring.formats._version_record import References, RunRecord, VersionRecord
from mooring.registry import ModelVersion, Registry
from mooring.registry._judged import register_judged
from mooring.serving._log import PredictionLog
from tests._support.rollout import BLESSED, LINEAGE, NAME, artifact_dir

Floats = npt.NDArray[np.float64]
VOCABULARY = ("<=50K", ">50K")


def register_scored(
    registry: Registry,
    root: Path,
    seed: int,
    estimation: Mapping[str, Any],
    *,
    fingerprint: str = "e" * 64,
    metrics: Mapping[str, float] | None = None,
    task: str = "binary",
) -> ModelVersion:
    """A blessed version (binary unless ``task`` says; its artifact made under ``root``)
    whose references hold ``estimation`` and the sha256 of the evaluation data it was
    fitted on."""
    model = artifact_dir(root, seed)
    meta: dict[str, Any] = {"task": task}
    if task != "regression":
        meta["label_vocabulary"] = list(VOCABULARY)
    (model / "mooring.json").write_text(json.dumps(meta), encoding="utf-8")
    references = References(
        estimation=dict(estimation), evaluation={"data_fingerprint": fingerprint}
    )
    record = VersionRecord(
        lineage=LINEAGE,
        metrics=dict(metrics or {}),
        gate=BLESSED,
        run=RunRecord(
            task=task,
            threshold=None if task == "regression" else 0.5,
            references=references,
        ),
    )
    return register_judged(registry, name=NAME, artifact_dir=model, record=record)


def scored_log(scores: Floats) -> pa.Table:
    """Logged outputs of a binary model: one row per score."""
    probabilities = np.column_stack([1.0 - scores, scores])
    return pa.table({"output.probabilities": probabilities.tolist()})


def log_scores(url: Path, scores: Floats, *, version: int = 1, prefix: str = "r") -> None:
    """One logged request per score, as the server's log writes them (one file)."""
    log = PredictionLog(str(url), sample_rate=1.0, buffer_rows=scores.size + 1)
    log.start()
    for i, score in enumerate(scores):
        log.record(
            model=NAME,
            version=version,
            request_id=f"{prefix}{i}",
            columns={"age": np.array([40.0], dtype=np.float32)},
            outputs={"probabilities": np.array([[1.0 - score, score]])},
            rows=1,
            sampled=True,
        )
    log.close()
    time.sleep(0.01)  # the next file's name (its epoch ms) sorts after this one


def valued_log(inputs: pa.Table, values: Floats) -> pa.Table:
    """Logged rows of a regression: its ``inputs`` beside one predicted value per row."""
    return inputs.append_column("output.value", pa.array(values.tolist(), pa.float64()))
