"""``mooring serve`` in its own process, for tests that measure it from outside (memory, load)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests._support.http import parse_head
from tests._support.server import NAME, free_port
from tests._support.waiting import PATIENCE, wait_until

ROOT = Path(__file__).resolve().parents[2]


class _PortTakenError(RuntimeError):
    """The server exited because a port it was given was taken before it listened."""


class ServeProcess:
    """``mooring serve --model-dir`` with ``[serving]`` options, on a free port.

    Without ``model_dir`` it serves the project's registry (``<folder>/.mooring``);
    ``args`` are further options of ``mooring serve`` and ``toml`` further tables of its
    ``mooring.toml`` (``[monitoring]``, for instance); ``name`` is its project's name. With
    ``grpc``, the gRPC APIs listen on another free port (``--grpc-port``) at
    :attr:`grpc_target`.
    """

    def __init__(
        self,
        folder: Path,
        model_dir: Path | None,
        *,
        args: Sequence[str] = (),
        toml: str = "",
        name: str = NAME,
        grpc: bool = False,
        **serving: Any,
    ) -> None:
        options = {"warmup_requests": 1, **serving}
        lines = [f'[project]\nname = "{name}"\n[data]\ntrain = "train.csv"\n[serving]']
        lines += [f"{key} = {value!r}" for key, value in options.items()]
        if toml:
            lines.append(toml)
        self.config = folder / "mooring.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._base = [
            *(sys.executable, "-m", "mooring", "serve", "--config", str(self.config)),
            *("--no-access-log", *args),
        ]
        if model_dir is not None:
            self._base += ["--model-dir", str(model_dir)]
        self._grpc = grpc
        self._choose_ports()
        self.proc: subprocess.Popen[bytes] | None = None
        # The server's stdout and stderr go to a file, not a pipe: a pipe nobody reads fills
        # up (64 KiB of access-log lines) and then blocks the server's writes.
        self.log_path = folder / "serve.log"
        #: What the server printed (stdout and stderr), once it has stopped.
        self.output = ""

    def _choose_ports(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [*self._base, "--port", str(self.port)]
        self.grpc_target = ""
        if self._grpc:
            grpc_port = free_port()
            self.grpc_target = f"127.0.0.1:{grpc_port}"
            self.cmd += ["--grpc-port", str(grpc_port)]

    def __enter__(self) -> ServeProcess:
        # A free port is free when chosen; another test's process may listen there before
        # the server binds it (after its model loads): it then exits saying so, and starts
        # again on other ports.
        for _ in range(2):
            try:
                return self._start()
            except _PortTakenError:
                self._choose_ports()
        return self._start()

    def _start(self) -> ServeProcess:
        with self.log_path.open("wb") as sink:
            self.proc = subprocess.Popen(
                self.cmd, stdout=sink, stderr=subprocess.STDOUT, env=os.environ
            )
        proc = self.proc

        # verify=False on plain http: httpx otherwise builds a TLS context and loads the CA
        # bundle for every call (about 30 ms of CPU against 0.6 ms), ten times a second here.
        def ready() -> bool:
            if proc.poll() is not None:
                out = self.log_path.read_text(errors="replace")
                if "is in use" in out or "cannot listen on" in out:
                    raise _PortTakenError(out)
                raise RuntimeError(f"mooring serve exited: {out}")
            return httpx.get(f"{self.url}/v2/health/ready", verify=False).status_code == 200

        try:
            wait_until(
                ready,
                f"mooring serve on port {self.port} to become ready",
                interval=0.1,
                ignoring=(httpx.TransportError,),
                seen=lambda: self.log_path.read_text(errors="replace")[-2000:],
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.output = self.log_path.read_text(errors="replace")

    def memory_kib(self, field: str = "VmRSS") -> int:
        """A field of the server's /proc/<pid>/status in KiB (VmRSS now, VmHWM the peak)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS (Linux: ``echo 5 > /proc/<pid>/clear_refs``)."""
        assert self.proc is not None
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def flood(self, request: bytes, folder: Path, *args: str) -> dict[str, Any]:
        """Run :mod:`tests._support.flood` against this server from a separate process."""
        import json

        path = folder / "request.http"
        path.write_bytes(request)
        out = subprocess.run(
            [
                *(sys.executable, "-m", "tests._support.flood"),
                *("127.0.0.1", str(self.port), str(path), *args),
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=300,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result


def raw_request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """One HTTP/1.1 request as bytes (keep-alive), for raw-socket tests."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawConnection:
    """One blocking keep-alive connection that reads answers in order (pipelining tests)."""

    def __init__(self, port: int, timeout: float = PATIENCE) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def closed(self) -> bool:
        """True when the server has closed the connection (all answers read first)."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next answer: status, lower-cased headers, body."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before an answer; got {self.buffer[:200]!r}")
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status, headers = parse_head(head)
        length = int(headers.get("content-length", "0"))
        self.buffer = rest
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed in the middle of an answer")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body
