"""Registry events as signed webhooks, end to end: a local HTTP receiver (``http.server`` on
127.0.0.1) checks every delivered CloudEvent with the snippet the docs give consumers (the
HMAC, the link to the event before, the hash under the audit key), and a receiver that is
down first, then up, gets every event later, in order. SQLite and PostgreSQL; small folders.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mooring.cli._audit import deliver_command
from mooring.config import load_config
from mooring.errors import UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import GENESIS_HASH
from mooring.registry._sql.store import SqlStore
from mooring.registry._webhooks import Deliverer, DeliveryFailedError, http_post
from tests._support.artifacts import LINEAGE, make_model_dir
from tests._support.cli import mooring_in_process

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-shared-with-the-receiver"
KEY = bytes(range(32))


def _docs_check() -> Callable[..., dict[str, Any]]:
    """``check_delivery`` as docs/concepts/registry.md gives it to consumers."""
    page = (ROOT / "docs" / "concepts" / "registry.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "check_delivery" in b)
    scope: dict[str, Any] = {}
    exec(compile(block, "registry.md", "exec"), scope)
    check: Callable[..., dict[str, Any]] = scope["check_delivery"]
    return check


class Receiver:
    """An HTTP receiver on 127.0.0.1: records each POST, answering the statuses queued in
    ``answers`` first, then 204. ``stop()`` closes the port (a receiver that is down)."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.answers.pop(0) if outer.answers else 204
                if status == 204:
                    outer.received.append((dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= count, f"{len(self.received)} of {count} events arrived"

    def checked(self, audit_key: bytes | None = None) -> list[dict[str, Any]]:
        """Every received event checked as a consumer would; their data, in order."""
        check, last, events = _docs_check(), GENESIS_HASH, []
        for headers, body in self.received:
            assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
            event = check(body, headers["X-Mooring-Signature"], SECRET.encode(), last, audit_key)
            last = event["hash"]
            events.append(event)
        return events


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    up = Receiver()
    yield up
    up.stop()


def _register(registry: Registry, tmp_path: Path, seed: int, by: str = "ana") -> int:
    folder = make_model_dir(tmp_path / f"m{seed}", seed)
    return registry.register(
        "income", folder, VersionRecord(lineage=LINEAGE), created_by=by
    ).version


def _project(tmp_path: Path, db_url: str, hook: str) -> Path:
    path = tmp_path / "mooring.toml"
    path.write_text(
        f'[project]\nname = "income"\nregistry = "{db_url}"\nartifacts = "artifacts"\n'
        f'[data]\ntrain = "train.csv"\n[registry]\nproduction_requires = "approval"\n'
        f'[[registry.webhooks]]\nurl = "{hook}"\nsecret_env = "HOOK_SECRET"\n'
    )
    return path


def _join_background() -> None:
    for thread in threading.enumerate():
        if thread.name == "mooring-webhooks":
            thread.join(20)


def test_each_event_reaches_the_receiver_signed_and_chained(
    db_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("MOORING_AUDIT_KEY", KEY.hex())
    cfg = load_config(_project(tmp_path, db_url, receiver.url))
    with Registry.from_config(cfg) as registry:
        v1 = _register(registry, tmp_path, 1)
        registry.approve("income", version=v1, reason="card and report read", actor="bob")
        registry.promote("income", version=v1, actor="ana", force=True, reason="hand-checked")
        receiver.wait_for(3)
        _join_background()
        head = registry.audit_head()
    events = receiver.checked(audit_key=KEY)
    assert [(e["seq"], e["action"], e["actor"]) for e in events] == [
        (1, "register", "ana"), (2, "approve", "bob"), (3, "promote", "ana")
    ]  # fmt: skip
    assert head == f"3:{events[-1]['hash']}"
    promote = receiver.received[2][1]
    assert b'"type":"dev.mooring.audit.promote"' in promote
    assert b'"specversion":"1.0"' in promote and b'"subject":"income@1"' in promote
    assert b'"datacontenttype":"application/json"' in promote
    # A body changed in transit, a wrong secret, a forged hash: each is caught.
    check = _docs_check()
    headers, body = receiver.received[1]
    with pytest.raises(ValueError, match=r"the signature does not match"):
        check(body.replace(b"bob", b"eve"), headers["X-Mooring-Signature"], SECRET.encode())
    with pytest.raises(ValueError, match=r"the signature does not match"):
        check(body, headers["X-Mooring-Signature"], b"another secret")
    with pytest.raises(ValueError, match=r"event 2 does not follow the last event received"):
        check(body, headers["X-Mooring-Signature"], SECRET.encode(), events[1]["hash"])
    with pytest.raises(ValueError, match=r"event 2 does not match its hash"):
        check(body, headers["X-Mooring-Signature"], SECRET.encode(), None, bytes(32))


def test_a_receiver_down_then_up_gets_every_event_later_in_order(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    down = Receiver()
    down.stop()  # the port is closed: connections are refused
    cfg = load_config(_project(tmp_path, db_url, down.url))
    waits: list[float] = []
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as registry:
        assert isinstance(registry.store, SqlStore)
        deliverer = Deliverer(registry.store, cfg.registry.webhooks, sleep=waits.append)
        registry.store.after_write = deliverer.kick
        for seed in (1, 2):
            _register(registry, tmp_path, seed)
        registry.set_alias("income", "candidate", version=2, actor="ana")
        deliverer.wait(20)
        [report] = deliverer.deliver(attempts=3)
        assert (report.ok, report.delivered, report.cursor) == (False, 0, 0)
        assert "audit event 1 (register) was not acknowledged after 3 attempt(s)" in (
            report.error or ""
        )
        assert waits == [0.5, 1.0]  # exponential backoff between attempts

        up = Receiver(down.port)
        try:
            up.answers = [503]  # the immediate attempt after the next write fails too
            registry.archive("income", version=1, actor="ana")  # recorded while behind
            deliverer.wait(20)
            [report] = deliverer.deliver()
            assert (report.ok, report.cursor) == (True, 4)
            registry.set_alias("income", "champion", version=2, actor="ana")
            deliverer.wait(20)
            up.wait_for(5)
            events = up.checked()
        finally:
            up.stop()
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["action"] for e in events] == ["register", "register", "alias", "archive", "alias"]


def test_an_unset_secret_or_a_redirect_delivers_nothing(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    cfg = load_config(_project(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", receiver.url))
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "a") as registry:
        _register(registry, tmp_path, 1)
        assert isinstance(registry.store, SqlStore)
        [report] = Deliverer(registry.store, cfg.registry.webhooks).deliver()
    assert report.error is not None and report.error.startswith(
        "the environment variable HOOK_SECRET (secret_env of the webhook"
    )
    assert receiver.received == []
    receiver.answers = [302]
    with pytest.raises(DeliveryFailedError, match=r"HTTP 302"):
        http_post(receiver.url, b"{}", {"Content-Type": "application/json"}, 5.0)


def test_mooring_audit_deliver_catches_up_and_says_who_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    down = Receiver()
    down.stop()
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    project = _project(tmp_path, db_url, down.url)
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as registry:
        _register(registry, tmp_path, 1)  # opened by URL: no receivers, nothing sent
    behind = mooring_in_process("audit", "deliver", "--attempts", "1", "-c", str(project), "--json")
    assert behind.returncode == 1
    assert "audit event 1 (register) was not acknowledged after 1 attempt(s)" in behind.stdout
    up = Receiver(down.port)
    try:
        done = mooring_in_process("audit", "deliver", "-c", str(project), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"cursor": 1' in done.stdout and '"ok": true' in done.stdout
        assert [e["seq"] for e in up.checked()] == [1]
    finally:
        up.stop()
    none = tmp_path / "none.toml"
    none.write_text('[project]\nname = "income"\n[data]\ntrain = "train.csv"\n')
    with pytest.raises(UsageError, match=r"no \[\[registry.webhooks\]\] in .*none.toml"):
        deliver_command(config=none)
