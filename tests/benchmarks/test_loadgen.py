"""The open-loop load generator of bench_overload.py counts what it sends and what comes back.

It is compiled with gcc and pointed at a real server on 127.0.0.1; only counts are
checked, never timings. A last test runs ``bench_overload.py --quick`` end to end
(short, on a small budget) and checks the report's shape.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mooring.config import ServingConfig
from mooring.serving import DirectorySource, build_app
from tests._support.serve_process import raw_request
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "benchmarks" / "loadgen" / "openloop.c"
BENCH = ROOT / "benchmarks" / "bench_overload.py"


def _build(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """Compile one of benchmarks/loadgen's generators with warnings as errors."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed; the load generator cannot be built")
    binary = tmp_path_factory.mktemp("loadgen") / source.stem
    flags = ["-O2", "-Wall", "-Wextra", "-Werror"]
    subprocess.run(["gcc", *flags, "-o", str(binary), str(source)], check=True)
    return binary


@pytest.fixture(scope="module")
def openloop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, SOURCE)


def _run(
    binary: Path, port: int, request: Path, rate: int, seconds: float, max_conn: int = 64
) -> dict[str, Any]:
    # Answers are awaited for up to PATIENCE seconds after the schedule (DRAIN_S): on a
    # slow machine they come late, never "unanswered".
    cmd = [str(binary), "127.0.0.1", str(port), str(request), str(rate), str(seconds),
           str(max_conn), str(PATIENCE)]  # fmt: skip
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
        timeout=PATIENCE * 2,
    )
    assert "schedule done" in out.stderr  # said once the last request was due
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _accounted(result: dict[str, Any]) -> int:
    """Every scheduled request ends in exactly one bucket."""
    answered = sum(s["count"] for s in result["statuses"].values())
    return answered + result["unsent"] + result["errors"] + result["unanswered"]


def test_every_scheduled_request_is_counted_by_its_status(
    openloop: Path, tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    import orjson

    body = orjson.dumps({"instances": [row()]})
    good = tmp_path / "good.http"
    good.write_bytes(raw_request("POST", f"/v1/models/{NAME}:predict", body))
    bad = tmp_path / "bad.http"
    bad.write_bytes(raw_request("POST", f"/v1/models/{NAME}:predict", b"{}"))
    # Admission and deadline far above what 100 requests can reach, so a slow machine
    # answers every one with 200 instead of shedding some: the test counts, never times.
    config = ServingConfig(
        warmup_requests=1, max_in_flight=1024, max_queue=4096, deadline_ms=120_000.0
    )
    app = build_app([DirectorySource(model_dirs["a"], NAME)], config)
    with ServerThread(app) as server:
        server.wait_ready()
        ok = _run(openloop, server.port, good, 100, 1.0)
        refused = _run(openloop, server.port, bad, 50, 1.0)
    assert ok["scheduled"] == 100 and ok["unsent"] == 0 and ok["errors"] == 0
    assert ok["unanswered"] == 0
    assert set(ok["statuses"]) == {"200"}
    assert ok["statuses"]["200"]["count"] == 100
    assert 0 <= ok["statuses"]["200"]["in_window"] <= 100
    assert refused["scheduled"] == 50 and _accounted(refused) == 50
    assert refused["statuses"]["400"]["count"] == 50


def _slow_app(delay_s: float) -> Starlette:
    async def slow(request: Request) -> Response:
        await request.body()
        await asyncio.sleep(delay_s)
        return Response(b'{"ok": true}', media_type="application/json")

    return Starlette(routes=[Route("/slow", slow, methods=["POST"])])


def test_requests_past_the_connection_limit_are_counted_as_unsent(
    openloop: Path, tmp_path: Path
) -> None:
    # Each answer takes at least 0.3 s and at most 2 connections are allowed, so at most
    # 2 requests can be in flight at once: of 100 due within one second, at least 90
    # find no connection. The counts follow from the sleep, not from a measured time.
    request = tmp_path / "slow.http"
    request.write_bytes(raw_request("POST", "/slow", b"{}"))
    with ServerThread(_slow_app(0.3)) as server:
        result = _run(openloop, server.port, request, 100, 1.0, max_conn=2)
    assert result["scheduled"] == 100
    assert result["unsent"] >= 90
    assert result["errors"] == 0 and result["unanswered"] == 0
    assert result["statuses"]["200"]["count"] == 100 - result["unsent"]
    assert _accounted(result) == 100


def test_a_burst_opens_one_connection_per_request_and_splits_first_answers(
    openloop: Path, tmp_path: Path
) -> None:
    # 40 requests due within 10 ms while each answer takes 1 s: no connection is idle
    # when the next request is due, so each gets a connection of its own, and every
    # answer is a connection's first. The counts follow from the sleep, not from a time
    # (a hundred times the schedule: a stalled generator still sends all 40 first).
    request = tmp_path / "slow.http"
    request.write_bytes(raw_request("POST", "/slow", b"{}"))
    with ServerThread(_slow_app(1.0)) as server:
        result = _run(openloop, server.port, request, 4000, 0.01, max_conn=64)
    assert result["scheduled"] == 40 and _accounted(result) == 40
    assert result["connections_opened"] == 40
    assert result["connections_opened_after_1s"] == 0
    assert result["max_connect_ms"] >= 0
    ok = result["statuses"]["200"]
    assert ok["count"] == 40
    assert ok["max_first_on_connection_ms"] == ok["max_ms"]
    assert ok["max_later_on_connection_ms"] == 0  # no connection answered twice
    assert 0 <= ok["max_first_due_at_s"] <= 0.01


CLOSED = ROOT / "benchmarks" / "loadgen" / "closedloop.c"


@pytest.fixture(scope="module")
def closedloop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, CLOSED)


