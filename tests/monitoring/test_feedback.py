"""Live metrics: labels joined with the prediction log, scored like the evaluation layer."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import generate_latest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from mooring.errors import NotFoundError
from mooring.formats._feedback import FeedbackStore
from mooring.monitoring._feedback import live_metrics
from mooring.monitoring._gauges import live_gauges
from mooring.serving._log import PredictionLog
from tests._support.monitored import MonitoredProject, log_rows, shared_project

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring-project")]


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    return shared_project(tmp_path_factory)


def _store(project: MonitoredProject) -> FeedbackStore:
    return FeedbackStore(str(project.cfg.home / "feedback"))


def test_live_metrics_match_scikit_learn(project: MonitoredProject) -> None:
    from mooring.formats._predictions import read_prediction_log

    table = project.eval_table.slice(0, 600)
    ids = log_rows(project, table)
    truth = table["class"].to_pylist()
    # Labels for the first 500 requests, as class names; the model's positive class is >50K.
    _store(project).write("income", list(zip(ids[:500], truth[:500], strict=True)))
    # A label for a request that was never logged (not sampled) is counted, not joined.
    _store(project).write("income", [("never-logged", ">50K")])
    live = live_metrics(project.cfg)
    assert live.labels == {"received": 501, "matched": 500, "ambiguous": 0, "unmatched": 1}
    quality = live.version(1)
    assert quality is not None and quality.status == "ok" and quality.rows == 500
    log = read_prediction_log(str(project.cfg.home / "predictions"), "income")
    proba = np.array(log["output.probabilities"].to_pylist())[:500, 1]
    y = np.array([1 if v == ">50K" else 0 for v in truth[:500]])
    assert quality.metrics["auc"] == pytest.approx(roc_auc_score(y, proba), abs=1e-9)
    assert quality.metrics["log_loss"] == pytest.approx(log_loss(y, proba), abs=1e-9)
    threshold = quality.threshold if quality.threshold is not None else 0.5
    assert quality.metrics["accuracy"] == pytest.approx(
        accuracy_score(y, (proba >= threshold).astype(int))
    )
    # Beside the evaluation-time value stored in the registry.
    assert quality.evaluation["auc"] == 0.8
    assert quality.change["auc"] == pytest.approx(quality.metrics["auc"] - 0.8)
    text = generate_latest(live_gauges(live)).decode()
    assert 'mooring_live_labels{model="income",version="1"} 500.0' in text
    assert 'mooring_live_metric{metric="auc",model="income",version="1"}' in text


def test_class_ids_batches_and_small_samples(project: MonitoredProject) -> None:
    table = project.eval_table.slice(0, 120)
    ids = log_rows(project, table)
    truth = [1 if v == ">50K" else 0 for v in table["class"].to_pylist()]
    # Labels as class ids (0/1) work too; 40 labels are below live_min_labels = 50.
    _store(project).write(
        "income", [(i, str(t)) for i, t in zip(ids[:40], truth[:40], strict=True)]
    )
    plog = PredictionLog(str(project.cfg.home / "predictions"), sample_rate=1.0)
    plog.start()
    plog.record(
        model="income",
        version=1,
        request_id="batch",
        columns={"age": np.array([30.0, 40.0], dtype=np.float32)},
        outputs={"probabilities": np.array([[0.5, 0.5], [0.4, 0.6]])},
        rows=2,
    )
    plog.close()
    _store(project).write("income", [("batch", "1"), (ids[41], "not-a-class")])
    live = live_metrics(project.cfg)
    assert live.labels["ambiguous"] == 1  # one label cannot describe a 2-row request
    quality = live.version(1)
    assert quality is not None
    assert quality.status == "insufficient_data" and quality.rows == 40
    assert quality.invalid_labels == 1 and quality.metrics == {}


def test_no_labels_is_an_error_naming_the_fix(project: MonitoredProject) -> None:
    log_rows(project, project.eval_table.slice(0, 10))
    with pytest.raises(NotFoundError, match="mooring feedback FILE"):
        live_metrics(project.cfg)
    # Registered without a score map, its version cannot be estimated either.
    with pytest.raises(NotFoundError, match="mooring feedback FILE"):
        live_metrics(project.cfg, estimates=True)
