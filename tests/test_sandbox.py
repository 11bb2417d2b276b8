"""The operating system's box: a boxed process reads, writes, binds and connects only
where its rules say (a small Python child, no TensorFlow); where the kernel has no
Landlock, or another thread runs, the box is off and says why.

The box is never entered in the test process itself: every boxed call runs in a child.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mooring import _sandbox
from mooring.serving._banner import Where, banner_lines
from mooring.serving._box import box_line, box_status

ROOT = Path(__file__).resolve().parents[1]

landlock = pytest.mark.skipif(
    _sandbox.abi_version() < 6, reason="needs Linux with Landlock ABI 6 or later"
)

_CHILD = r"""
import errno, json, os, socket, sys
from pathlib import Path
from mooring import _sandbox

store, log, outside, secret, port, listener = sys.argv[1:7]
box = _sandbox.enter(_sandbox.Rules(read=(Path(store),), write=(Path(log),), bind=(int(port),)))
seen = {"line": _sandbox.describe(box), "tmpdir": os.environ["TMPDIR"]}

def attempt(name, call):
    try:
        call()
        seen[name] = "ok"
    except OSError as exc:
        seen[name] = errno.errorcode[exc.errno]

def bind(number):
    with socket.socket() as server:
        server.bind(("127.0.0.1", number))
        server.listen()

def write(path):
    Path(path).write_text("owned")

attempt("read store", lambda: Path(store, "model.pb").read_text())
attempt("read outside", lambda: Path(secret).read_text())
attempt("read passwd", lambda: Path("/etc/passwd").read_text())
attempt("write log", lambda: write(Path(log, "rows.parquet")))
attempt("write store", lambda: write(Path(store, "model.pb")))
attempt("write outside", lambda: write(Path(outside, "dropped")))
attempt("write temp", lambda: write(Path(os.environ["TMPDIR"], "scratch")))
attempt("bind own port", lambda: bind(int(port)))
attempt("bind other port", lambda: bind(0))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", int(listener)), 2).close())
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1).close())
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close())
attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close())
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()])
attempt("signal parent", lambda: os.kill(os.getppid(), 0))
print(json.dumps(seen))
"""


def _child(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@landlock
def test_a_boxed_process_reaches_only_what_its_rules_name(tmp_path: Path) -> None:
    store, log, outside = (tmp_path / name for name in ("store", "log", "outside"))
    for folder in (store, log, outside):
        folder.mkdir()
    (store / "model.pb").write_text("the model")
    secret = outside / "secret.txt"
    secret.write_text("a secret of the machine")
    with socket.socket() as probe:  # a port that is free now, for the box to allow
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        args = (str(store), str(log), str(outside), str(secret), str(port))
        seen = json.loads(_child(_CHILD, *args, str(listener.getsockname()[1])))
        with pytest.raises(TimeoutError, match="timed out"):
            listener.accept()  # no connection arrived
    assert seen.pop("line").startswith(f"box on: Landlock ABI {_sandbox.abi_version()} (files;")
    temp = Path(seen.pop("tmpdir"))
    # The box's own temporary folder is removed at exit.
    assert temp.parent == Path(tempfile.gettempdir()) / f"mooring-box-{os.getuid()}"
    assert temp.parent.is_dir() and not temp.exists()
    assert seen == {
        "read store": "ok",
        "read outside": "EACCES",
        "read passwd": "EACCES",
        "write log": "ok",
        "write store": "EACCES",
        "write outside": "EACCES",
        "write temp": "ok",
        "bind own port": "ok",
        "bind other port": "EACCES",
        "connect": "EACCES",
        "udp": "EPERM",
        "raw": "EPERM",
        "netlink": "EPERM",
        "packet": "EPERM",
        "unix": "EPERM",
        "socketpair": "ok",
        "signal parent": "EPERM",
    }
    assert not (outside / "dropped").exists() and (store / "model.pb").read_text() == "the model"


@landlock
def test_a_process_with_another_python_thread_is_not_boxed_and_says_which() -> None:
    code = (
        "import threading, time\n"
        "from mooring import _sandbox\n"
        "threading.Thread(target=time.sleep, args=(5,), name='poller', daemon=True).start()\n"
        "box = _sandbox.enter(_sandbox.Rules())\n"
        "print(_sandbox.describe(box), open('/etc/passwd').read() != '')\n"
    )
    assert _child(code) == "box off: Python threads ran before the box could hold them " + (
        "(MainThread, poller) True"
    )


@pytest.fixture
def unboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without Landlock; this process's box forgotten afterwards."""
    monkeypatch.setattr(_sandbox, "abi_version", lambda: 0)
    monkeypatch.setattr(_sandbox, "_current", None)


@pytest.mark.usefixtures("unboxed")
def test_without_landlock_the_box_is_off_and_every_status_line_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mooring.cli import main
    from mooring.config import MooringConfig

    monkeypatch.setattr(_sandbox.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(_sandbox.sys, "platform", "linux")
    why = "the kernel offers no Landlock (Linux ≥ 5.13 with landlock in its lsm= list)"
    box = _sandbox.enter(_sandbox.Rules(bind=(8501,)))  # applies nothing: no Landlock
    assert box == _sandbox.Box(on=False, why=why)
    assert box_status() == {
        "on": False,
        "line": f"box off: {why}",
        "landlock_abi": 0,
        "bind_tcp": [],
        "connect_tcp": [],
        "off": [why],
        "threads_outside_landlock": 0,
    }
    lines = banner_lines(Where("127.0.0.1", 8501, box=_sandbox.describe(box)), [])
    assert lines[1] == f"  box off: {why}"
    table = {"project": {"name": "m"}, "data": {"train": "t.csv"}}
    assert box_line(MooringConfig.from_mapping(table)) == f"box off: {why}"
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "m"\n[data]\ntrain = "t.csv"\n')
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["box"] == f"box off: {why}"


def test_a_server_not_started_by_mooring_serve_says_it_is_not_boxed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sandbox, "_current", None)
    assert box_status()["line"] == "box off: this process was not started by mooring serve"


def test_endpoints_give_their_ports_and_whether_a_name_is_looked_up() -> None:
    urls = [
        "postgresql+psycopg://u@db.internal:6432/reg",
        "https://hooks.example.com/mooring",
        "http://127.0.0.1:4318",
        "s3://bucket/models",
        "/srv/predictions",
        None,
    ]
    assert _sandbox.endpoint_ports(urls) == ((443, 4318, 6432), True, False)
    assert _sandbox.endpoint_ports(["postgresql:///reg?host=/run/postgresql"]) == ((), False, True)
    assert _sandbox.endpoint_ports(["http://[::1]:9000/x"]) == ((9000,), False, False)
