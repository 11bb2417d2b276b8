"""``mooring live`` says which labels its window leaves out and why, and estimates what
the labels will say before they come."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mooring.cli import main
from mooring.config import load_config
from mooring.formats._feedback import FeedbackStore
from mooring.monitoring import _feedback
from mooring.monitoring._estimate import fit_reference, version_estimate
from mooring.monitoring._estimate_loss import fit_loss_reference
from mooring.registry import Registry
from mooring.serving._log import PredictionLog
from tests._support.adult_arrays import adult_model_scores, adult_rows, age_predictions
from tests._support.estimation import VOCABULARY, log_scores, register_scored
from tests._support.labelled_log import log_requests, send_labels
from tests._support.rollout import NAME, registry_with_versions
from tests._support.rollout_evidence import write_config
from tests._support.server import free_port


def test_live_tells_labels_outside_the_window_from_unknown_request_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    registry_with_versions(cfg, 1).close()
    old, new = [f"o{i}" for i in range(300)], [f"n{i}" for i in range(100)]
    log_requests(cfg.home / "predictions", old)
    log_requests(cfg.home / "predictions", new)
    send_labels(cfg, [*old, *new, "never-seen"])

    assert main(["live", "--config", str(toml), "--last", "100"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "income: 100 labelled predictions in 100 logged rows (401 labels; not matched: 300 "
        "for requests logged outside this window (--last, --since), 1 with a request id the "
        "log does not hold)"
    ) in said
    assert "not in the log" not in said

    assert main(["live", "--config", str(toml), "--last", "100", "--json"]) == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert (labels["outside_window"], labels["not_logged"], labels["unmatched"]) == (300, 1, 301)

    assert main(["live", "--config", str(toml), "--last", "1000"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "(401 labels; not matched: 1 with a request id the log does not hold)" in said


def test_before_labels_live_estimates_a_shifted_adult_window_that_its_labels_then_confirm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A version whose score map was frozen from half of adult.test (scikit-learn's trees,
    # trained on adult.data) serves the other half's workers of 45 or more with a degree:
    # 60% of them earn >50K against 24%. `mooring live` estimates its AUC and accuracy
    # from the logged scores alone; once the labels come, both fall within the bands.
    # (How often the bands hold over many splits: tests/monitoring/test_estimate.py.)
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    test, labels, scores = adult_model_scores()
    order = np.random.default_rng(0).permutation(labels.size)
    frozen, served = order[: labels.size // 2], order[labels.size // 2 :]
    reference = fit_reference(scores[frozen], labels[frozen], threshold=0.5)
    older = (test["age"].to_numpy() >= 45) & (test["education-num"].to_numpy() >= 13)
    window = served[older[served]]
    with Registry.from_config(cfg) as registry:
        register_scored(registry, cfg.home / "src", 0, reference.to_dict())
    ids = [f"r{i}" for i in window]
    log = PredictionLog(str(cfg.home / "predictions"), sample_rate=1.0, buffer_rows=len(ids) + 1)
    log.start()
    for rid, i in zip(ids, window, strict=True):
        log.record(
            model=NAME,
            version=1,
            request_id=rid,
            columns={"age": np.array([test["age"].iloc[i]], dtype=np.float32)},
            outputs={"probabilities": np.array([[1.0 - scores[i], scores[i]]])},
            rows=1,
            sampled=True,
        )
    log.close()

    assert main(["live", "--config", str(toml)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"income: no labels yet, {window.size:,} logged rows" in said, said
    assert main(["live", "--config", str(toml), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["versions"] == [] and before["estimates"]["1"]["rows"] == window.size
    estimated = before["estimates"]["1"]["metrics"]
    held_out_accuracy = float(np.mean((scores[frozen] >= 0.5) == labels[frozen]))
    assert estimated["accuracy"]["high"] < held_out_accuracy  # the shift is seen unlabelled

    FeedbackStore(str(cfg.home / "feedback")).write(
        NAME, [(rid, VOCABULARY[int(labels[i])]) for rid, i in zip(ids, window, strict=True)]
    )
    assert main(["live", "--config", str(toml), "--json"]) == 0
    (quality,) = json.loads(capsys.readouterr().out)["versions"]
    assert quality["rows"] == window.size
    for name in ("auc", "accuracy"):
        back_test = quality["estimated"][name]
        assert back_test["live"] == pytest.approx(quality["metrics"][name])
        assert back_test["within"], (name, back_test)
    assert main(["live", "--config", str(toml)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"estimated on the {window.size:,} labelled rows, the live value falls:" in said


def test_a_regressions_error_is_estimated_before_labels_and_checked_once_they_come(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Age from five columns of Adult, its error model frozen from 6,000 held-out rows; the
    # window is 800 people whose relationship is Own-child, on whom it errs far less.
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    rows = adult_rows(rows=15000)
    age, predicted = age_predictions(rows[:3000], rows[3000:])
    numbers = ("education-num", "capital-gain", "capital-loss", "hours-per-week")
    texts = ("workclass", "education", "marital-status", "occupation", "relationship", "sex")
    served = rows[3000:]
    table = pa.table(
        {
            **{c: [float(r[c]) for r in served] for c in numbers},
            **{c: [r[c] for r in served] for c in texts},
        }
    )
    reference = fit_loss_reference(table.slice(0, 6000), predicted[:6000], age[:6000])
    with Registry.from_config(cfg) as registry:
        register_scored(registry, cfg.home / "src", 0, reference.to_dict(), task="regression")
    child = [i for i in range(6000, age.size) if served[i]["relationship"] == "Own-child"]
    window = child[:800]
    log = PredictionLog(str(cfg.home / "predictions"), sample_rate=1.0, buffer_rows=1000)
    log.start()
    for i in window:
        log.record(
            model=NAME,
            version=1,
            request_id=f"a{i}",
            columns={
                **{c: np.array([float(served[i][c])]) for c in numbers},
                **{c: np.array([served[i][c]], dtype=object) for c in texts},
            },
            outputs={"value": np.array([predicted[i]])},
            rows=1,
            sampled=True,
        )
    log.close()

    assert main(["live", "--config", str(toml), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)["estimates"]["1"]
    assert before["rows"] == 800 and before["refused"] is None, before
    assert set(before["metrics"]) == {"mae", "rmse"}
    FeedbackStore(str(cfg.home / "feedback")).write(NAME, [(f"a{i}", str(age[i])) for i in window])
    assert main(["live", "--config", str(toml), "--json"]) == 0
    (quality,) = json.loads(capsys.readouterr().out)["versions"]
    assert quality["metrics"]["mae"] == pytest.approx(
        float(np.mean(np.abs(age[window] - predicted[window]))), rel=1e-6
    )
    # The back-test: each estimate beside the live value on the same rows. The estimated
    # MAE is far closer to it than the held-out MAE a monitor without estimates assumes.
    naive = float(np.mean(np.abs(age[:6000] - predicted[:6000])))
    for name in ("mae", "rmse"):
        back = quality["estimated"][name]
        assert back["live"] == pytest.approx(quality["metrics"][name])
        assert back["within"] == (back["low"] <= back["live"] <= back["high"])
    mae = quality["estimated"]["mae"]
    assert abs(mae["value"] - mae["live"]) < abs(naive - mae["live"]) / 3, (mae, naive)


def test_live_shows_each_estimate_beside_its_evaluation_value_or_unreliable_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = write_config(tmp_path / "mooring.toml", "state")
    closed = f"http://127.0.0.1:{free_port()}"  # no server answers the flush
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace("[rollout]\n", f'[rollout]\nmetrics_urls = ["{closed}/metrics"]\n'),
        encoding="utf-8",
    )
    cfg = load_config(toml)
    rng = np.random.default_rng(5)
    held = rng.random(3000)
    reference = fit_reference(held, rng.random(3000) < held, threshold=0.5)
    with Registry.from_config(cfg) as registry:
        register_scored(registry, cfg.home / "src", 0, reference.to_dict(), metrics={"auc": 0.8312})
    log_scores(cfg.home / "predictions", rng.random(400))

    def row(name: str, text: str) -> list[str]:
        return next(line.split("│")[1:-1] for line in text.splitlines() if f" {name} " in line)

    assert main(["live", "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    said = " ".join(out.split())
    assert f"log: not flushed ({closed}/admin/flush did not answer (" in said, said
    assert "the server writes its log every 10 s ([serving] log_flush_s)" in said
    auc = [cell.strip() for cell in row("auc", out)]
    assert auc[0] == "auc" and auc[3] == "0.8312", auc  # estimated, band, evaluation
    assert 0.7 < float(auc[1]) < 0.9 and "–" in auc[2], auc

    why = "scores moved beyond their natural variation (distance 0.31, natural 0.04)"
    monkeypatch.setattr(
        _feedback,
        "version_estimate",
        lambda *a, **k: dataclasses.replace(version_estimate(*a, **k), unreliable=why),
    )
    assert main(["live", "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert f"v1: estimate unreliable: {why}" in " ".join(out.split())
    assert [cell.strip() for cell in row("auc", out)] == ["auc", "unreliable", "–", "0.8312"]
    assert main(["live", "--config", str(toml), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    shown = payload["estimates"]["1"]
    assert list(payload["log"]["not_flushed"]) == [f"{closed}/admin/flush"]
    assert 0 <= payload["log"]["newest_row_age_s"] < 600  # logged moments ago
    assert shown["unreliable"] == why and shown["evaluation"] == {"auc": 0.8312}
    assert float(auc[1]) == pytest.approx(shown["metrics"]["auc"]["value"], abs=1e-4)
