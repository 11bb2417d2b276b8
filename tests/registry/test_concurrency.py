"""Two real processes register versions of the same model at once: distinct numbers, no failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mooring.registry import Registry

WORKER = Path(__file__).with_name("_worker.py")


def test_two_processes_register_concurrently(db_url: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    Registry.open(db_url, artifacts=artifacts).close()  # migrate once, like a deployed registry
    go = tmp_path / "go"
    count = 6
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "register",
                db_url,
                str(artifacts),
                "income",
                str(count),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    numbers = [json.loads(out) for out, _ in results]
    assert all(len(n) == count for n in numbers)
    assert sorted(numbers[0] + numbers[1]) == list(range(1, 2 * count + 1))
    with Registry.open(db_url, artifacts=artifacts) as reg:
        assert [mv.version for mv in reg.versions("income")] == list(range(1, 2 * count + 1))
        for mv in reg.versions("income"):
            reg.load("income", version=mv.version)
        assert reg.verify_audit().ok


def test_two_processes_migrate_a_fresh_database(db_url: str, tmp_path: Path) -> None:
    """Opening the same empty database from two processes at once migrates it exactly once."""
    artifacts = tmp_path / "artifacts"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "register",
                db_url,
                str(artifacts),
                f"m{i}",
                "1",
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Registry.open(db_url, artifacts=artifacts) as reg:
        assert sorted(m.name for m in reg.models()) == ["m0", "m1"]
