"""Run one door candidate: ``serve.py CANDIDATE --port P [--workers 2] [--max-in-flight 32]``.

The process forks ``--workers`` children; each binds its own listening socket to the
port with ``SO_REUSEPORT`` (the kernel spreads connections over them) and serves it on
uvloop. The parent only waits, and ends its children on SIGTERM/SIGINT. Candidates
(granian runs through its own command line, see ``bench_doors.py``):

* ``A``: ``uvicorn.Config(Admission(starlette_app), http="httptools",
  limit_concurrency=1024, timeout_keep_alive=5)``: uvicorn's public interface,
  admission as a pure-ASGI middleware;
* ``B``: the same with ``Admission(bare_app)``: no Starlette, the stack's ceiling;
* ``C``: mooring's door (its own protocol on httptools' public parser),
  ``Door(ServingConfig(max_in_flight=N))`` served by ``mooring.serving.Server`` in front of
  the Starlette app (the door does admission); ``C-bare``: in front of ``bare_app``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from typing import Any

from admission import MODEL_PATH, MODEL_S, PATH, REPLY, Admission, Limits, bare_app

CANDIDATES = ("A", "B", "C", "C-bare")


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def predict(request: Any) -> Response:
        await request.body()
        if request.url.path == MODEL_PATH:
            await asyncio.sleep(MODEL_S)
        return Response(REPLY, media_type="application/json")

    return Starlette(
        routes=[
            Route(PATH, predict, methods=["POST"]),
            Route(MODEL_PATH, predict, methods=["POST"]),
        ]
    )


def listening(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def uvicorn_worker(candidate: str, sock: socket.socket, max_in_flight: int) -> None:
    import uvicorn

    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        "lifespan": "off",
        "timeout_keep_alive": 5,
    }
    inner = starlette_app() if candidate == "A" else bare_app
    app = Admission(inner, Limits(max_in_flight=max_in_flight))
    config = uvicorn.Config(app, http="httptools", limit_concurrency=1024, **options)
    uvicorn.Server(config).run(sockets=[sock])


def door_worker(candidate: str, sock: socket.socket, max_in_flight: int) -> None:
    """``C``, ``C-bare``: mooring's door and server (serving/_door.py, serving/_server.py)."""
    from mooring.config import ServingConfig
    from mooring.serving import Server
    from mooring.serving._door import Door
    from mooring.serving._endpoints import ROUTES

    door = Door(ServingConfig(max_in_flight=max_in_flight), routes=ROUTES)
    app = starlette_app() if candidate == "C" else bare_app
    Server(app, door=door).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("candidate", choices=CANDIDATES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-in-flight", type=int, default=32)
    args = parser.parse_args()
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sock = listening(args.port)
                if args.candidate.startswith("C"):
                    door_worker(args.candidate, sock, args.max_in_flight)
                else:
                    uvicorn_worker(args.candidate, sock, args.max_in_flight)
            except BaseException as exc:  # a worker reports and exits
                print(f"worker {os.getpid()} failed: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        children.append(pid)

    def stop(signum: int, frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in children:
        try:
            os.wait()
        except ChildProcessError:
            break


if __name__ == "__main__":
    main()
