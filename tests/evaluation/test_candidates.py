"""Candidates compared on the same records: the baseline gate and the pick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mooring.config._evaluation import EvaluationConfig, GateConfig
from mooring.dashboard._evaluation_report import render_evaluation_html
from mooring.evaluation._candidates import CandidateEvaluation, pick
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide
from mooring.evaluation._result import EvaluationResult
from mooring.formats._candidate import CandidateRecord

RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 2, 2000)
GOOD = np.clip(0.35 * LABELS + 0.65 * RNG.random(2000), 0.0, 1.0)
CONFIG = EvaluationConfig(bootstrap={"samples": 200, "seed": 0})
BASELINE_GATE = GateConfig(kind="baseline", metric="auc", baseline="linear")


def _result(scores: np.ndarray, kind: str = "mlp") -> EvaluationResult:
    result = evaluate(task="binary", labels=LABELS, scores=scores, config=CONFIG)
    result.model = {"kind": kind}
    return result


def _candidate(name: str, result: EvaluationResult, seconds: float = 0.01) -> CandidateEvaluation:
    return CandidateEvaluation(name, Path(name), result, seconds_per_1000=seconds, size_bytes=1)


def test_baseline_gate_rejects_a_candidate_worse_beyond_the_interval_and_passes_an_equal_one() -> (
    None
):
    linear = _result(GOOD, "linear")
    crippled = _result(RNG.random(2000))  # a network that learned nothing: AUC near 0.5
    equal = _result(GOOD.copy())
    everyone = {"linear": linear, "crippled": crippled, "equal": equal}
    gates = [BASELINE_GATE]

    bad = decide(crippled, gates=gates, name="crippled", candidates=everyone)
    assert not bad.blessed
    (gate,) = bad.gates
    assert gate.kind == "baseline" and gate.baseline == linear.metric("auc")
    assert gate.bound["limit"] == linear.intervals["auc"].lower
    assert "failed" in gate.message and "interval" in gate.message

    ok = decide(equal, gates=gates, name="equal", candidates=everyone)
    assert ok.blessed and ok.gates[0].diff == 0.0
    itself = decide(linear, gates=gates, name="linear", candidates=everyone)
    assert itself.blessed and itself.gates[0].skipped


def test_baseline_gate_fails_when_the_baseline_was_not_evaluated() -> None:
    decision = decide(_result(GOOD), gates=[BASELINE_GATE], name="mlp", candidates={})
    assert not decision.blessed
    assert "was not evaluated" in decision.gates[0].message


def test_baseline_gate_outside_a_run_of_candidates_is_a_warning() -> None:
    decision = decide(_result(GOOD), gates=[BASELINE_GATE])
    assert any("baseline gate" in w for w in decision.warnings)
    # It judged nothing, so the default gates did.
    assert decision.blessed and decision.defaults
    assert all(g.default for g in decision.gates)


def test_pick_takes_the_best_passing_candidate_and_breaks_ties_by_cost() -> None:
    strong = _result(GOOD)
    weak = _result(np.clip(GOOD + 0.3 * RNG.random(2000), 0.0, 1.0))
    cheap = _candidate("cheap", strong, seconds=0.001)
    dear = _candidate("dear", _result(GOOD.copy()), seconds=0.01)
    behind = _candidate("behind", weak)
    failing = _candidate("failing", _result(GOOD.copy()))
    gate = [GateConfig(metric="auc", lower=0.0)]
    for c in (cheap, dear, behind):
        c.decision = decide(c.result, gates=gate)
    failing.decision = decide(failing.result, gates=[GateConfig(metric="auc", lower=1.0)])

    chosen = pick([dear, behind, failing, cheap], "auc")
    assert chosen is cheap and cheap.chosen and not dear.chosen
    assert "tied with dear" in cheap.reason
    assert "ties with 'cheap'" in dear.reason
    assert "behind 'cheap'" in behind.reason
    assert failing.reason.startswith("not eligible: failed 1 gate(s)")
    # A lower-is-better metric ranks the other way round.
    assert pick([behind, cheap], "log_loss") is cheap


def test_pick_returns_none_when_nothing_passes() -> None:
    c = _candidate("only", _result(GOOD))
    c.decision = decide(c.result, gates=[GateConfig(metric="auc", lower=1.0)])
    assert pick([c], "auc") is None and not c.chosen


def test_report_shows_the_candidates_table_the_kind_and_tree_importances() -> None:
    result = _result(GOOD, "gbt")
    result.model = {
        "kind": "gbt",
        "candidate": "gbt",
        "select": "auc",
        "trees": 10,
        "feature_importances": {"capital-gain": 0.7, "age": 0.3},
    }
    linear = _candidate("linear", _result(GOOD, "linear"))
    gbt = _candidate("gbt", result)
    for c in (linear, gbt):
        c.decision = decide(c.result, gates=[GateConfig(metric="auc", lower=0.5)])
    pick([linear, gbt], "auc")
    result.candidates = (linear.summary(), gbt.summary())
    html = render_evaluation_html(result, gbt.decision)
    assert "<h2>Candidates</h2>" in html and "latency ms / 1,000 predictions" in html
    assert "<b class='kind'>gbt</b>" in html and "<span class='kind'>linear</span>" in html
    assert "<h2>Feature importances</h2>" in html and "capital-gain" in html
    assert "<b>chosen</b>" in html


def test_candidate_summary_is_json_ready() -> None:
    c = _candidate("linear", _result(GOOD, "linear"))
    c.decision = decide(c.result, gates=[])
    summary = c.summary()
    assert summary.kind == "linear" and summary.metrics["auc"] == c.result.metric("auc")
    assert summary.intervals["auc"]["lower"] <= summary.metrics["auc"]
    stored = json.loads(json.dumps(summary.to_dict()))
    assert CandidateRecord.read(stored) == summary
