"""``wrk`` runs and the constant-reply servers the serving benchmarks compare against.

Shared by ``bench_serving.py`` and ``bench_overload.py``: :func:`wrk` runs ``wrk`` (a C
load generator, its own process) closed loop and reads its report, :func:`lua_script`
writes the script that POSTs request bodies in turn, :func:`trivial_server` is the HTTP
stack alone (uvicorn + Starlette answering a small fixed JSON document), and
:data:`granian_app` the same constant reply on granian's own interface (RSGI), started
by :func:`granian_command` with a granian found by :func:`find_granian`.

granian is not a dependency of mooring: it runs from its own environment, whose Python
imports this module (``granian --interface rsgi _wrk:granian_app``). This module's
top-level imports are therefore the standard library's only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PREDICT = "/v1/models/income:predict"
ANSWER = b'{"predictions": [0.5]}'  # every constant-reply server's answer


def trivial_server(port: int, path: str = PREDICT, parse: bool = False, workers: int = 1) -> None:
    """The HTTP stack alone: uvicorn + Starlette answering a small JSON document.

    With ``parse``, the body is also parsed with ``orjson.loads`` before the answer, as
    any JSON endpoint must. uvicorn picks its loop and HTTP parser as it does for
    mooring (uvloop and httptools where installed). ``workers`` > 1 runs uvicorn's own
    ``--workers`` (processes sharing one socket; the app then always parses the body and
    answers on :data:`PREDICT`).
    """
    import uvicorn

    if workers > 1:
        uvicorn.run("_wrk:ceiling_app", factory=True, app_dir=str(Path(__file__).parent),
                    host="127.0.0.1", port=port, workers=workers, log_level="warning",
                    access_log=False)  # fmt: skip
        return
    uvicorn.run(trivial_app(path, parse), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


def trivial_app(path: str = PREDICT, parse: bool = False) -> Any:
    """The Starlette app of :func:`trivial_server`."""
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(request: Any) -> Response:
        body = await request.body()
        if parse:
            orjson.loads(body)
        return Response(ANSWER, media_type="application/json")

    return Starlette(routes=[Route(path, ok, methods=["POST"])])


def ceiling_app() -> Any:
    """:func:`trivial_app` parsing the body on :data:`PREDICT` (uvicorn's workers' factory)."""
    return trivial_app(PREDICT, parse=True)


class ConstantRSGI:
    """granian's own interface (RSGI) answering :data:`ANSWER` to a POST on
    :data:`PREDICT` once the whole body is read (404 elsewhere, 405 for another method).

    The body is read, not parsed: granian's environment need not have orjson. Served as
    ``granian --interface rsgi --working-dir benchmarks _wrk:granian_app``.
    """

    def __init__(self, path: str = PREDICT) -> None:
        self.path = path
        self.headers = [("content-type", "application/json")]

    def __rsgi_init__(self, loop: Any) -> None:
        return None

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        await proto()  # the whole body
        if scope.path != self.path:
            proto.response_bytes(404, self.headers, b'{"error": "not found"}')
        elif scope.method != "POST":
            proto.response_bytes(405, self.headers, b'{"error": "POST only"}')
        else:
            proto.response_bytes(200, self.headers, ANSWER)


granian_app = ConstantRSGI()


def find_granian(given: str | None) -> tuple[str | None, str]:
    """The granian executable to run and how it was found (or why there is none).

    ``given`` (the ``--granian`` option) must exist; without it, ``granian`` beside
    this interpreter, then on ``PATH``. Example: ``find_granian(None)`` on a machine
    without granian gives ``(None, "granian not beside ... nor on PATH: ...")``.
    """
    if given is not None:
        path = Path(given).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SystemExit(
                f"--granian {given}: no executable file there; give the path of granian's "
                "command (e.g. a venv's bin/granian), or leave the option out to look for it "
                "beside this Python and on PATH"
            )
        return str(path.resolve()), f"--granian {given}"
    beside = Path(sys.executable).with_name("granian")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside), "beside this Python"
    found = shutil.which("granian")
    if found is not None:
        return found, "on PATH"
    return None, (
        f"granian not beside {sys.executable} nor on PATH: its cells are skipped "
        "(--granian PATH names one)"
    )


def granian_command(granian: str, port: int, workers: int) -> list[str]:
    """granian serving :data:`granian_app` on ``port`` with ``workers`` processes, as
    ``bench_doors.py`` runs it: HTTP/1 only, no websockets, one runtime thread a worker,
    no access log; its event loop the best its environment has (``--loop auto``)."""
    return [granian, "--interface", "rsgi", "--http", "1", "--no-ws", "--workers",
            str(workers), "--runtime-threads", "1", "--host", "127.0.0.1", "--port",
            str(port), "--log-level", "warning", "--no-access-log", "--working-dir",
            str(Path(__file__).resolve().parent), "_wrk:granian_app"]  # fmt: skip


def granian_version(granian: str) -> str | None:
    """``granian --version``'s line (None if it cannot say)."""
    try:
        done = subprocess.run([granian, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def wrk_command(
    url: str,
    body_lua: Path,
    seconds: float,
    connections: int = 32,
    threads: int | None = None,
    timeout_s: float | None = None,
) -> list[str]:
    """The ``wrk`` command line of a closed-loop run (``--latency`` for percentiles)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    threads = threads or min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--latency", "-s", str(body_lua)]  # fmt: skip
    if timeout_s is not None:
        cmd.append(f"--timeout={max(1, round(timeout_s))}s")
    return [*cmd, url]


def read_wrk(out: str) -> dict[str, Any]:
    """wrk's report as numbers: 200s per second, counts and latency percentiles (ms)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    requests = int(total.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    refused = int(non2xx.group(1)) if non2xx else 0
    socket_errors = re.search(r"Socket errors:(.*)", out)
    error_count = (
        sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1))) if socket_errors else 0
    )
    # Capacity is what was answered 200: a refused request is not served.
    served = float(rps.group(1)) * ((requests - refused) / requests if requests else 0.0)
    latency = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            latency[f"p{pct}_ms"] = (
                float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
            )
    return {
        "rps": served,
        "requests": requests,
        "non_2xx": refused,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else None,
        "socket_error_count": error_count,
        **latency,
    }


def wrk(
    url: str,
    body_lua: Path,
    seconds: float,
    connections: int = 32,
    threads: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Closed-loop wrk run (``threads``: 2, or 1 for one connection): 200s per second and
    latency percentiles (ms)."""
    cmd = wrk_command(url, body_lua, seconds, connections, threads, timeout_s)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return read_wrk(out)


def lua_script(folder: Path, bodies: list[bytes], name: str = "rows.lua") -> Path:
    """A wrk script (``folder/name``) that POSTs the bodies in turn."""
    quoted = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
    script = folder / name
    script.write_text(
        "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
        f"local bodies = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    return script
