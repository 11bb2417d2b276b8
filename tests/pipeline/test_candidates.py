"""Several candidates in one run: trained once each, compared, the best passing one registered."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from mooring.config import load_config
from mooring.config._model import METRIC_HIGHER_IS_BETTER
from mooring.pipeline import run_pipeline
from mooring.registry import Registry
from tests._support.candidates import write_candidates_project
from tests._support.project import edit


def _best(candidates: list[dict[str, object]], metric: str) -> str:
    higher = METRIC_HIGHER_IS_BETTER[metric]
    passing = [c for c in candidates if c["blessed"]]
    ranked = sorted(
        passing,
        key=lambda c: (-1 if higher else 1) * float(c["metrics"][metric]),  # type: ignore[index]
    )
    return str(ranked[0]["name"])


def test_three_candidates_pick_by_select_and_reselect_without_retraining(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    # No baseline gate: the solved linear model beats the tiny mlp and gbt budgets, and
    # this test needs several passing candidates to choose among.
    toml = write_candidates_project(tmp_path / "p", small_adult, baseline_gate=False)
    first = run_pipeline(load_config(toml))
    assert first.status == "succeeded", first.reason
    steps = {s.name: s for s in first.steps}
    evaluated = steps["evaluate"].outputs
    candidates = evaluated["candidates"]
    assert [c["name"] for c in candidates] == ["linear", "mlp", "gbt"]
    assert [c["kind"] for c in candidates] == ["linear", "mlp", "gbt"]
    for c in candidates:
        assert c["seconds_per_1000"] > 0 and c["size_bytes"] > 0
        assert c["reason"]
    assert evaluated["chosen"] == _best(candidates, "auc")
    model_dirs = {n: Path(o["model_dir"]) for n, o in steps["train"].outputs["candidates"].items()}
    assert {d.parent.name for d in model_dirs.values()} == {"linear", "mlp", "gbt"}
    mtimes = {n: (d / "mooring.json").stat().st_mtime_ns for n, d in model_dirs.items()}

    # The registered version names its candidate and records the others.
    cfg = load_config(toml)
    with Registry.from_config(cfg) as registry:
        mv = registry.get("income", version=first.version)
    assert mv.run_record["chosen_candidate"] == evaluated["chosen"]
    assert [c["name"] for c in mv.run_record["candidates"]] == ["linear", "mlp", "gbt"]
    assert mv.params["kind"] == next(c["kind"] for c in candidates if c["chosen"])
    report = Path(evaluated["report"]).read_text(encoding="utf-8")
    assert "Candidates" in report and "gbt" in report and "linear" in report

    # A select under which another candidate wins, from the first run's own numbers.
    other = next(
        m
        for m in ("log_loss", "brier", "accuracy", "ece", "pr_auc", "f1", "recall", "precision")
        if all(m in c["metrics"] and c["metrics"][m] is not None for c in candidates)
        and _best(candidates, m) != evaluated["chosen"]
    )
    edit(toml, r'^select = "auc"$', f'select = "{other}"')
    second = run_pipeline(load_config(toml))
    assert second.status == "succeeded", second.reason
    steps2 = {s.name: s for s in second.steps}
    assert steps2["train"].status == "cached"
    assert {n: (d / "mooring.json").stat().st_mtime_ns for n, d in model_dirs.items()} == mtimes
    assert steps2["evaluate"].outputs["chosen"] == _best(candidates, other)
    # Compared with production (the first pick) on the same records, as any new model.
    assert steps2["evaluate"].outputs["baseline_version"] == first.version
    record = orjson.loads((second.record_path).read_bytes())
    assert record["result"]["candidate"] == _best(candidates, other)
    # Nothing changed: every step that can be is reused.
    again = run_pipeline(load_config(toml))
    assert {s.name: s.status for s in again.steps if s.name in ("train", "evaluate")} == {
        "train": "cached",
        "evaluate": "cached",
    }

    # A floor no candidate reaches: the run is rejected naming each candidate's failures,
    # still without training anything.
    edit(toml, r"^lower = 0.7$", "lower = 0.9999")
    third = run_pipeline(load_config(toml))
    assert third.status == "rejected"
    assert {s.name: s.status for s in third.steps}["train"] == "cached"
    assert third.reason is not None and "no candidate passed its gates" in third.reason
    for name, kind in (("linear", "linear"), ("mlp", "mlp"), ("gbt", "gbt")):
        assert re.search(
            rf"candidate {name} \({kind}\): auc = [0-9.]+ outside \[0.9999, inf\]", third.reason
        )
