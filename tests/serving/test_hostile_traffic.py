"""Hostile traffic against ``mooring serve`` in its own process: slow bodies held open,
pipelining floods and a retry storm leave normal clients served and memory bounded.

The attackers and the normal clients run in processes of their own
(:mod:`tests._support.attacks`, :mod:`tests._support.flood`, ``wrk``), so none of them
shares the server's event loop. What is asserted is counted, never timed: every normal
request answered 200, memory growth, refusals per connection; latencies and goodput
are measured by ``benchmarks/bench_overload.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from mooring.formats._metrics import REQUESTS, read_samples, total
from tests._support.attacks import Attack
from tests._support.serve_process import RawConnection, ServeProcess, raw_request
from tests._support.server import NAME
from tests._support.serving_model import row

pytestmark = pytest.mark.slow

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})
REQUEST = raw_request("POST", PREDICT, BODY)
MIB = 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[ServeProcess]:
    """One ``mooring serve --workers 1`` for the attacks that need no setting of their own,
    started once: each test answers on a server the attacks before it have been through.
    Its tests share an xdist group, so one process starts it."""
    with ServeProcess(
        tmp_path_factory.mktemp("hostile"), model_dirs["a"], args=("--workers", "1")
    ) as served:
        yield served


def _normal(server: ServeProcess, folder: Path, requests: int = 25) -> dict[str, int]:
    """8 keep-alive clients, ``requests`` predictions each: the statuses they got."""
    out = server.flood(REQUEST, folder, "--connections", "8", "--requests", str(requests))
    assert out["errors"] == 0, out
    statuses: dict[str, int] = out["statuses"]
    return statuses


def _by_status(server: ServeProcess) -> dict[tuple[str, str], float]:
    """Requests answered, by (version label, status)."""
    text = httpx.get(f"{server.url}/metrics").text
    return {
        (s.labels["version"], s.labels["status"]): s.value
        for s in read_samples(text)
        if s.name == total(REQUESTS) and s.labels["model"] == NAME
    }


@pytest.mark.xdist_group("hostile-server")
def test_slow_bodies_held_open_leave_normal_clients_served(
    tmp_path: Path, server: ServeProcess
) -> None:
    """700 connections declaring 4 MiB bodies (the body limit) and sending one byte
    (reopened as the server cuts them off) cost connections, not inference permits, nor
    the body budget (a body holds what has arrived), nor the receiving count (past it,
    the body furthest behind the minimum rate gives way): every normal request is
    answered. (Where a body held its declared length, 8 of them held the budget: 176 of
    200 normal requests were refused 503.)"""
    args = ("--connections", "700", "--declared", "4194304")
    with Attack("slow", server.port, *args) as slow:
        statuses = _normal(server, tmp_path)
    assert statuses == {"200": 200}, statuses
    assert slow.result["opened"] >= 700, slow.result


@pytest.mark.xdist_group("hostile-server")
def test_pipelining_clients_keep_memory_bounded(tmp_path: Path, server: ServeProcess) -> None:
    """32 connections pipelining predictions as fast as the server reads them for 30 s:
    what a connection sent and the server has not read stays in the kernel, so memory
    grows by at most one read per connection, and normal clients are still answered."""
    request = tmp_path / "request.http"
    request.write_bytes(REQUEST)
    assert _normal(server, tmp_path) == {"200": 200}  # warm: allocations made once
    baseline = server.memory_kib()
    server.reset_peak()
    args = ("--request", str(request), "--connections", "32", "--seconds", "30")
    with Attack("pipeline", server.port, *args) as flood:
        statuses = _normal(server, tmp_path)
    peak = server.memory_kib("VmHWM") - baseline
    # The 32 pipeliners are load like any other (one request each in flight at a time,
    # as many as the permits): normal clients share the permits with them.
    assert set(statuses) <= {"200", "503"} and statuses.get("200", 0) > 0, statuses
    assert flood.result["answers"] > 0, flood.result
    assert peak < 100 * MIB, f"RSS grew by {peak} KiB under 32 pipelining connections"


@pytest.mark.xdist_group("hostile-server")
def test_a_huge_pipeline_is_answered_whole_beside_other_clients(
    tmp_path: Path, server: ServeProcess
) -> None:
    """One connection with 65,000 pipelined requests is answered one slice at a time: all
    of it, in bounded memory, and other clients are answered meanwhile. (How much slower
    they are then is measured by ``bench_overload.py``, not asserted.)"""
    tiny = tmp_path / "tiny.http"
    tiny.write_bytes(raw_request("GET", "/v2/health/live"))
    baseline = server.memory_kib()
    server.reset_peak()  # the peak of this flood, not of an attack before it
    args = ("--request", str(tiny), "--requests", "65000", "--seconds", "600")
    with Attack("pipeline", server.port, *args) as flood:
        statuses = _normal(server, tmp_path, requests=50)
        result = flood.wait(timeout=600)
    grown = server.memory_kib("VmHWM") - baseline
    assert statuses == {"200": 400}, statuses
    assert result["answers"] == 65000 and result["closed_by_server"] == 0, result
    assert grown < 100 * MIB, f"RSS grew by {grown} KiB"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_retry_storm_is_refused_once_per_connection_and_retry_after(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    """128 connections (16x the 8 the quiet clients use) retrying at once for 10 s, past a
    limit of 8 in flight: a refused connection is not read again before Retry-After, so
    refusals are bounded by connections x seconds, the rest of the time goes to answers,
    and nothing is charged to the version as its error."""
    script = tmp_path / "storm.lua"
    body = BODY.decode()
    script.write_text(
        "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
        f"wrk.body = [==[{body}]==]\n"
    )
    seconds, connections = 10, 128
    one = ("--workers", "1")
    with ServeProcess(tmp_path, model_dirs["a"], args=one, max_in_flight=8) as server:
        cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
               "-s", str(script), f"{server.url}{PREDICT}"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
        answered = _by_status(server)
        with RawConnection(server.port) as after:
            after.send(REQUEST)
            assert after.answer()[0] == 200
    sent = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    refused = int(found.group(1)) if found else 0
    assert sent - refused > 0, out
    # One refusal per connection and Retry-After (1 s), plus its first: without parking
    # a retrying client is refused as fast as it sends (tens of thousands here).
    assert refused <= connections * (seconds + 2), out
    errors = {key: n for key, n in answered.items() if key[1].startswith("5") and key[0] != "-"}
    assert errors == {}, answered
    assert {status for _, status in answered} <= {"200", "503"}, answered
