"""``mooring init`` + ``mooring run``, no edits, on imbalanced tables: a good model is blessed.

Two tables of 3,000 rows, eight numeric columns and a logistic ground truth, generated
with a seeded numpy (no package in the environment ships an imbalanced table of this
shape locally): 17% positives, whose oracle AUC on the 600 held-out rows is about 0.68,
and 6% positives. At the threshold 0.5 the gates ``init`` used to propose refused every
candidate of such tables (recall 0, accuracy below the majority share). The reference is
scikit-learn's best (``LogisticRegression``, ``HistGradientBoostingClassifier``) on the
very split ``init`` made. Each table is initialised and run once (module-scoped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from mooring.config import load_config
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide
from mooring.evaluation._result import Prior
from mooring.registry import Registry
from tests._support.cli import mooring_in_process

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("imbalanced-init-run")]

#: name: (positive share, scale of the true log-odds, seed)
TABLES = {"positives-17pct": (0.17, 0.6, 0), "positives-6pct": (0.06, 1.0, 1)}
FEATURES = [f"x{i}" for i in range(8)]


def _logistic_table(rows: int, share: float, scale: float, seed: int) -> pa.Table:
    """Eight standard normal columns, a label drawn from a logistic model of them, and
    the oracle's probability (``oracle``, not a feature: ``init`` is told to leave it)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    weights = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.2, 0.0])
    z = x @ (weights / np.linalg.norm(weights) * scale)
    low, high = -10.0, 10.0
    for _ in range(60):  # the intercept whose mean probability is the share
        middle = (low + high) / 2
        low, high = (
            (low, middle)
            if (1 / (1 + np.exp(-(z + middle)))).mean() > share
            else (
                middle,
                high,
            )
        )
    probability = 1.0 / (1.0 + np.exp(-(z + low)))
    label = (rng.random(rows) < probability).astype(np.int64)
    return pa.table(
        {**{n: x[:, i] for i, n in enumerate(FEATURES)}, "oracle": probability, "label": label}
    )


@dataclass
class Project:
    folder: Path
    init: str
    run: str
    code: int
    train: pa.Table
    held_out: pa.Table
    #: Each scikit-learn model's probabilities on the held-out rows (fitted once).
    reference: dict[str, np.ndarray]


@pytest.fixture(scope="module", params=list(TABLES))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    share, scale, seed = TABLES[request.param]
    folder = tmp_path_factory.mktemp(request.param.replace("-", "_"))
    pq.write_table(_logistic_table(3000, share, scale, seed), folder / "data.parquet")
    init = mooring_in_process("init", "data.parquet", "--exclude", "oracle", cwd=folder)
    assert init.returncode == 0, init.stdout + init.stderr
    run = mooring_in_process("run", "-c", "mooring.toml", cwd=folder)
    train = pq.read_table(folder / "data.train.parquet")
    held_out = pq.read_table(folder / "data.holdout.parquet")
    return Project(
        folder,
        init.stdout + init.stderr,
        run.stdout + run.stderr,
        run.returncode,
        train,
        held_out,
        _scikit_learn(train, held_out),
    )


def _arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    x = np.column_stack([table.column(n).to_numpy() for n in FEATURES])
    return x, table.column("label").to_numpy()


def _scikit_learn(train: pa.Table, held_out: pa.Table) -> dict[str, np.ndarray]:
    """Each reference model's probabilities on the held-out rows."""
    x, y = _arrays(train)
    held, _ = _arrays(held_out)
    models = {
        "LogisticRegression": LogisticRegression(max_iter=1000),
        "HistGradientBoostingClassifier": HistGradientBoostingClassifier(random_state=0),
    }
    return {name: model.fit(x, y).predict_proba(held)[:, 1] for name, model in models.items()}


def test_the_tables_have_the_shape_they_claim(project: Project) -> None:
    labels = project.held_out.column("label").to_numpy()
    oracle = roc_auc_score(labels, project.held_out.column("oracle").to_numpy())
    assert project.held_out.num_rows == 600
    if "17pct" in str(project.folder):
        assert 0.15 < labels.mean() < 0.19 and 0.64 < oracle < 0.72
    else:
        assert 0.04 < labels.mean() < 0.08 and oracle > 0.7


def test_init_and_run_bless_a_model_within_001_auc_of_scikit_learns_best(project: Project) -> None:
    assert project.code == 0, project.run
    labels = project.held_out.column("label").to_numpy()
    reference = {name: roc_auc_score(labels, p) for name, p in project.reference.items()}
    config = load_config(project.folder / "mooring.toml")
    with Registry.from_config(config) as registry:
        mv = registry.get(config.project.name, version=1)
    assert mv.blessed and mv.verdict == "blessed", project.run
    assert mv.metrics["auc"] >= max(reference.values()) - 0.01, (mv.metrics, reference)
    # The operating threshold was chosen on the eval data and registered with the version.
    assert mv.record.run.threshold_source == "f1_optimal"
    assert mv.operating_threshold is not None and 0.0 < mv.operating_threshold < 0.5
    report = mv.record.run.evaluation_report
    assert report is not None
    page = next(Path(report).rglob("report.html")).read_text(encoding="utf-8")
    assert "(f1_optimal on the evaluated rows)" in page


def test_the_proposed_gates_bless_scikit_learns_logistic_regression(project: Project) -> None:
    """The judgment ``init`` proposes, applied to the reference model's probabilities."""
    config = load_config(project.folder / "mooring.toml").evaluation
    assert config.threshold == "f1_optimal" and config.gates == []
    labels = project.held_out.column("label").to_numpy()
    rate = float(project.train.column("label").to_numpy().mean())
    prior = Prior("the training labels", frequencies=(1.0 - rate, rate))
    probabilities = project.reference["LogisticRegression"]
    result = evaluate(
        task="binary", labels=labels, scores=probabilities, config=config, prior=prior
    )
    decision = decide(result)
    assert decision.blessed and decision.defaults, [g.message for g in decision.failures]
    judged = {g.name: g for g in decision.judged}
    prior_gate = judged["log_loss below always predicting the training base rate"]
    assert prior_gate.value == pytest.approx(log_loss(labels, probabilities))
    assert prior_gate.bound["upper"] == pytest.approx(log_loss(labels, np.full(labels.size, rate)))
    assert {
        "auc beats chance beyond its interval",
        "recall at least 0.1 at the chosen threshold",
        "precision above the positive share at the chosen threshold",
    } <= set(judged)
