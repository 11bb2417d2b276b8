"""Test data for the dashboard: a registry with evaluated versions and real drift reports.

Evaluations come from the evaluation layer (metrics, gate decision, report.html) on
synthetic labels and scores; drift reports from the monitoring layer's
``compute_drift`` on the Adult data, shifted on purpose, saved the way
``mooring monitor`` saves them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.dashboard._card import render_model_card
from mooring.dashboard._drift_report import render_drift_html
from mooring.dashboard._evaluation_report import render_evaluation_html
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged

NAME = "income"
TOKEN = "ui-test-token-1234"
LINEAGE: dict[str, Any] = {"data_fingerprint": "ab" * 32, "code_version": "test"}


def evaluation(home: Path, version: int, quality: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics and gate decision of a real evaluation; the report goes under ``home/reports``."""
    from mooring.config._evaluation import GateConfig
    from mooring.evaluation._evaluate import evaluate
    from mooring.evaluation._gates import decide

    rng = np.random.default_rng(version)
    labels = rng.integers(0, 2, 1500)
    scores = np.clip(labels * quality + rng.random(1500) * (1 - quality), 0.0, 1.0)
    result = evaluate(task="binary", labels=labels, scores=scores)
    # The change gate has no production model to compare with: skipped, each time.
    change = {"direction": "higher", "absolute": -0.01}
    gates = [GateConfig(metric="auc", lower=0.7), GateConfig(metric="auc", change=change)]
    decision = decide(result, gates=gates)
    result.save(home / "reports" / f"evaluation-v{version}", decision, html=render_evaluation_html)
    metrics = {k: v for k, v in result.metrics.items() if v is not None}
    return metrics, decision.to_dict()


def populate(registry: Registry, home: Path, artifact_dirs: list[Path]) -> None:
    """Register one evaluated version per folder (v1 and v2 pass the AUC gate, v3 fails it;
    the change gate is skipped for each)."""
    qualities = [0.3, 0.4, 0.02]
    # v1 records no kind (an mlp, as before kinds), v2 a chosen gbt candidate, v3 a linear.
    params: list[dict[str, Any]] = [
        {"hidden": [8]},
        {"hidden": [8], "kind": "gbt", "candidate": "trees"},
        {"hidden": [8], "kind": "linear"},
    ]
    for i, folder in enumerate(artifact_dirs):
        version = i + 1
        metrics, gate = evaluation(home, version, qualities[i % len(qualities)])
        register_judged(
            registry,
            name=NAME,
            artifact_dir=folder,
            record=VersionRecord(
                lineage=LINEAGE,
                metrics=metrics,
                gate=gate,
                params=params[i % len(params)],
                run=RunRecord.read(
                    {"task": "binary", "evaluation_report": f"reports/evaluation-v{version}"}
                ),
                parent_version=version - 1 if version > 1 else None,
                description=f"test model number {version}",
            ),
            reason="registered by the test",
            render_card=render_model_card,
        )


def plain_folders(root: Path, count: int) -> list[Path]:
    """Small artifact folders (the registry stores any folder; pages never load them)."""
    out = []
    for i in range(count):
        folder = root / f"artifact-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.bin").write_bytes(bytes([i]) * 64)
        out.append(folder)
    return out


def _window(table: pa.Table, rows: int, shift: float, seed: int) -> pa.Table:
    """``rows`` rows of ``table`` with ``age`` moved by ``shift`` years and the sexes swapped."""
    rng = np.random.default_rng(seed)
    picked = table.take(pa.array(rng.choice(table.num_rows, rows, replace=False)))
    age = np.asarray(picked.column("age").to_numpy(zero_copy_only=False), dtype=float) + shift
    columns = {"age": pa.array(age)}
    if shift:
        sex = picked.column("sex").to_pylist()
        columns["sex"] = pa.array(["Female" if s == "Male" else "Male" for s in sex])
    for name in ("age", "sex"):
        index = picked.column_names.index(name)
        picked = picked.set_column(index, name, columns.get(name, picked.column(name)))
    return picked


def write_drift_reports(home: Path, train: Path, *, model: str = NAME, version: int = 1) -> None:
    """Three reports an hour apart: two quiet ones, then age and sex drift."""
    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._drift import compute_drift

    options = ReadOptions(na_values=("?",))
    table = read_table(train, options).select(["age", "workclass", "sex", "hours-per-week"])
    baseline = compute_statistics(table.slice(0, 4000))
    rest = table.slice(4000)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    folder = home / "monitoring" / model / "drift"
    for i, shift in enumerate((0.0, 0.0, 12.0)):
        window = _window(rest, 800, shift, seed=i)
        report = compute_drift(
            baseline, window, MonitoringConfig(min_samples=200), model=model, version=version
        )
        report.created_at = (start + timedelta(hours=i)).isoformat()
        report.save(folder, html=render_drift_html)


def write_drift_file(folder: Path, name: str, data: Any) -> Path:
    """A drift file in any shape (for the tolerance tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path
