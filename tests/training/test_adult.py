"""The quality floor on real data: examples/adult with its own mooring.toml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mooring.config import load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.features._inputs import predict_saved_model
from mooring.training._train import train_model


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    ids = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = ids == b
        if inside.any():
            total += inside.sum() * abs(float(p[inside].mean()) - float(y[inside].mean()))
    return total / len(p)


@pytest.mark.slow
def test_adult_meets_the_quality_floor(adult_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(adult_dir / "mooring.toml")
    options = ReadOptions.from_config(cfg.data)
    stats = compute_statistics(cfg.path(cfg.data.train), options)
    schema = infer_schema(stats, label=cfg.data.label, contract=cfg.contract)
    result = train_model(cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run")
    test = read_table(cfg.path(str(cfg.data.eval)), options)
    probabilities = predict_saved_model(result.model_dir, test)["probabilities"][:, 1]
    y = np.asarray([v == ">50K" for v in test.column("class").to_pylist()], dtype=np.float64)
    assert roc_auc_score(y, probabilities) >= 0.912
    assert log_loss(y, probabilities) <= 0.31
    assert expected_calibration_error(y, probabilities) <= 0.015
    assert result.parity is not None and result.parity.passed
