"""Fixing a production model that read a leak, as a user does it on the command line.

Adult with ``reject`` (1 for ``<=50K``: the label, inverted) beside the label: the first
run's near-perfect evaluation is acknowledged (``--accept-perfect``, as a user sure of a
leak would) and the leaking model deployed. Excluding ``reject``, the honest model is
refused by the change gate (production was "better"); ``--waive-change -r REASON`` blesses
it, audited with the version and shown on its card; it becomes the canary although
production's clients send ``reject`` (its contract still names the column, so the server
takes and ignores it), and ``promote`` (which checks the same) makes it production.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.registry import Registry
from tests._support.cli import mooring_in_process
from tests._support.project import edit, write_project

REASON = "production v1 read reject, the inverted label"


def _said(done: object) -> str:
    return " ".join((done.stdout + done.stderr).split())  # type: ignore[attr-defined]


def _with_reject(source: Path, target: Path) -> Path:
    with source.open(newline="") as src, target.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        header = next(reader)
        label = header.index("class")
        writer.writerow([*header, "reject"])
        for row in reader:
            if row:
                writer.writerow([*row, "0" if row[label].strip().startswith(">50K") else "1"])
    return target


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, small_adult: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("leaked")
    data = {key: _with_reject(path, root / f"{key}.csv") for key, path in small_adult.items()}
    # A change gate: no worse than production by more than 0.01 AUC.
    change = 'change = { direction = "higher", absolute = -0.01 }'
    extra = f'[[evaluation.gates]]\nmetric = "auc"\n{change}\n'
    toml = write_project(root, data, extra=extra)
    first = mooring_in_process("run", "--accept-perfect", "-r", "it is that good", cwd=root)
    assert first.returncode == 0, _said(first)
    edit(toml, r"^\[evaluation\]$", '[features]\nexclude = ["reject"]\n[evaluation]')
    return root


def _registry(project: Path) -> Registry:
    return Registry.from_config(load_config(project / "mooring.toml"))


def test_the_leak_is_waived_deployed_as_canary_and_promoted(project: Path) -> None:
    with _registry(project) as registry:
        leaky = registry.get("income", version=1)
        assert "reject" in (leaky.record.inputs or {})
        assert registry.deployment("income").production == 1
    refused = mooring_in_process("run", cwd=project)
    assert refused.returncode == 1 and "vs production 1 (diff -" in _said(refused)
    assert "nothing was deployed" in _said(refused)
    unreasoned = mooring_in_process("run", "--waive-change", cwd=project)
    assert unreasoned.returncode == 2 and "needs a reason" in _said(unreasoned)
    waived = mooring_in_process("run", "--waive-change", "-r", REASON, cwd=project)
    assert waived.returncode == 0, _said(waived)
    assert "1 gate(s) comparing with production waived" in _said(waived)
    with _registry(project) as registry:
        honest = registry.get("income", version=2)
        assert "reject" not in (honest.record.inputs or {})
        gate = next(g for g in honest.decision.gates if g.waived)  # type: ignore[union-attr]
        assert gate.waived == REASON and gate.baseline is not None and gate.value is not None
        assert gate.value < gate.baseline  # the honest model is "worse" than the leak
        assert f"waived: {REASON}" in (honest.model_card or "")
        event = next(e for e in registry.history("income") if e.action == "waive")
        assert (event.version, event.reason) == (2, REASON)
        assert event.after is not None and event.after["waived"][0]["name"] == gate.name
        dep = registry.deployment("income")
        assert (dep.production, dep.canary) == (1, 2)  # the door takes and ignores `reject`
        assert registry.verify_audit().ok
    promoted = mooring_in_process("models", "promote", "income", "2", "-r", "no leak", cwd=project)
    assert promoted.returncode == 0, _said(promoted)
    archived = mooring_in_process("models", "archive", "income", "1", "-r", REASON, cwd=project)
    assert archived.returncode == 0, _said(archived)
    with _registry(project) as registry:
        assert registry.deployment("income").production == 2
        assert registry.get("income", version=1).status == "archived"