def _refusing_app() -> Starlette:
    async def busy(request: Request) -> Response:
        await request.body()
        return Response(b"{}", 503, headers={"Retry-After": "2"}, media_type="application/json")

    return Starlette(routes=[Route("/busy", busy, methods=["POST"])])


@pytest.mark.parametrize("honour", [True, False])
def test_closed_loop_clients_honour_retry_after_or_retry_at_once(
    closedloop: Path, tmp_path: Path, honour: bool
) -> None:
    # A server that refuses everything with Retry-After: 2, for 3 s: 4 clients that honour
    # it send at most twice each (at 0 s and 2 s); clients that ignore it send far more.
    # The bounds follow from Retry-After, not from a measured time.
    request = tmp_path / "busy.http"
    request.write_bytes(raw_request("POST", "/busy", b"{}"))
    with ServerThread(_refusing_app()) as server:
        cmd = [str(closedloop), "127.0.0.1", str(server.port), str(request), "4", "3",
               "1" if honour else "0"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=PATIENCE)
    result = json.loads(out.stdout)
    assert set(result["statuses"]) == {"503"}
    refused = result["statuses"]["503"]["count"]
    assert result["errors"] == 0 and result["connections_opened"] == 4
    if honour:
        assert 4 <= refused <= 8, result
    else:
        assert refused > 8, result


@pytest.mark.slow
def test_bench_overload_quick_run_writes_the_report(tmp_path: Path, bench_work: Path) -> None:
    for tool in ("gcc", "wrk"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; bench_overload.py needs it")
    args = ["--quick", "--capacity-s", "1", "--overload-s", "1", "--multiples", "2"]
    args += ["--max-conn", "512", "--out-dir", str(tmp_path), "--work", str(bench_work)]
    args += ["--burst", "50", "--burst-rounds", "1"]
    args += ["--storms", "4", "--storm-s", "1", "--attack-s", "1", "--grpc-flood", "20"]
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "capacity (mooring" in proc.stdout
    [path] = tmp_path.glob("overload-*.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["capacity"]["rps"] > 0 and report["ceiling_trivial_endpoint"]["rps"] > 0
    assert report["settings"]["serving_lines"] == []  # nothing passed that was not asked for
    [cell] = report["overload"]
    assert cell["multiple"] == 2
    assert cell["scheduled"] == _accounted(cell["loadgen"])
    assert set(cell["floors"]) == {
        "goodput >= 80% of capacity at 4x",
        "ok p99 <= 2x deadline",
        "every 503 within 50 ms",
        "RSS growth <= 100 MiB",
        "recovery < 1 s",
    }
    assert cell["floors"]["goodput >= 80% of capacity at 4x"] is None  # a 2x level
    assert cell["rss_samples"] > 0
    for who in ("trivial_endpoint", "mooring"):
        burst = report["burst"][who]
        assert burst["connections"] == 50 and burst["rounds"] == 1
        assert sum(s["count"] for s in burst["statuses"].values()) + burst["lost"] == 50
    assert set(report["burst"]["mooring"]["statuses"]) <= {"200", "503"}
    storms = report["storms"]
    assert [(c["connections"], c["honour_retry_after"]) for c in storms] == [
        (128, True),
        (128, False),
    ]
    for cell in storms:
        assert cell["goodput_rps"] > 0 and cell["charged_5xx"] == 0, cell
        assert cell["other_statuses"] == {}, cell
    attacked = report["under_attack"]
    assert set(attacked) == {
        "quiet",
        "slow_bodies_100",
        "pipelining_32",
        "pipeline_65000",
        "large_bodies_8",
    }
    # Answered at all: how many 2 MiB bodies a 1 s window takes depends on the machine's load.
    assert attacked["large_bodies_8"]["attack"]["answers"] > 0
    assert attacked["slow_bodies_100"]["attack"]["opened"] >= 100
    assert attacked["pipelining_32"]["attack"]["answers"] > 0
    flood = report["grpc_flood"]
    assert flood["calls"] == sum(flood["codes"].values()) == 20, flood
    assert set(flood["codes"]) <= {"INVALID_ARGUMENT", "UNAVAILABLE"}, flood
    assert 1.5 * 2**20 < flood["message_bytes"] < 2.5 * 2**20
    assert flood["good_call_after"] == "OK"
