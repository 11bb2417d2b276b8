"""Adult trained on one process or several workers, and the AUC its model scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from mooring.config import load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.features._inputs import predict_saved_model
from mooring.training._fit import TrainingResult
from mooring.training._train import train_model

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"
#: Enough epochs for the AUC to settle near its plateau, few enough for the suite.
EPOCHS = 3


def train_adult(
    output: Path,
    *,
    workers: int,
    engine: str = "local",
    launcher: Any = None,
    kind: str = "mlp",
) -> TrainingResult:
    """The bundled Adult project's model, ``EPOCHS`` epochs, on ``workers`` workers."""
    cfg = load_config(ADULT / "mooring.toml")
    cfg.model.epochs = EPOCHS
    cfg.model.kind = kind  # type: ignore[assignment]
    cfg.training.workers = workers
    cfg.training.engine = engine  # type: ignore[assignment]
    # Ray actors start and import TensorFlow while the rest of the suite runs on the same
    # cores: 120 s (the default) was seen to pass before both had joined.
    cfg.training.start_timeout = "10m"  # type: ignore[assignment]
    options = ReadOptions.from_config(cfg.data)
    stats = compute_statistics(cfg.path(cfg.data.train), options)
    schema = infer_schema(stats, label=cfg.data.label, contract=cfg.contract)
    return train_model(cfg, statistics=stats, schema=schema, output_dir=output, launcher=launcher)


def adult_auc(model_dir: Path) -> float:
    """The model's ROC AUC on adult.test (scikit-learn's)."""
    cfg = load_config(ADULT / "mooring.toml")
    options = ReadOptions.from_config(cfg.data)
    test = read_table(cfg.path(str(cfg.data.eval)), options)
    scores = predict_saved_model(model_dir, test)["probabilities"][:, 1]
    y = np.asarray([v == ">50K" for v in test.column("class").to_pylist()], dtype=np.float64)
    return float(roc_auc_score(y, scores))


def adult_rows(count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows of adult.test without the label, as a client sends them."""
    cfg = load_config(ADULT / "mooring.toml")
    test = read_table(cfg.path(str(cfg.data.eval)), ReadOptions.from_config(cfg.data))
    return test.drop_columns(["class"]).slice(0, count).to_pylist()
