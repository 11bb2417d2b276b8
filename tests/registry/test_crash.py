"""SIGKILL at random points during register/promote/deploy/delete leaves no corrupt state.

A long-running child (the "zygote") imports the registry once and forks a
worker per round; the worker writes in an endless random loop and is killed
with SIGKILL after a random delay. After every round has been killed, every
visible version must load and verify, every alias and deployment must point at
an existing version, and the audit chain must verify.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from mooring.registry import Registry
from mooring.registry._sql.tables import models
from tests._support.waiting import wait_until

WORKER = Path(__file__).with_name("_worker.py")
KILLS = 50


def _ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def _check_consistent(reg: Registry, db_url: str) -> int:
    report = reg.verify_audit()
    assert report.ok, [p.message for p in report.problems]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        last_numbers = dict(conn.execute(select(models.c.name, models.c.last_version)).all())
    engine.dispose()
    loaded = 0
    for summary in reg.models():
        versions = {mv.version: mv for mv in reg.versions(summary.name)}
        for number in versions:
            reg.load(summary.name, version=number)  # raises unless every file verifies
            loaded += 1
        assert all(v <= last_numbers[summary.name] for v in versions)
        for alias, number in reg.aliases(summary.name).items():
            assert number in versions, f"alias {alias} → missing version {number}"
        dep = reg.deployment(summary.name)
        for number in (dep.production, dep.canary, *dep.previous):
            assert number is None or number in versions
        assert reg.aliases(summary.name).get("production") == dep.production
        assert reg.aliases(summary.name).get("canary") == dep.canary
    return loaded


def test_sigkill_leaves_no_corrupt_state(db_url: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    Registry.open(db_url, artifacts=artifacts).close()
    zygote = subprocess.Popen(
        [sys.executable, str(WORKER), "zygote", db_url, str(artifacts), str(tmp_path / "work")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert zygote.stdout is not None and zygote.stdout.readline().strip() == "ready"
        rng = random.Random(20240601)
        work = tmp_path / "work"
        for round_ in range(KILLS):
            pid = int(_ask(zygote, f"fork {round_}"))
            ready = work / f"ready-{round_}"
            wait_until(ready.exists, f"worker {round_} to connect", interval=0.002)
            if round_ % 5 == 0:
                # Every fifth worker registers once first, so that the rounds do work
                # whatever the machine's speed (see the check on registered below).
                registered = work / f"registered-{round_}"
                wait_until(registered.exists, f"worker {round_}'s first register")
            time.sleep(rng.uniform(0.0, 0.25))
            os.kill(pid, signal.SIGKILL)
            status = int(_ask(zygote, f"wait {pid}"))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"round {round_}: worker ended by itself (status {status}); it hit a bug"
            )
        _ask(zygote, "exit")
    finally:
        zygote.kill()
        zygote.wait()
    with Registry.open(db_url, artifacts=artifacts) as reg:
        registered = sum(1 for e in reg.history() if e.action == "register")
        assert registered >= 10, "the workers barely ran; the kills tested nothing"
        assert _check_consistent(reg, db_url) > 0
        # Crashes leave only unreferenced uploads; collecting them changes nothing visible.
        reg.collect_garbage(older_than=0)
        referenced = reg.store.artifact_keys()
        assert set(reg.artifacts.list_keys()) == referenced
        _check_consistent(reg, db_url)
