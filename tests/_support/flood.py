"""A load client for overload tests, run as its own process so it never shares the server's loop.

``python -m tests._support.flood HOST PORT REQUEST_FILE --connections N --requests R`` keeps N
keep-alive connections busy, each sending the raw HTTP request in REQUEST_FILE R times,
the next as soon as its previous answer arrives (a fixed count, so a slow machine sends
the same traffic, only more slowly), and prints one JSON object:
``{"statuses": {"200": n, ...}, "max_ms": {"200": ms, ...}, "errors": n}``.
``--pipeline K`` instead writes K copies of the request on one connection at once and
reads every answer (``answered``, ``closed_early``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from tests._support.http import parse_head


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer with a Content-Length; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = parse_head(head[:-4])
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status


async def _client(
    host: str,
    port: int,
    request: bytes,
    count: int,
    statuses: Counter[str],
    worst: dict[str, float],
) -> int:
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(count):
        sent = time.monotonic()
        try:
            writer.write(request)
            status = await _answer(reader)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            continue
        key = str(status)
        statuses[key] += 1
        worst[key] = max(worst.get(key, 0.0), (time.monotonic() - sent) * 1000)
    writer.close()
    return errors


async def flood(
    host: str, port: int, request: bytes, connections: int, requests: int
) -> dict[str, object]:
    statuses: Counter[str] = Counter()
    worst: dict[str, float] = {}
    errors = await asyncio.gather(
        *(_client(host, port, request, requests, statuses, worst) for _ in range(connections))
    )
    return {"statuses": dict(statuses), "max_ms": worst, "errors": sum(errors)}


async def pipeline(host: str, port: int, request: bytes, count: int) -> dict[str, object]:
    reader, writer = await asyncio.open_connection(host, port)

    async def send() -> None:
        try:
            for _ in range(count // 100):
                writer.write(request * 100)
                await writer.drain()
        except OSError:
            pass  # the server closed the connection: what it answered is counted

    sender = asyncio.create_task(send())
    statuses: Counter[str] = Counter()
    answered = 0
    try:
        while answered < (count // 100) * 100:
            statuses[str(await asyncio.wait_for(_answer(reader), 120))] += 1
            answered += 1
    except (OSError, asyncio.IncompleteReadError):
        pass
    sender.cancel()
    writer.close()
    return {"statuses": dict(statuses), "answered": answered, "sent": (count // 100) * 100}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("request", type=Path)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=100, help="per connection")
    parser.add_argument("--pipeline", type=int, default=0)
    args = parser.parse_args()
    request = args.request.read_bytes()
    if args.pipeline:
        result = asyncio.run(pipeline(args.host, args.port, request, args.pipeline))
    else:
        result = asyncio.run(flood(args.host, args.port, request, args.connections, args.requests))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
