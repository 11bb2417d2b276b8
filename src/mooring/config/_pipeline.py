"""``[pipeline]`` (step caching, replay, cost) and ``[export]`` (TF Lite)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from mooring.config._base import Section


# --- [pipeline] (step caching, replay, cost) -----------------------------------------------------
class PipelineConfig(Section):
    """``[pipeline]``: ``mooring run``'s caching, replay test and cost accounting."""

    cache: bool = Field(
        True, description="Reuse a step's outputs while the fingerprint of its inputs is unchanged."
    )
    code_fingerprint: Literal["source", "package"] = Field(
        "source",
        description="What 'code version' means in step fingerprints: the mooring version plus "
        "a sha256 of its Python source (source), or the version alone (package).",
    )
    deploy: bool = Field(
        True,
        description="Deploy a blessed model: the first as production, later ones as a canary at "
        "[rollout] steps[0] percent. false: register only.",
    )
    replay: bool = Field(
        True, description="Replay recent production requests on the candidate before deploying."
    )
    replay_rows: int = Field(
        1000, ge=1, le=1_000_000, description="Rows taken from the end of the prediction log."
    )
    replay_latency_requests: int = Field(
        100, ge=0, le=100_000, description="Logged requests re-sent one by one to time both models."
    )
    replay_max_flip_rate: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Fail when more replayed decisions change than this, beyond what the "
        "candidate was trained to change: flips toward the label of a replayed request are "
        "fixes, and without labels its flip rate against production on its evaluation data "
        "is expected (each when shown to be fixes).",
    )
    replay_max_mean_abs_diff: float | None = Field(
        None,
        ge=0.0,
        description="Fail when the mean |candidate − production| score on replayed rows is above.",
    )
    replay_max_latency_ratio: float | None = Field(
        None, gt=0.0, description="Fail when candidate p95 latency ÷ production p95 is above."
    )
    cpu_hour_price: float | None = Field(
        None, ge=0.0, description="Price of one CPU-hour (any currency) for the run's cost figures."
    )
    serving_cpus: float = Field(
        1.0, gt=0.0, description="CPUs a server replica holds, for the cost per 1,000 predictions."
    )
    metrics_url: str | None = Field(
        None,
        description="A running server's /metrics URL; its inference time per row gives the cost "
        "per 1,000 predictions.",
    )


# --- [export] (TF Lite) --------------------------------------------------------------------------
class ExportConfig(Section):
    """``[export]``: TF Lite conversion and its accuracy gate."""

    mode: Literal["float16", "dynamic", "int8"] = Field(
        "dynamic",
        description="float16 (half-precision weights), dynamic (int8 weights) or int8 "
        "(int8 weights and activations, calibrated on representative rows).",
    )
    representative_rows: int = Field(
        300, ge=1, le=100_000, description="Rows that calibrate int8 ranges (random sample)."
    )
    calibration_data: str | None = Field(
        None, description="Rows to calibrate int8 on; default [data] train."
    )
    eval_data: str | None = Field(
        None, description="Labelled rows both models are scored on; default [data] eval."
    )
    metrics: list[str] | None = Field(
        None,
        description="Gated metrics; default auc + accuracy (binary), accuracy (multiclass), "
        "r2 (regression).",
    )
    max_metric_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Largest allowed worsening of each gated metric (0.01 = 1 percentage point).",
    )
    latency_rows: int = Field(
        200, ge=0, le=100_000, description="Single-row calls timed per runtime (0: skip)."
    )
    seed: int = Field(0, ge=0, description="Seed of the calibration sample.")
    # Measured on TF 2.21: an int8 ONE_HOT keeps its on/off values' scale while its output
    # is read with the next op's, so one-hot blocks come out as 0.62/4.76 instead of 0/1.
    int8_float_ops: list[str] = Field(
        default_factory=lambda: ["ONE_HOT"],
        description="TF Lite ops kept in float in int8 mode.",
    )
