"""The memory ceiling of a serving process (``[serving] worker_memory_bytes``).

End to end: ``mooring serve --workers 2`` on a model whose allocations are sized by its
inputs (``OneHot`` of depth 2³¹−1, ``Tile`` to 2 GiB, a table that keeps what it is
given). A run that would pass the ceiling is answered 507 at once, naming the limit and
the key to raise, and the next request is answered 200; a run that fits but leaves its
worker holding more than half the ceiling retires that worker, which the supervisor
replaces, and no worker keeps the growth. The ceiling's own decisions are checked on the
object, with the process's sizes given.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from mooring.config import ServingConfig
from mooring.serving import _memory
from mooring.serving._memory import MemoryCeiling, worker_headroom
from tests._support.hostile_models import run_time_sized
from tests._support.serve_process import ServeProcess
from tests._support.waiting import wait_until

# One server for the module's end-to-end tests, on one xdist worker.
pytestmark = pytest.mark.xdist_group("memory-ceiling")

CEILING = 256 * 2**20
NORMAL = {"depth": [1], "tiles": [1], "keep": [1]}


def _private_mib(pid: int) -> float:
    """A process's resident memory not backed by a file (MiB)."""
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return (int(fields[1]) - int(fields[2])) * 4096 / 2**20


def _workers(server: ServeProcess) -> set[int]:
    assert server.proc is not None
    pid = server.proc.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _predict(server: ServeProcess, inputs: dict[str, Any]) -> httpx.Response:
    # A new connection each time: the kernel spreads them over both workers.
    return httpx.post(
        f"{server.url}/v1/models/t:predict", json={"inputs": inputs}, timeout=30, verify=False
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("ceiling")
    model = run_time_sized(folder / "model")
    with ServeProcess(
        folder,
        model,
        args=("--workers", "2"),
        name="t",
        worker_memory_bytes=CEILING,
        xla="off",
    ) as running:
        yield running


@pytest.mark.parametrize(
    "inputs",
    [{**NORMAL, "depth": [2**31 - 1]}, {**NORMAL, "tiles": [2**29]}],
    ids=["one_hot_8_GiB", "tile_2_GiB"],
)
def test_a_run_past_the_ceiling_is_answered_507_naming_it_and_the_next_is_served(
    server: ServeProcess, inputs: dict[str, Any]
) -> None:
    refused = _predict(server, inputs)
    assert refused.status_code == 507, refused.text
    message = refused.json()["error"]
    assert "ceiling of 256 MiB" in message
    assert "[serving] worker_memory_bytes" in message
    for _ in range(4):  # both workers still answer
        assert _predict(server, NORMAL).status_code == 200


def test_a_worker_left_above_half_its_ceiling_is_replaced_without_the_growth(
    server: ServeProcess,
) -> None:
    before = _workers(server)
    assert len(before) == 2
    largest = max(_private_mib(pid) for pid in before)
    kept = _predict(server, {**NORMAL, "keep": [3_000_000]})  # about 160 MiB kept
    assert kept.status_code == 200, kept.text
    wait_until(
        lambda: len(_workers(server) - before) == 1 and len(_workers(server)) == 2,
        "the worker that kept the growth to be replaced",
        interval=0.1,
    )
    assert "this worker stops and another takes its place" in server.log_path.read_text()
    wait_until(
        lambda: all(_predict(server, NORMAL).status_code == 200 for _ in range(4)),
        "both workers to answer",
        interval=0.2,
        ignoring=(httpx.TransportError,),
    )
    for pid in _workers(server):
        assert _private_mib(pid) < largest + 64


# -- the ceiling's decisions ---------------------------------------------------------------
def _sizes(monkeypatch: pytest.MonkeyPatch, private: list[int]) -> None:
    """The process holds 100 MiB of data and, in turn, each of ``private`` bytes."""
    sizes = iter(private)
    monkeypatch.setattr(_memory, "_statm", lambda: (100 * 2**20, next(sizes)))
    monkeypatch.setattr(_memory.resource, "setrlimit", lambda *args: None)
    monkeypatch.setattr(_memory, "_malloc_trim", lambda: None)


def test_a_worker_retires_once_when_it_keeps_more_than_half_its_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mib = 2**20
    # armed at 50 MiB; runs leave 100 (within half), then 200 twice (trimmed: still 200)
    _sizes(monkeypatch, [50 * mib, 100 * mib, 200 * mib, 200 * mib])
    reasons: list[str] = []
    ceiling = MemoryCeiling(256 * mib)
    ceiling.start(reasons.append)
    ceiling.after_run()
    assert reasons == []
    ceiling.after_run()
    ceiling.after_run()  # retired already: not read again
    assert len(reasons) == 1
    assert "150 MiB more" in reasons[0]
    assert "memory ceiling of 256 MiB ([serving] worker_memory_bytes)" in reasons[0]


def test_quick_runs_are_measured_once_a_second_not_each(monkeypatch: pytest.MonkeyPatch) -> None:
    _sizes(monkeypatch, [0, 0, 0])  # armed, then two reads: a third would raise
    ceiling = MemoryCeiling(256 * 2**20)
    ceiling.start(None)
    for _ in range(100):
        ceiling.after_run(0.0005)  # the first is read, the others within the second not
    ceiling.after_run(_memory.QUICK_RUN_S)  # a run that long is always read
    with pytest.raises(StopIteration):
        ceiling.after_run(1.0)


def test_a_version_loads_without_the_limit_and_the_limit_follows_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mib = 2**20
    _sizes(monkeypatch, [10 * mib, 300 * mib])  # at start; after the load
    limits: list[Any] = []
    monkeypatch.setattr(_memory.resource, "setrlimit", lambda kind, pair: limits.append(pair))
    ceiling = MemoryCeiling(256 * mib)
    ceiling.start(None)
    with ceiling.loading():
        ceiling.after_run(1.0)  # a run during a load is not judged by the load's growth
        assert limits[-1] == _memory.resource.getrlimit(_memory.resource.RLIMIT_DATA)
    assert limits[0][0] == 100 * mib + 256 * mib  # the data segment's size plus headroom
    assert len(limits) == 3 and limits[-1] == limits[0]  # _sizes gives 100 MiB of data
    assert ceiling._base == 300 * mib


def test_a_server_alone_warns_once_and_keeps_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mib = 2**20
    _sizes(monkeypatch, [0, *(400 * mib,) * 4])
    ceiling = MemoryCeiling(256 * mib)
    ceiling.start(None)
    with caplog.at_level(logging.WARNING, "mooring.serving"):
        ceiling.after_run()
        ceiling.after_run()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1
    assert "serve with --workers 2 or more" in warned[0]
    assert ceiling.armed and not ceiling.retired


def test_the_ceiling_s_setting_names_what_it_takes() -> None:
    assert ServingConfig(worker_memory_bytes="off").worker_memory_bytes == "off"
    with pytest.raises(ValidationError, match=r"at least 67108864 \(64 MiB\)"):
        ServingConfig(worker_memory_bytes=1024)
    assert worker_headroom("auto", workers=4, available=2**30) == _memory.MIN_AUTO_BYTES
