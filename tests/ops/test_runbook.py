"""``mooring ops runbook``: an on-call sheet whose every command runs against the project.

A real registry holding two real SavedModels (production and a canary, after one canary
the rollout controller rolled back), a real server following it on 127.0.0.1, and the
sheet's commands run in a shell, as the person on call would paste them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.config import MooringConfig, load_config
from mooring.errors import UsageError
from mooring.formats._version_record import VersionRecord
from mooring.monitoring._rollout import ACTOR
from mooring.ops._prometheus import prometheus_rules
from mooring.ops._runbook import runbook
from mooring.registry import Registry
from mooring.registry._audit import key_file, load_audit_key
from mooring.registry._judged import register_judged
from tests._support.cli import run_mooring
from tests._support.server import NAME, ServerThread, following
from tests._support.serving_model import build_model_dir, row
from tests._support.waiting import wait_until

GATE = {"blessed": True, "gates": []}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("runbook-models")
    return {1: build_model_dir(root / "one", seed=0), 2: build_model_dir(root / "two", seed=1)}


def _project(root: Path, models: dict[int, Path]) -> MooringConfig:
    """v1 in production, v2 a 10% canary, after the controller rolled back a first try."""
    config = root / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "state"\n[data]\ntrain = "train.csv"\n'
        'label = "class"\n[serving]\npoll_interval_s = 0.2\nwarmup_requests = 1\n'
        "log_sample_rate = 1.0\n",
        encoding="utf-8",
    )
    cfg = load_config(config)
    load_audit_key(key_file(cfg), create=True)  # as `mooring init` does
    with Registry.from_config(cfg) as registry:
        for version in (1, 2):
            register_judged(
                registry,
                name=NAME,
                artifact_dir=models[version],
                record=VersionRecord(
                    lineage={"data_fingerprint": "ab" * 32},
                    metrics={"auc": 0.8 + version / 100},
                    gate=GATE,
                ),
            )
        registry.deploy(NAME, production=1, reason="first release")
        registry.deploy(NAME, production=1, canary=2, weight=10, reason="retrained")
        registry.deploy(NAME, production=1, actor=ACTOR, reason="canary 2: outputs breach")
        registry.deploy(NAME, production=1, canary=2, weight=10, reason="second try")
    return cfg


@pytest.fixture
def served(tmp_path: Path, models: dict[int, Path]) -> Iterator[tuple[MooringConfig, ServerThread]]:
    cfg = _project(tmp_path, models)
    with following(cfg, Registry.from_config(cfg), NAME) as server:
        yield cfg, server


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in bash with pipefail, as pasted by a person whose PATH holds this
    interpreter's ``mooring`` (the virtual environment's)."""
    bash = shutil.which("bash")
    if bash is None or shutil.which("curl") is None:
        pytest.skip("bash and curl are needed to run the sheet's commands")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [bash, "-o", "pipefail", "-c", command],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.mark.slow
def test_every_command_of_the_sheet_succeeds_against_the_project(
    served: tuple[MooringConfig, ServerThread],
) -> None:
    cfg, server = served
    config = cfg.root / "mooring.toml"
    answer = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
    assert answer.status_code == 200, answer.text
    wait_until(lambda: any((cfg.home / "predictions").rglob("*.parquet")), "a prediction log file")
    done = run_mooring("ops", "runbook", NAME, "-c", str(config), "--url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    sheet = Path(written["runbook"]).read_text(encoding="utf-8")
    assert Path(written["runbook"]) == cfg.home / "ops" / "runbook" / f"{NAME}.md"
    commands = written["commands"]
    # Every line of every sh block is a command the test runs.
    blocks = [b.split("```", 1)[0] for b in sheet.split("```sh\n")[1:]]
    in_blocks = [line for b in blocks for line in b.strip().splitlines()]
    assert set(commands) <= set(in_blocks)
    runnable = [c for c in in_blocks if "WHY" not in c and "resume" not in c]
    assert runnable == commands
    assert any(c.startswith("curl") for c in commands)
    assert any(c.startswith("mooring status") for c in commands)
    for command in dict.fromkeys(commands):  # each distinct command once
        ran = _shell(command, cfg.root)
        assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}"
        assert "Traceback" not in ran.stderr, command


@pytest.mark.slow
def test_the_canary_commands_take_it_out_of_traffic_and_back_and_rollback_restores(
    served: tuple[MooringConfig, ServerThread],
) -> None:
    cfg, server = served
    with Registry.from_config(cfg) as registry:
        sheet = runbook(cfg, registry, config_path=str(cfg.root / "mooring.toml"))
    text = sheet.markdown
    pause, resume = (line for line in text.splitlines() if "--production 1" in line)
    rollback = next(line for line in text.splitlines() if " rollback " in line)

    def run(command: str) -> None:
        ran = _shell(command.replace("WHY", "test"), cfg.root)
        assert ran.returncode == 0, f"{command}\n{ran.stderr[-2000:]}"

    def deployment() -> tuple[int | None, int | None, int]:
        with Registry.from_config(cfg) as registry:
            dep = registry.deployment(NAME)
        return dep.production, dep.canary, dep.canary_weight

    run(pause)
    assert deployment() == (1, None, 0)
    run(resume)
    assert deployment() == (1, 2, 10)
    run(f"mooring models deploy {NAME} --production 2 -c {cfg.root / 'mooring.toml'} -r test")
    run(rollback)
    assert deployment()[:2] == (1, None)

    # The server follows the rollback: version 1 alone answers again.
    def served_versions() -> set[int]:
        status = server.client.get(f"/v1/models/{NAME}").json()["model_version_status"]
        return {int(v["version"]) for v in status if v["state"] == "AVAILABLE"}

    wait_until(lambda: served_versions() == {1}, "version 1 alone to be served",
               seen=served_versions)  # fmt: skip
    answer = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"


def test_the_sheet_says_what_is_deployed_every_alert_and_the_incidents(
    tmp_path: Path, models: dict[int, Path]
) -> None:
    cfg = _project(tmp_path, models)
    with Registry.from_config(cfg) as registry:
        sheet = runbook(cfg, registry, config_path="mooring.toml", url="http://10.0.0.5:8501")
    text = sheet.markdown
    assert text.startswith(f"# On call: {NAME}\n")
    assert "- **production**: version 1" in text
    assert "- **canary**: version 2 at 10% of traffic" in text
    alerts = {
        r["alert"] for g in prometheus_rules(cfg)["groups"] for r in g["rules"] if "alert" in r
    }
    for alert in alerts:
        assert f"### {alert} (" in text
    assert "curl -sf http://10.0.0.5:8501/healthz" in sheet.commands
    assert f"mooring models rollback {NAME} -c mooring.toml -r 'on-call: WHY'" in text
    incidents = text.split("## Recent incidents", 1)[1]
    assert f"by {ACTOR}" in incidents and "canary 2: outputs breach" in incidents
    assert "first release" not in incidents  # a plain deploy is not an incident
    assert "no traffic sampled" in text  # no monitor tick yet: no burn to show


def test_another_projects_model_is_refused_with_the_fix(
    tmp_path: Path, models: dict[int, Path]
) -> None:
    cfg = _project(tmp_path, models)
    with (
        Registry.from_config(cfg) as registry,
        pytest.raises(UsageError, match=r"is not this project's model .* pass the mooring\.toml"),
    ):
        runbook(cfg, registry, name="churn")
    done = run_mooring("ops", "runbook", "churn", "-c", str(tmp_path / "mooring.toml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not this project's model" in done.stderr
