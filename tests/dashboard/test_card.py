"""The model card: its sections from what a version records, and its place in registration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mooring.dashboard._card import render_model_card
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._store import CardRenderer
from tests._support.artifacts import BLESSED, LINEAGE, SKIPPED_GATE, make_model_dir


def card(**changes: Any) -> str:
    facts: dict[str, Any] = {
        "name": "income",
        "version": 3,
        "created_at": "2024-01-01T00:00:00+00:00",
        "created_by": "ana",
        "lineage": {},
        "metrics": None,
        "gate": None,
        "statistics": None,
        "params": None,
    }
    return render_model_card(**(facts | changes))


def test_header_intended_use_and_default_limitations() -> None:
    text = card(lineage={"code_version": "0123abc"}, parent_version=2, description="first model")
    assert text.startswith("# Model card: income version 3\n\nfirst model\n")
    assert "| registered | 2024-01-01T00:00:00+00:00 |" in text
    assert "| parent version | 2 |" in text and "| code version | 0123abc |" in text
    assert "same columns and meaning as the training data of 'income'" in text
    assert "- Monitor drift against the training statistics recorded with this version." in text
    own = card(intended_use="scoring tests", limitations=["only adults"])
    assert "scoring tests" in own and "- only adults" in own and "Monitor drift" not in own


def test_metrics_overall_per_slice_and_calibration() -> None:
    text = card(
        metrics={
            "overall": {"auc": 0.91234, "rows": 100},
            "slices": {"sex": {"F": {"auc": 0.9}, "M": {"auc": 0.8}}},
            "calibration": {"ece": 0.02},
        }
    )
    assert "### Overall" in text and "| auc | 0.9123 |" in text and "| rows | 100 |" in text
    assert "| sex=F | 0.9 |" in text and "| sex=M | 0.8 |" in text
    assert "### Calibration" in text and "| ece | 0.02 |" in text
    records = card(metrics={"slices": [{"feature": "race", "value": "x|y", "auc": 0.7}]})
    assert "| race=x\\|y | 0.7 |" in records
    assert "No evaluation metrics were recorded for this version." in card()


def test_gate_data_and_training_sections() -> None:
    assert "this version is **not blessed**" in card()
    gated = card(gate=BLESSED)
    assert "Decision: **blessed**" in gated and "| auc | 0.91 | 0.88 | pass |" in gated
    assert "No data lineage was recorded." in card()
    data = card(lineage=LINEAGE, statistics={"num_rows": 100, "columns": {"age": {}}})
    assert f"| data_fingerprint | {'a' * 64} |" in data
    assert "(rows: 100, columns: 1) and are the drift baseline" in data
    evaluated = card(lineage={"eval_data": "/d/adult.test.csv", "eval_fingerprint": "c" * 64})
    assert "| eval_data | /d/adult.test.csv |" in evaluated
    assert f"| eval_fingerprint | {'c' * 64} |" in evaluated
    bounds = card(
        gate={
            "blessed": True,
            "gates": [
                {"name": "auc", "value": 0.9, "bound": {"lower": 0.8, "upper": None}},
                {"name": "change", "value": 0.0, "bound": {"absolute": None, "relative": 0.02}},
            ],
        }
    )
    assert "| auc | 0.9 | lower 0.8 |" in bounds and "| change | 0 | relative 0.02 |" in bounds
    assert "None" not in bounds
    assert "| epochs | 3 |" in card(params={"epochs": 3, "hidden": [8]})


def test_registration_with_the_renderer_stores_the_card(tmp_path: Path) -> None:
    renderer: CardRenderer = render_model_card
    with Registry.open(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        register_judged(
            registry,
            name="income",
            artifact_dir=make_model_dir(tmp_path, 1),
            record=VersionRecord(
                lineage=LINEAGE,
                metrics={"overall": {"auc": 0.91}, "slices": {"sex": {"F": {"auc": 0.9}}}},
                gate=BLESSED,
            ),
            render_card=renderer,
        )
        got = registry.get("income", version=1).model_card
    assert got is not None and got.startswith("# Model card: income version 1\n")
    assert "| sex=F | 0.9 |" in got and "Decision: **blessed**" in got


def test_card_names_the_model_kind_and_the_chosen_candidate() -> None:
    text = card(params={"kind": "gbt", "candidate": "trees", "num_trees": 50})
    assert "| model kind | gbt |" in text and "| candidate | trees |" in text
    assert "| model kind | mlp |" in card(params={"hidden": [8]})


def test_card_shows_a_waived_gate_with_its_reason_and_values() -> None:
    waived = {
        "name": "auc no worse than production by more than 0.01",
        "metric": "auc",
        "kind": "change",
        "value": 0.683,
        "baseline": 1.0,
        "diff": -0.317,
        "bound": {"margin": 0.01},
        "passed": True,
        "message": "waived: v1 read a leak (failed: auc 0.683 vs production 1)",
        "waived": "v1 read a leak",
    }
    text = card(gate={"blessed": True, "gates": [waived]})
    assert "**1 gate(s) comparing with production were waived**: v1 read a leak" in text
    assert "| auc no worse than production by more than 0.01 | 0.683 |" in text
    assert "waived: v1 read a leak (production 1.0) |" in text
    assert "waived" not in card(gate=BLESSED)


def test_card_says_a_skipped_gate_was_skipped_and_why() -> None:
    text = card(gate={"blessed": True, "gates": [SKIPPED_GATE]})
    row = next(line for line in text.splitlines() if line.startswith("| auc change"))
    assert row.endswith("| skipped: first model — there is no production model to compare with |")
