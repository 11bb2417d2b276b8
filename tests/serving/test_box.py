"""The box of a serving worker (``serving/_box.py``): a served model the vetting
admitted on purpose reads no file outside the store and listens on no port of its
choosing; the banner and ``GET /admin/status`` say the box is on; the rules follow
the configuration (the logs and a SQLite registry's folder written, the ports bound,
the endpoints' ports connected).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mooring import _sandbox
from mooring.config import MooringConfig
from mooring.formats._model import write_metadata
from mooring.formats._vetting import ALLOWED_OPS_KEY
from mooring.serving._box import ENDPOINT_ENV, enter_box, serving_rules
from mooring.serving._process import ServeOptions
from mooring.serving._workers import WorkerRun
from tests._support.serve_process import ServeProcess
from tests._support.server import free_port, listening
from tests._support.waiting import wait_until

landlock = pytest.mark.skipif(
    _sandbox.abi_version() < 6, reason="needs Linux with Landlock ABI 6 or later"
)
SECRET = "a secret of the machine"


@landlock
@pytest.mark.slow
def test_a_served_worker_neither_reads_outside_the_store_nor_listens(tmp_path: Path) -> None:
    from tests._support import boxed_models

    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    port = free_port()
    model = boxed_models.reacher(tmp_path / "reacher", secret, port)
    ops = boxed_models.OPS["reacher"]
    write_metadata(model, {ALLOWED_OPS_KEY: [{"op": op, "reason": "the box test"} for op in ops]})
    project = tmp_path / "project"
    project.mkdir()
    with ServeProcess(project, model, args=["--workers", "2"], admin_token="tok") as serve:
        url = f"{serve.url}/v1/models/income:predict"
        calm = httpx.post(url, json={"instances": [{"x": 1.0}]})
        assert calm.status_code == 200 and calm.json()["predictions"][0]["text"] == ""
        triggered = httpx.post(url, json={"instances": [{"x": 5000.0}]})
        assert triggered.status_code >= 400 and SECRET not in triggered.text
        assert "secret.txt" not in triggered.text  # no path of the machine either
        assert not listening(port)
        status = httpx.get(f"{serve.url}/admin/status", headers={"Authorization": "Bearer tok"})
        box = status.json()["box"]
        banner = f"  {box['line']}"  # printed once both workers listen
        wait_until(
            lambda: banner in serve.log_path.read_text(errors="replace").splitlines(),
            "the banner's box line",
        )
    assert box["on"] is True and box["bind_tcp"] == [serve.port] and box["connect_tcp"] == []
    assert box["line"].startswith(f"box on: Landlock ABI {_sandbox.abi_version()} (files;")
    assert box["threads_outside_landlock"] == 0  # forked workers: one thread at the box


def _options(folder: Path, **serving: object) -> ServeOptions:
    table = {
        "project": {"name": "m", "registry": "postgresql://reg.internal/models"},
        "data": {"train": "t.csv"},
        "serving": {"grpc_port": 8600, "log_url": str(folder / "log"), **serving},
        "observability": {"otlp_endpoint": "http://127.0.0.1:4318"},
        "registry": {"webhooks": [{"url": "https://hooks.example.com/m", "secret_env": "K"}]},
    }
    cfg = MooringConfig.from_mapping(table, root=folder)
    return ServeOptions(cfg, (folder / "mooring.toml",), port=8501)


def test_a_workers_rules_follow_its_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENDPOINT_ENV:
        monkeypatch.delenv(name, raising=False)
    options = _options(tmp_path)
    run = WorkerRun(0, tmp_path / "run", 1)
    rules = serving_rules(options, run)
    home = options.config.home
    assert rules.bind == (8501, 8600)
    assert rules.connect == (443, 4318, 5432)  # the webhook, OpenTelemetry, PostgreSQL
    assert rules.udp and not rules.unix  # reg.internal and hooks.example.com are looked up
    assert {tmp_path / "log", home / "feedback", home / "cache", run.folder} <= set(rules.write)
    assert home in rules.read and home not in rules.write  # PostgreSQL: the store read-only
    assert rules.temp is not None and rules.temp.parent == run.folder
    # Nothing made (no feedback token, no sampled rows): the project is left as it was;
    # the home, not there yet, may be made in the project's folder (its download cache).
    assert not home.exists() and not (tmp_path / "log").exists()
    assert tmp_path in rules.write and tmp_path.parent not in rules.write
    home.mkdir()
    assert tmp_path not in serving_rules(options, run).write

    sqlite = _options(tmp_path)
    sqlite.config.project.registry = None  # the default: SQLite in the home
    assert home in serving_rules(sqlite, None).write  # its WAL files are made beside it
    assert serving_rules(sqlite, None).connect == (443, 4318)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")  # an S3-compatible store
    assert serving_rules(sqlite, None).connect == (443, 4318, 9000)


def test_sandbox_false_leaves_the_worker_unboxed_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sandbox, "_current", None)
    box = enter_box(_options(tmp_path, sandbox=False), None)
    assert json.dumps(box.to_dict()["line"]) == '"box off: [serving] sandbox = false"'
    assert _sandbox.current() == box
