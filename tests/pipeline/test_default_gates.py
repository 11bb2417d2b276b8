"""``mooring run`` on Adult with no ``[[evaluation.gates]]``: the default gates judge.

One project is run three times (three small trainings): blessed by the default gates as
the first model, blessed again against production, then with ``default_gates = false``:
ungated, registered, not deployed, and refused by ``models promote`` without --force. A
second project, whose labels were shuffled in both files, stops at the gate step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mooring._project import Project
from mooring.cli import main
from mooring.config import load_config
from mooring.pipeline import RunResult
from mooring.registry import Registry
from tests._support.project import edit, shuffle_labels, without_gates, write_project

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline-default-gates")]

# Each command hashes mooring's source for the code version; while the source is being
# edited next to the tests, the version alone keeps the caches steady.
PACKAGE_VERSION = 'code_fingerprint = "package"\n'
CHANCE = "auc beats chance beyond its interval"
PRODUCTION = "auc no worse than production by more than 0.01"
PRIOR = "log_loss below always predicting the training base rate"


@dataclass
class Runs:
    toml: Path
    first: RunResult
    second: RunResult
    ungated: RunResult
    shuffled: RunResult


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, small_adult: dict[str, Path]) -> Runs:
    root = tmp_path_factory.mktemp("default-gates")
    toml = without_gates(write_project(root / "real", small_adult, extra=PACKAGE_VERSION))
    first = Project.load(toml).run()
    edit(toml, r"^seed = 42$", "seed = 7")
    second = Project.load(toml).run()
    edit(toml, r"^seed = 7$", "seed = 8")
    edit(toml, r"^bootstrap = .*$", "bootstrap = { samples = 0 }\ndefault_gates = false")
    ungated = Project.load(toml).run()
    # A broken join: the labels of both files shuffled, so there is nothing to learn.
    noise = {
        "train": shuffle_labels(small_adult["train"], root / "train-shuffled.csv", seed=0),
        "test": shuffle_labels(small_adult["test"], root / "test-shuffled.csv", seed=3),
    }
    shuffled_toml = without_gates(write_project(root / "shuffled", noise, extra=PACKAGE_VERSION))
    edit(shuffled_toml, r"^bootstrap = .*$", "bootstrap = { samples = 200, seed = 1 }")
    shuffled = Project.load(shuffled_toml).run()
    return Runs(toml, first, second, ungated, shuffled)


def test_a_real_model_is_blessed_by_the_default_gates_and_the_run_names_them(runs: Runs) -> None:
    first = runs.first
    assert first.ok and first.version == 1 and first.deployed_as == "production"
    gate = first.step("gate")
    assert gate.status == "done"
    assert gate.message.startswith("blessed by the default gates")
    assert f"{CHANCE} (passed: auc " in gate.message
    assert "Hanley–McNeil" in gate.message  # bootstrap samples = 0: the normal approximation
    # Skipped, with their reasons: the threshold 0.5 nobody chose, no linear candidate.
    assert "not applied: accuracy, recall and precision at a chosen threshold" in gate.message
    assert "; auc no worse than the linear baseline (skipped" in gate.message
    assert "first model" in gate.message
    decision = first.step("evaluate").outputs["decision"]
    assert decision["defaults"] is True and decision["blessed"] is True
    judged = [g for g in decision["gates"] if not g["skipped"]]
    assert [g["name"] for g in judged] == [CHANCE, PRIOR] and judged[0]["value"] > 0.8
    # The prior is the training file's base rate, read from its statistics.
    assert "read from the training data's statistics" in judged[1]["message"]
    assert all(g["passed"] for g in judged)
    with Registry.from_config(load_config(runs.toml)) as registry:
        mv = registry.get("income", version=1)
    assert mv.blessed and mv.verdict == "blessed" and mv.gate is not None
    assert mv.gate["defaults"] is True


def test_a_later_model_is_judged_against_production_within_the_margin(runs: Runs) -> None:
    second = runs.second
    assert second.ok and second.version == 2 and second.deployed_as == "canary"
    decision = second.step("evaluate").outputs["decision"]
    gates = {g["name"]: g for g in decision["gates"]}
    production = gates[PRODUCTION]
    assert not production["skipped"] and production["passed"] and production["default"]
    assert production["baseline"] == pytest.approx(runs.first.record["result"]["metrics"]["auc"])
    assert production["bound"]["lower"] <= production["baseline"] - 0.01
    assert f"{CHANCE} (passed" in second.step("gate").message
    assert f"{PRODUCTION} (passed" in second.step("gate").message


def test_labels_shuffled_stop_the_run_at_the_chance_gate(runs: Runs) -> None:
    shuffled = runs.shuffled
    assert shuffled.status == "rejected" and shuffled.version is None
    assert shuffled.step("gate").status == "rejected"
    reason = shuffled.reason or ""
    gates = shuffled.step("evaluate").outputs["decision"]["gates"]
    failures = [g for g in gates if not g["passed"]]
    # What it learned is the base rate: no better than chance, nor than the prior.
    assert {g["name"] for g in failures} <= {CHANCE, PRIOR}
    assert reason.startswith(f"gate: not blessed: {len(failures)} default gate(s) failed: ")
    assert all(f"'{g['name']}'" in reason for g in failures)
    assert f"'{CHANCE}'" in reason and "95% bootstrap interval [" in reason
    (failed,) = [g for g in failures if g["name"] == CHANCE]
    lower, upper = failed["bound"]["interval"]
    assert lower <= 0.5 and f"auc = {failed['value']:.4g}" in reason
    assert f"[{lower:.4g}, {upper:.4g}]" in reason and "nothing was deployed" in reason
    assert {s.name for s in shuffled.steps if s.status == "pending"} == {
        "register",
        "replay",
        "deploy",
    }


def test_with_default_gates_off_the_version_is_ungated_and_deploys_only_by_force(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    ungated = runs.ungated
    assert ungated.ok and ungated.version == 3 and ungated.deployed_as is None
    assert ungated.step("gate").status == "skipped"
    assert ungated.step("gate").message.startswith("ungated: no gate judged it")
    assert ungated.step("deploy").status == "skipped"
    assert "mooring models promote income 3 --force --reason TEXT" in (
        ungated.step("deploy").message
    )
    decision = ungated.step("evaluate").outputs["decision"]
    assert decision == {**decision, "blessed": False, "ungated": True, "gates": []}

    config = ["-c", str(runs.toml)]
    assert main(["run", *config]) == 0  # every step cached; the run still says why
    out = capsys.readouterr().out
    assert "ungated: no gate judged it" in out and "blessed by" not in out
    assert main(["models", "list", "income", *config]) == 0
    assert "ungated" in capsys.readouterr().out
    assert main(["models", "promote", "income", "3", *config]) == 1
    assert "income@3 is not blessed (ungated: no gate judged it)" in capsys.readouterr().err
    forced = ["models", "promote", "income", "3", "--force", "-r", "no gates, on purpose"]
    assert main([*forced, *config]) == 0
    capsys.readouterr()
    with Registry.from_config(load_config(runs.toml)) as registry:
        assert registry.deployment("income").production == 3
        assert registry.get("income", version=3).ungated
