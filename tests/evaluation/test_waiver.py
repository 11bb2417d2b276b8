"""Waiving the gates that compare with a production model that read a leak: only those,
for a reason, their values kept (checked against scikit-learn's AUC on the same rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from mooring.config._evaluation import EvaluationConfig, GateConfig
from mooring.evaluation._compare import compare
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import Waiver, decide
from mooring.evaluation._result import EvaluationResult
from mooring.formats._gate import DecisionRecord

REASON = "production v1 read `reject`, 1 - the label"
ROWS = 2000


def _labels() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 2, ROWS)


def _scores(leak: bool) -> np.ndarray:
    """Production read the label through `reject`; the honest model has a real signal."""
    y = _labels()
    rng = np.random.default_rng(8)
    if leak:
        return np.clip(y * 0.98 + rng.random(ROWS) * 0.02, 0, 1)
    return np.clip(0.25 * y + 0.75 * rng.random(ROWS), 0, 1)


def _evaluated(leak: bool) -> EvaluationResult:
    cfg = EvaluationConfig.model_validate({"bootstrap": {"samples": 200, "seed": 0}})
    table = pa.table({"row": np.arange(ROWS)})
    return evaluate(task="binary", labels=_labels(), scores=_scores(leak), table=table, config=cfg)


@pytest.fixture(scope="module")
def pair() -> tuple[EvaluationResult, EvaluationResult]:
    honest, leaky = _evaluated(False), _evaluated(True)
    compare(honest, leaky)
    return honest, leaky


def test_the_default_production_gate_is_waived_with_its_values_kept(
    pair: tuple[EvaluationResult, EvaluationResult],
) -> None:
    honest, leaky = pair
    refused = decide(honest, baseline=leaky, gates=[])
    [failed] = refused.failures
    assert not refused.blessed and failed.kind == "change"
    waived = decide(honest, baseline=leaky, gates=[], waiver=Waiver(REASON, actor="ana"))
    assert waived.blessed and not waived.failures
    [gate] = [g for g in waived.gates if g.waived]
    assert gate.waived == REASON and gate.passed
    assert gate.message.startswith(f"waived: {REASON} (failed: ")
    # Its values are the ones that failed, and scikit-learn's on the same rows.
    assert gate.value == pytest.approx(roc_auc_score(_labels(), _scores(False)), abs=1e-6)
    assert gate.baseline == pytest.approx(roc_auc_score(_labels(), _scores(True)), abs=1e-6)
    assert (gate.value, gate.baseline, gate.diff) == (failed.value, failed.baseline, failed.diff)
    # The gates on the model itself were judged and not touched.
    others = [g for g in waived.gates if not g.waived]
    assert others and all(g.waived is None for g in others)
    assert any("waived (" + REASON in w for w in waived.warnings)
    stored = DecisionRecord.read(waived.to_dict())
    assert [g.waived for g in stored.waived] == [REASON]
    assert "waived" not in refused.to_dict()["gates"][0]  # older records keep their shape


def test_a_failed_gate_on_the_model_itself_is_never_waived(
    pair: tuple[EvaluationResult, EvaluationResult],
) -> None:
    honest, leaky = pair
    gates = [
        GateConfig.model_validate({"metric": "auc", "lower": 0.9}),
        GateConfig.model_validate(
            {"metric": "auc", "change": {"direction": "higher", "absolute": -0.01}}
        ),
        GateConfig.model_validate({"metric": "flip_rate", "upper": 0.01}),
    ]
    decision = decide(honest, baseline=leaky, gates=gates, waiver=Waiver(REASON))
    assert not decision.blessed
    result = {g.metric + ":" + g.kind: (g.passed, g.waived) for g in decision.gates}
    assert result == {
        "auc:value": (False, None),  # 0.62 below 0.9: the model itself
        "auc:change": (True, REASON),
        "flip_rate:value": (True, REASON),  # compares with production
    }


def test_a_waiver_that_waives_nothing_says_so(
    pair: tuple[EvaluationResult, EvaluationResult],
) -> None:
    honest, _ = pair
    decision = decide(honest, baseline=honest, gates=[], waiver=Waiver(REASON))
    assert decision.blessed and not [g for g in decision.gates if g.waived]
    assert any("waived nothing" in w for w in decision.warnings)


def test_the_report_shows_the_waived_gate_and_its_reason(
    pair: tuple[EvaluationResult, EvaluationResult], tmp_path: Path
) -> None:
    from mooring.dashboard._evaluation_report import render_evaluation_html

    honest, leaky = pair
    decision = decide(honest, baseline=leaky, gates=[], waiver=Waiver(REASON))
    honest.save(tmp_path, decision, html=render_evaluation_html)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<span class='fail'>WAIVED</span>" in page and "waived: production v1 read" in page
    stored = orjson.loads((tmp_path / "report.json").read_bytes())
    assert [g.get("waived") for g in stored["decision"]["gates"] if g.get("waived")] == [REASON]
