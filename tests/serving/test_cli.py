"""``mooring serve`` in a subprocess: starts, becomes ready, answers, stops."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from mooring.cli import main
from mooring.serving._process import GC_THRESHOLDS, collect_for_serving
from tests._support.server import NAME, free_port
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until


def test_serve_a_folder_from_the_command_line(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\n[data]\ntrain = "train.csv"\n'
        "[serving]\nwarmup_requests = 1\nmax_batch_size = 16\n",
        encoding="utf-8",
    )
    port = free_port()
    cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config),
           "--port", str(port), "--model-dir", str(model_dirs["a"]), "--access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ)
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return httpx.get(f"{url}/v2/health/ready", verify=False).status_code == 200

        wait_until(ready, "mooring serve to become ready", ignoring=(httpx.TransportError,))
        res = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": [row()]})
        assert res.status_code == 200 and res.headers["X-Model-Version"] == "1"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=PATIENCE)
    assert '"status":200' in out.decode()  # the structured access log, asked for


def test_serve_reports_a_missing_config(tmp_path: Path) -> None:
    assert main(["serve", "--config", str(tmp_path / "nope.toml")]) == 2


def test_a_ready_server_collects_young_objects_at_twenty_thousand_not_seven_hundred() -> None:
    """mooring serve's on_ready: the collector back on, with a young generation sized for
    the objects of the requests in flight (see collect_for_serving)."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    try:
        collect_for_serving()
        assert gc.isenabled()
        assert gc.get_threshold() == GC_THRESHOLDS == (20_000, 10, 10)
    finally:
        gc.set_threshold(*threshold)
        if not enabled:
            gc.disable()
