"""Cost figures of a run: CPU-hours priced by ``[pipeline] cpu_hour_price``.

Two figures: what the run (and its training step) cost, from the CPU seconds the
pipeline run's record measured; and what 1,000 predictions cost, from a server's Prometheus
metrics when ``[pipeline] metrics_url`` names one (inference seconds per row ×
``serving_cpus``), else from the replay test's CPU time per row.

Examples:
    >>> run_cost(cpu_seconds=7200.0, train_cpu_seconds=3600.0, price=0.05)["run_cost"]
    0.1
"""

from __future__ import annotations

from typing import Any

from mooring.formats._metrics import BATCH_SIZE, INFERENCE_LATENCY, read_samples, sum_of

__all__ = ["run_cost", "serving_cost_from_metrics"]


def run_cost(
    *, cpu_seconds: float, train_cpu_seconds: float, price: float | None
) -> dict[str, Any]:
    """The run's CPU-hours and, with a price, what they cost."""
    hours = cpu_seconds / 3600.0
    out: dict[str, Any] = {
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_hours": hours,
        "cpu_hour_price": price,
        "run_cost": None,
        "training_cost": None,
    }
    if price is not None:
        out["run_cost"] = round(hours * price, 10)
        out["training_cost"] = round(train_cpu_seconds / 3600.0 * price, 10)
    return out


def serving_cost_from_metrics(
    text: str, model: str, *, price: float | None, cpus: float
) -> dict[str, Any]:
    """Per version: inference seconds per 1,000 rows and their cost, from /metrics text.

    Uses ``mooring_inference_latency_seconds_sum`` (time in the model per batch) and
    ``mooring_batch_size_rows_sum`` (rows per batch) of each version of ``model``.
    """
    seconds: dict[str, float] = {}
    rows: dict[str, float] = {}
    inference, batch_rows = sum_of(INFERENCE_LATENCY), sum_of(BATCH_SIZE)
    for name, labels, value in read_samples(text):
        if labels.get("model") != model:
            continue
        version = labels.get("version", "")
        if name == inference:
            seconds[version] = seconds.get(version, 0.0) + value
        elif name == batch_rows:
            rows[version] = rows.get(version, 0.0) + value
    out: dict[str, Any] = {}
    for version, count in rows.items():
        if count <= 0:
            continue
        per_1000 = seconds.get(version, 0.0) / count * 1000.0 * cpus
        out[version] = {
            "rows": int(count),
            "cpu_seconds_per_1000": per_1000,
            "cost_per_1000": None if price is None else per_1000 / 3600.0 * price,
        }
    return out
