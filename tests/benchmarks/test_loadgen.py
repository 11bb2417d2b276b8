"""The open-loop load generator of bench_overload.py counts what it sends and what comes back.

It is compiled with gcc and pointed at a real server on 127.0.0.1; only counts are
checked, never timings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mooring.config import ServingConfig
from mooring.serving import DirectorySource, build_app
from tests._support.serve_process import raw_request
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "benchmarks" / "loadgen" / "openloop.c"


@pytest.fixture(scope="module")
def openloop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed; the load generator cannot be built")
    binary = tmp_path_factory.mktemp("loadgen") / "openloop"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def _run(binary: Path, port: int, request: Path, rate: int, seconds: float) -> dict[str, object]:
    out = subprocess.run(
        [str(binary), "127.0.0.1", str(port), str(request), str(rate), str(seconds), "64"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_every_scheduled_request_is_counted_by_its_status(
    openloop: Path, tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    import orjson

    body = orjson.dumps({"instances": [row()]})
    good = tmp_path / "good.http"
    good.write_bytes(raw_request("POST", f"/v1/models/{NAME}:predict", body))
    bad = tmp_path / "bad.http"
    bad.write_bytes(raw_request("POST", f"/v1/models/{NAME}:predict", b"{}"))
    app = build_app([DirectorySource(model_dirs["a"], NAME)], ServingConfig(warmup_requests=1))
    with ServerThread(app) as server:
        server.wait_ready()
        ok = _run(openloop, server.port, good, 100, 1.0)
        refused = _run(openloop, server.port, bad, 50, 1.0)
    assert ok["scheduled"] == 100 and ok["unsent"] == 0 and ok["errors"] == 0
    assert ok["statuses"] == {"200": ok["statuses"]["200"]}  # type: ignore[index]
    assert ok["statuses"]["200"]["count"] == 100  # type: ignore[index]
    assert refused["scheduled"] == 50
    assert refused["statuses"]["400"]["count"] == 50  # type: ignore[index]
