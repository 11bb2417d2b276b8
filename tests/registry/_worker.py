"""Child processes for the concurrency and crash tests (imports no TensorFlow).

``register URL ARTIFACTS NAME COUNT GO_FILE``
    wait until GO_FILE exists, register COUNT versions of NAME, print their numbers as JSON.

``zygote URL ARTIFACTS WORKDIR``
    import everything once, then for every ``fork SEED`` line on stdin fork a worker
    that registers, promotes, deploys, archives (production too, demoted in the same
    write) and deletes in an endless random loop
    (touching ``ready-SEED`` once connected, ``registered-SEED`` after its first
    register), and print the worker's pid; ``wait PID`` prints how the worker ended. Forking
    from this quiet, single-threaded process makes each of the many killed workers
    cheap to start.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: tests/ too

from mooring.errors import ConflictError, NotFoundError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.waiting import wait_until

BLESSED = {"blessed": True, "gates": [{"name": "auc", "value": 0.9, "bound": 0.8, "passed": True}]}


def make_dir(root: Path, tag: str) -> Path:
    folder = root / tag
    (folder / "variables").mkdir(parents=True, exist_ok=True)
    payload = os.urandom(2048)
    (folder / "saved_model.pb").write_bytes(payload)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(payload * 8)
    (folder / "variables" / "variables.index").write_bytes(payload[:64])
    (folder / "mooring.json").write_text(json.dumps({"tag": tag}))
    return folder


def register_many(url: str, artifacts: str, name: str, count: int, go_file: str) -> None:
    work = Path(artifacts).parent / f"src-{os.getpid()}"
    folders = [make_dir(work, str(i)) for i in range(count)]
    with Registry.open(url, artifacts=artifacts) as reg:
        reg.models()  # connect and migrate before the start line
        wait_until(lambda: os.path.exists(go_file), "the start line", interval=0.005)
        numbers = [
            register_judged(
                reg, name=name, artifact_dir=f, record=VersionRecord(lineage={"pid": os.getpid()})
            ).version
            for f in folders
        ]
    print(json.dumps(numbers), flush=True)


def churn(url: str, artifacts: str, workdir: Path, seed: int) -> None:
    """Endless random register/promote/deploy/alias/archive/delete on two models."""
    rng = random.Random(seed)
    src = [make_dir(workdir / f"src-{os.getpid()}", str(i)) for i in range(3)]
    reg = Registry.open(url, artifacts=artifacts)
    reg.models()  # connected: from here on every moment is inside the write loop
    (workdir / f"ready-{seed}").touch()
    registered = workdir / f"registered-{seed}"
    while True:
        name = rng.choice(["income", "churn"])
        op = rng.random()
        try:
            if op < 0.45 or not reg.models():
                gate = BLESSED if rng.random() < 0.8 else None
                register_judged(
                    reg,
                    name=name,
                    artifact_dir=rng.choice(src),
                    record=VersionRecord(lineage={}, gate=gate),
                )
                registered.touch()
                continue
            versions = [mv.version for mv in reg.versions(name)]
            if not versions:
                continue
            pick = rng.choice(versions)
            if op < 0.65:
                reg.promote(name, version=pick, force=True, reason="crash test")
            elif op < 0.75:
                others = [v for v in versions if v != pick]
                if others:
                    reg.deploy(
                        name,
                        production=pick,
                        canary=rng.choice(others),
                        weight=rng.randint(0, 100),
                        force=True,
                        reason="crash test",
                    )
            elif op < 0.82:
                reg.rollback(name)
            elif op < 0.9:
                reg.set_alias(name, "champion", version=pick)
            elif op < 0.95:
                # Production is demoted and archived in one write (it needs the reason).
                reg.archive(name, version=pick, reason="crash test")
            else:
                reg.delete(name, version=pick)
        except (ConflictError, NotFoundError):
            pass  # refused by a rule (in production, archived, nothing to roll back): fine


def zygote(url: str, artifacts: str, workdir: str) -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    churn(url, artifacts, Path(workdir), int(arg))
                except BaseException as exc:  # a bug: report it, the test fails on the status
                    print(f"worker error: {type(exc).__name__}: {exc}", file=sys.stderr)
                    code = 3
                os._exit(code)
            print(pid, flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(arg), 0)
            print(status, flush=True)
        elif command == "exit":
            return


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "register":
        register_many(args[0], args[1], args[2], int(args[3]), args[4])
    elif mode == "zygote":
        zygote(*args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
