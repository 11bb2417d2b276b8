"""Where the suite's time goes: every test's phases and fixture set-ups, as JSON.

As a pytest plugin (``-p tests._support.durations``, as ``make unit`` loads it) it writes
``build/test-durations.json`` at the end of a run: one record per test and phase (setup,
call, teardown) with the seconds each fixture's set-up took inside it, the CPU seconds it
used (the worker's own and those of the processes it started and waited for: servers,
``mooring`` commands), and the run's wall time. On two cores the suite is bound by CPU, so
the CPU column, not the wall one, says what a change can save. Under pytest-xdist the
workers measure and the controller, which receives every report, writes the file. As a
script it prints the sums per file and per fixture::

    python -m tests._support.durations build/test-durations.json --top 25 [--by cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

DEFAULT = Path("build") / "test-durations.json"
_FIXTURES = "mooring_fixture_seconds"
_CPU = "mooring_cpu_seconds"

_current: list[pytest.Item] = []
_records: list[dict[str, Any]] = []
_started = [time.monotonic()]
_started_at = [time.time()]


def _cpu_seconds() -> float:
    """This process's CPU time and that of its children it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measured(item: pytest.Item, when: str) -> Generator[None, None, None]:
    start = _cpu_seconds()
    try:
        return (yield)
    finally:
        item.user_properties.append((_CPU, (when, _cpu_seconds() - start)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _current.append(item)
    try:
        return (yield from _measured(item, "setup"))
    finally:
        _current.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _measured(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _measured(item, "teardown"))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        # A parametrized argument is a pseudo-fixture; only real set-ups are timed.
        if _current and getattr(fixturedef.func, "__name__", "") != "get_direct_param_fixture_func":
            item = _current[-1]
            seconds = time.perf_counter() - start
            item.user_properties.append((_FIXTURES, (fixturedef.argname, seconds)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller records the report the worker forwards
    fixtures: dict[str, float] = defaultdict(float)
    cpu = 0.0
    for key, value in report.user_properties:
        if key == _FIXTURES and report.when == "setup":
            name, seconds = cast(tuple[str, float], value)
            fixtures[name] += seconds
        elif key == _CPU:
            when, used = cast(tuple[str, float], value)
            if when == report.when:
                cpu = used
    _records.append(
        {
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "seconds": round(report.duration, 4),
            "cpu": round(cpu, 3),
            # When it began, in seconds from the session's start, and on which worker:
            # what ran last, and where a worker sat idle.
            "start": round(report.start - _started_at[0], 1),
            "worker": _worker(report),
            "fixtures": {name: round(value, 4) for name, value in fixtures.items()},
        }
    )


def _worker(report: pytest.TestReport) -> str:
    """The pytest-xdist worker that ran the test (``gw0``…), or ``""`` without xdist."""
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    return str(getattr(gateway, "id", ""))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or not _records:
        return
    target = Path(os.environ.get("MOORING_TEST_DURATIONS", session.config.rootpath / DEFAULT))
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "wall_seconds": round(time.monotonic() - _started[0], 1),
        "workers": os.environ.get("PYTEST_XDIST_WORKER_COUNT", ""),
        "records": _records,
    }
    partial = target.with_suffix(".json.part")
    partial.write_text(json.dumps(payload, indent=0), encoding="utf-8")
    partial.replace(target)


def summarise(payload: dict[str, Any], top: int, by: str = "wall") -> str:
    """Per-file phase sums, per-fixture set-up sums and the heaviest tests, as text;
    files and tests ranked by wall seconds or, ``by="cpu"``, by CPU seconds."""
    files: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    fixtures: dict[str, float] = defaultdict(float)
    fixture_uses: dict[str, int] = defaultdict(int)
    tests: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in payload["records"]:
        path = record["nodeid"].split("::", 1)[0]
        files[path][record["when"]] += record["seconds"]
        files[path]["wall"] += record["seconds"]
        files[path]["cpu"] += record.get("cpu", 0.0)
        tests[record["nodeid"]]["wall"] += record["seconds"]
        tests[record["nodeid"]]["cpu"] += record.get("cpu", 0.0)
        for name, seconds in record["fixtures"].items():
            fixtures[name] += seconds
            fixture_uses[name] += 1
    total = sum(t["wall"] for t in tests.values())
    cpu = sum(t["cpu"] for t in tests.values())
    lines = [
        f"{len(tests)} tests, {total:.0f} s of test time, {cpu:.0f} CPU-s, "
        f"{payload['wall_seconds']} s wall"
    ]
    lines.append("")
    lines.append(f"{'file':<58} {'setup':>7} {'call':>7} {'teardown':>8} {'total':>7} {'cpu':>7}")
    key = "cpu" if by == "cpu" else "wall"
    for path, phases in sorted(files.items(), key=lambda kv: -kv[1][key])[:top]:
        lines.append(
            f"{path:<58} {phases['setup']:>7.1f} {phases['call']:>7.1f} "
            f"{phases['teardown']:>8.1f} {phases['wall']:>7.1f} {phases['cpu']:>7.1f}"
        )
    lines.append("")
    lines.append(f"{'fixture (its own set-up)':<58} {'uses':>7} {'s':>7}")
    for name, seconds in sorted(fixtures.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{name:<58} {fixture_uses[name]:>7} {seconds:>7.1f}")
    lines.append("")
    lines.append(f"{'test':<80} {'s':>7} {'cpu':>7}")
    for nodeid, test in sorted(tests.items(), key=lambda kv: -kv[1][key])[:top]:
        lines.append(f"{nodeid[:80]:<80} {test['wall']:>7.1f} {test['cpu']:>7.1f}")
    lines.extend(_workers(payload["records"]))
    return "\n".join(lines)


def _workers(records: list[dict[str, Any]]) -> list[str]:
    """Per worker: its busy seconds and the test it ended with (files written before
    the records had a start time: nothing)."""
    busy: dict[str, float] = defaultdict(float)
    last: dict[str, tuple[float, str]] = {}
    for record in records:
        if "start" not in record:
            return []
        worker = record["worker"] or "main"
        busy[worker] += record["seconds"]
        end = record["start"] + record["seconds"]
        if end >= last.get(worker, (0.0, ""))[0]:
            last[worker] = (end, record["nodeid"])
    lines = ["", f"{'worker':<8} {'busy s':>7} {'ends at':>8}  last test"]
    for worker in sorted(busy):
        end, nodeid = last[worker]
        lines.append(f"{worker:<8} {busy[worker]:>7.1f} {end:>8.1f}  {nodeid[:70]}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--by", choices=("wall", "cpu"), default="wall", help="what to rank by")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"no durations at {args.path}: run `make unit` first", file=sys.stderr)
        return 2
    print(summarise(json.loads(args.path.read_text(encoding="utf-8")), args.top, args.by))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
