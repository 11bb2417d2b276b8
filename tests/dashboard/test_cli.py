"""``mooring ui`` in a subprocess: starts, serves the registry's models, stops on Ctrl+C.

It runs on mooring's own server (the door of ``mooring serve``): pages, ``HEAD``,
static files and the admin actions' JSON bodies are answered through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mooring.cli import main
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from tests._support.server import free_port
from tests._support.waiting import PATIENCE, wait_until
from tests.dashboard._data import NAME, TOKEN, plain_folders

pytestmark = pytest.mark.slow


def test_mooring_ui_serves_the_dashboard(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Registry.open(f"sqlite:///{home / 'registry.db'}", artifacts=home / "artifacts") as reg:
        folder = plain_folders(tmp_path, 1)[0]
        reg.register(
            name=NAME,
            artifact_dir=folder,
            record=VersionRecord(lineage={"data_fingerprint": "0" * 64}),
        )
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "state"\n[data]\ntrain = "train.csv"\n'
        f'[serving]\nadmin_token = "{TOKEN}"\n',
        encoding="utf-8",
    )
    port, dead = free_port(), free_port()
    cmd = [sys.executable, "-m", "mooring", "ui", "--config", str(config), "--port", str(port),
           "--metrics-url", f"http://127.0.0.1:{dead}/metrics"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ)
    try:
        url = f"http://127.0.0.1:{port}"

        def answered() -> httpx.Response:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return httpx.get(f"{url}/ui/", timeout=PATIENCE, verify=False)

        res = wait_until(answered, "mooring ui to answer", ignoring=(httpx.TransportError,))
        assert res.status_code == 200 and f'href="/ui/models/{NAME}"' in res.text
        assert httpx.get(url).headers["location"] == "/ui/"
        # An unreachable metrics server is reported on the live page, not a crash.
        live = httpx.get(f"{url}/ui/api/models/{NAME}/live", timeout=PATIENCE)
        assert live.status_code == 200
        assert live.json()["error"].startswith(
            f"cannot read the metrics of http://127.0.0.1:{dead}"
        )
        _check_the_door_carries_the_dashboard(url)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=PATIENCE)
    assert f"mooring dashboard on http://127.0.0.1:{port}/ui/" in out.decode()


def _check_the_door_carries_the_dashboard(url: str) -> None:
    page = httpx.get(f"{url}/ui/", timeout=PATIENCE)
    # uvicorn names itself in a `server` header; mooring's door sends none.
    assert "server" not in page.headers
    head = httpx.head(f"{url}/ui/", timeout=PATIENCE)
    assert head.status_code == 200 and head.content == b""
    css = httpx.get(f"{url}/ui/static/ui.css", timeout=PATIENCE)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    action = f"{url}/ui/api/models/{NAME}/approve"
    body = {"version": 1, "reason": "read the card"}
    refused = httpx.post(action, json=body, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    # A chunked body, read through the door's receive.
    chunks = iter([b'{"version": 1, ', b'"reason": "read the card"}'])
    done = httpx.post(
        action,
        content=chunks,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=PATIENCE,
    )
    assert done.status_code == 200, done.text
    assert done.json()["event"]["reason"] == "read the card"


def test_mooring_ui_reports_a_missing_config(tmp_path: Path) -> None:
    assert main(["ui", "--config", str(tmp_path / "nope.toml")]) == 2
