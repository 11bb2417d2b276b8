"""``mooring monitor``: one tick against a real /metrics endpoint and a real registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mooring.cli import main
from mooring.registry import Registry
from mooring.serving._metrics import ServingMetrics
from tests._support.rollout import NAME, registry_with_versions, serve
from tests._support.rollout import project as make_project


@contextmanager
def metrics_endpoint(metrics: ServingMetrics) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering GET /metrics with the collectors' text."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Registry]]:
    home = tmp_path / ".mooring"
    cfg = make_project(home)
    registry = registry_with_versions(cfg)
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = ".mooring"\n\n[data]\ntrain = "train.csv"\n\n'
        "[rollout]\nsteps = [10, 100]\nmin_requests = 5\nmin_step_duration = 0\n\n"
        "[rollout.guardrails]\nprediction_js = false\n",
        encoding="utf-8",
    )
    yield config, registry
    registry.close()


def run(config: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["monitor", "-c", str(config), "--metrics-url", url, "--no-drift", "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_one_tick_advances_then_rolls_back_with_exit_code_1(
    project: tuple[Path, Registry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, registry = project
    metrics = ServingMetrics()
    registry.deploy(NAME, production=1, canary=2, weight=10)
    with metrics_endpoint(metrics) as url:
        code, report = run(config, url, capsys)
        assert code == 0 and report["rollout"]["action"] == "insufficient_data"
        serve(metrics, 1, 990)  # the 10% split: 110 of 1,100
        serve(metrics, 2, 110)
        code, report = run(config, url, capsys)
        assert code == 0 and report["rollout"]["action"] == "advance", report["rollout"]["reasons"]
        assert report["rollout"]["to_weight"] == 100
        assert [s["kind"] for s in report["slo"]["statuses"]] == [
            "slo_availability_page",
            "slo_availability_ticket",
            "slo_latency_page",
            "slo_latency_ticket",
        ]
        run(config, url, capsys)  # the new step starts
        serve(metrics, 2, 20, errors=15)
        code, report = run(config, url, capsys)
    assert code == 1 and report["rollout"]["action"] == "rollback"
    assert registry.deployment(NAME).canary is None


def test_text_output_and_unreachable_metrics(
    project: tuple[Path, Registry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, registry = project
    registry.deploy(NAME, production=1, canary=2, weight=10)
    code = main(
        ["monitor", "-c", str(config), "--metrics-url", "http://127.0.0.1:9/m", "--no-drift"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "insufficient_data" in out and out.count("cannot read metrics") == 1, out


def test_bad_interval_is_a_usage_error(
    project: tuple[Path, Registry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = project
    code = main(["monitor", "-c", str(config), "--watch", "--interval", "soon"])
    assert code == 2
    assert "--interval 'soon' is not a duration" in capsys.readouterr().err
