"""Hostile clients for the door's tests and ``benchmarks/bench_overload.py``, each in its
own process (never sharing the server's or the test's event loop), bounded in time and count.

* ``slow``: ``--connections`` connections, each sending a prediction's headers (a body
  of ``--declared`` bytes) and one byte of its body, then nothing; one the server closes
  is opened again (up to ``--reopen`` times in all), so the attack stays at full strength
  for ``--seconds``.
* ``pipeline``: ``--connections`` connections, each writing a request file over and over
  (``--depth`` copies per write) as fast as the server reads, its answers read and
  dropped; one the server closes is opened again. With ``--requests N`` instead, one
  connection writes N copies and stops once all are answered (or ``--seconds`` pass).
* ``bodies``: ``--connections`` connections at a time, each sending a request file
  (a large body), reading its answer and closing, then a new one in its place, for
  ``--seconds``.

Each prints one JSON object when it ends (on its own or on SIGTERM): connections opened,
closed by the server, answers read, bytes sent.

Example::

    with Attack("slow", port, "--connections", "100") as slow:
        ...                      # normal traffic meanwhile
    slow.result["opened"]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests._support.http import parse_head
from tests._support.waiting import PATIENCE, wait_until

ROOT = Path(__file__).resolve().parents[2]
ANSWER = b"HTTP/1.1 "


class Attack:
    """``python -m tests._support.attacks KIND PORT ...`` in a subprocess, for a ``with``.

    The block starts once every connection is open (the attack at full strength); on
    exit the attack is stopped and :attr:`result` holds what it printed.
    """

    def __init__(self, kind: str, port: int, *args: str) -> None:
        self.cmd = [sys.executable, "-m", "tests._support.attacks", kind, str(port), *args]
        self.result: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Attack:
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "ready" once every connection is open
        if line.strip() != b"ready":
            self.__exit__()
            raise RuntimeError(f"the attack did not start: {line!r} {self.result}")
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=PATIENCE)
        self.result = json.loads(out) if out.strip() else {"error": err.decode()[-2000:]}

    def wait(self, timeout: float = PATIENCE) -> dict[str, Any]:
        """Wait for an attack that ends on its own (``--requests``); its result."""
        assert self.proc is not None
        proc = self.proc
        wait_until(lambda: proc.poll() is not None, "the attack to end", timeout=timeout)
        self.__exit__()
        return self.result


class _Stats:
    def __init__(self) -> None:
        self.opened = 0
        self.closed_by_server = 0
        self.answers = 0
        self.sent_bytes = 0
        # Set on SIGTERM. Every loop checks it as well as being cancelled: on Python 3.11
        # asyncio.wait_for drops a cancellation that arrives as its awaitable finishes,
        # and a connection's loop would then go on until --seconds.
        self.stopping = False

    def going(self, end: float) -> bool:
        return not self.stopping and time.monotonic() < end

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "stopping"}


async def _slow(
    port: int, connections: int, seconds: float, reopen: int, declared: int, stats: _Stats
) -> None:
    head = (
        b"POST /v1/models/income:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % declared
    )
    end = time.monotonic() + seconds
    budget = [reopen]

    async def one() -> None:
        while stats.going(end):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stats.opened += 1
            writer.write(head)
            stats.sent_bytes += len(head)
            try:
                await asyncio.wait_for(reader.read(), end - time.monotonic())
            except TimeoutError:
                pass
            else:
                stats.closed_by_server += 1
            writer.close()
            if budget[0] <= 0:
                return
            budget[0] -= 1

    await _run(one, connections, stats)


async def _run(one: Callable[[], Awaitable[None]], connections: int, stats: _Stats) -> None:
    """``connections`` copies of ``one``: "ready" on stderr once all have connected, then
    until they end."""
    tasks = [asyncio.ensure_future(one()) for _ in range(connections)]
    while stats.opened < connections:
        await asyncio.sleep(0.01)
    sys.stderr.write("ready\n")
    sys.stderr.flush()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _pipeline(
    port: int,
    request: bytes,
    connections: int,
    depth: int,
    seconds: float,
    requests: int,
    stats: _Stats,
) -> None:
    end = time.monotonic() + seconds
    chunk = request * depth

    async def drain(reader: asyncio.StreamReader, want: int) -> None:
        tail = b""
        while want <= 0 or stats.answers < want:
            data = await reader.read(1 << 16)
            if not data:
                stats.closed_by_server += 1
                return
            stats.answers += (tail + data).count(ANSWER)
            tail = data[-(len(ANSWER) - 1) :]

    async def one() -> None:
        while stats.going(end):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stats.opened += 1
            reading = asyncio.ensure_future(drain(reader, requests))
            try:
                if requests:
                    writer.write(request * requests)
                    stats.sent_bytes += len(request) * requests
                    await asyncio.wait_for(reading, end - time.monotonic())
                    return
                while not reading.done() and stats.going(end):
                    writer.write(chunk)
                    stats.sent_bytes += len(chunk)
                    await asyncio.wait_for(writer.drain(), end - time.monotonic())
            except (OSError, TimeoutError):
                pass
            finally:
                reading.cancel()
                writer.close()

    await _run(one, connections, stats)


async def _bodies(
    port: int, request: bytes, connections: int, seconds: float, stats: _Stats
) -> None:
    end = time.monotonic() + seconds

    async def one() -> None:
        while stats.going(end):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stats.opened += 1
            try:
                writer.write(request)
                stats.sent_bytes += len(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
                _, headers = parse_head(head[:-4])
                length = int(headers.get("content-length", "0"))
                await asyncio.wait_for(reader.readexactly(length), PATIENCE)
                stats.answers += head.startswith(ANSWER)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                stats.closed_by_server += 1
            finally:
                writer.close()

    await _run(one, connections, stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["slow", "pipeline", "bodies"])
    parser.add_argument("port", type=int)
    parser.add_argument("--request", type=Path, help="pipeline, bodies: the raw request to send")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reopen", type=int, default=100_000, help="slow: reconnections")
    parser.add_argument("--declared", type=int, default=300, help="slow: Content-Length")
    parser.add_argument("--depth", type=int, default=64, help="pipeline: copies per write")
    parser.add_argument("--requests", type=int, default=0, help="pipeline: one burst of N")
    args = parser.parse_args()
    stats = _Stats()
    loop = asyncio.new_event_loop()
    if args.kind == "slow":
        work = _slow(args.port, args.connections, args.seconds, args.reopen, args.declared, stats)
    elif args.kind == "bodies":
        work = _bodies(args.port, args.request.read_bytes(), args.connections, args.seconds, stats)
    else:
        request = args.request.read_bytes()
        work = _pipeline(
            args.port,
            request,
            args.connections,
            args.depth,
            args.seconds,
            args.requests,
            stats,
        )
    task = loop.create_task(work)

    def stop() -> None:
        stats.stopping = True
        for running in asyncio.all_tasks(loop):
            running.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    sys.stdout.write(json.dumps(stats.as_dict()) + "\n")


if __name__ == "__main__":
    main()
