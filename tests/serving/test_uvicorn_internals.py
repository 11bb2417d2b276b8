"""A tripwire on what the door takes from uvicorn beyond its public interface.

The door (:mod:`mooring.serving._door`) subclasses uvicorn's httptools protocol and reads
and writes its per-connection state; the fast path (:mod:`mooring.serving._fastpath`)
stands in for uvicorn's request cycle. None of that is uvicorn's API, so
``pyproject.toml`` pins uvicorn (and Starlette, httptools) to the minor version these
tests ran with. Before that pin is moved, this file says what an upgrade must keep:

* every attribute and method of uvicorn's protocol the door uses (:data:`PROTOCOL`),
  checked against the door's source so the list stays complete, and against a live
  connection of the installed uvicorn;
* what the door and the fast path's stand-ins read of uvicorn's request cycle
  (:data:`CYCLE`) and of its server state;
* the source of the two uvicorn methods the door replaces outright
  (``connection_made``, ``data_received``): a change there is a change the door's
  copies have not followed.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import socket
import textwrap
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

import mooring.serving._door as door_module
from mooring.serving._door import Door, DoorLimits

# uvicorn's names the door's protocol class uses: attributes it reads or writes, methods it
# calls, and (``super.``) uvicorn's methods it extends.
PROTOCOL = frozenset(
    {
        # per-connection and per-request state
        "app",
        "client",
        "connections",
        "cycle",
        "expect_100_continue",
        "flow",
        "headers",
        "loop",
        "parser",
        "pipeline",
        "root_path",
        "scheme",
        "scope",
        "server",
        "transport",
        "url",
        # methods it calls
        "_should_upgrade",
        "_unset_keepalive_if_required",
        "_unsupported_upgrade_warning",
        "handle_websocket_upgrade",
        "send_400_response",
        # uvicorn's methods it extends (calls through super())
        "super.connection_lost",
        "super.on_body",
        "super.on_headers_complete",
        "super.on_message_begin",
        "super.on_message_complete",
        "super.on_response_complete",
    }
)
# What the fast path (fastpath.FastRequest) reads of the protocol.
FAST_PATH = frozenset({"loop", "tasks", "server_state", "transport", "on_response_complete"})
# What uvicorn's parser callbacks and shutdown read of a request cycle, which the door's
# stand-ins (fastpath.FastRequest, door._Answered) provide; and what the door writes.
CYCLE = frozenset(
    {
        "more_body",
        "response_complete",
        "response_started",
        "keep_alive",
        "disconnected",
        "message_event",
        "transport",
    }
)
# uvicorn's methods the door replaces outright, and their source at the pinned version
# (sha256 of the dedented source). A new value means: read uvicorn's change, follow it in
# the door's copy, then record the new hash.
REPLACED = {
    "connection_made": "ba1915817ccf6c1b7d6d9982ca74b6fb9e43eebbd3f588fff1e1f8f17af5e161",
    "data_received": "02c2572f1df559070eba7f206a3f7e251782f5af4aaae194fc1ffb67f24c3873",
}
# The door's own names on the protocol (not uvicorn's).
OWN = frozenset(
    {
        "_app",
        "_body_at",
        "_body_got",
        "_body_left",
        "_coalescing",
        "_unanswered",
        "_held",
        "_held_at",
        "_ending",
        "_from_held",
        "_overflowed",
        "_parked",
        "_read_at",
        "_reading",
        "_refuse_all",
        "door",
        "park_after",
        "read_deadline",
    }
)


def _door_class() -> ast.ClassDef:
    tree = ast.parse(Path(door_module.__file__).read_text(encoding="utf-8"))
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "_DoorProtocol"]
    assert len(found) == 1, "the door's protocol class is no longer _DoorProtocol"
    return found[0]


def _used_by_door() -> set[str]:
    cls = _door_class()
    own_methods = {
        n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    used: set[str] = set()
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and node.attr not in own_methods
        ):
            used.add(node.attr)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "super"
        ):
            used.add(f"super.{node.attr}")
    return used - OWN


def test_the_list_names_everything_the_door_takes_from_uvicorn() -> None:
    used = _used_by_door()
    assert used == PROTOCOL, (
        f"the door now uses {sorted(used - PROTOCOL)} and no longer {sorted(PROTOCOL - used)} "
        "of uvicorn's protocol: update PROTOCOL (and check the names exist upstream)"
    )


def _source_hash(name: str) -> str:
    source = textwrap.dedent(inspect.getsource(getattr(HttpToolsProtocol, name)))
    return hashlib.sha256(source.encode()).hexdigest()


def test_the_methods_the_door_replaces_are_unchanged_upstream() -> None:
    now = {name: _source_hash(name) for name in REPLACED}
    changed = {name: digest for name, digest in now.items() if digest != REPLACED[name]}
    assert changed == {}, (
        f"uvicorn {uvicorn.__version__} changed {sorted(changed)} of its httptools protocol, "
        f"which the door replaces with its own copies: follow the change there, then record "
        f"{changed}"
    )


async def _live_connection() -> tuple[HttpToolsProtocol, Any, list[str]]:
    """A real uvicorn protocol of the door's class on one end of a socket pair, with a
    request whose body has not arrived (so its cycle is live)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    config.load()
    door = Door(DoorLimits())
    protocol_class = door.protocol()
    server_side, client_side = socket.socketpair()
    loop = asyncio.get_running_loop()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, server_side)
    client_side.sendall(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\n")
    for _ in range(200):
        if protocol.cycle is not None:
            break
        await asyncio.sleep(0.005)
    missing_fast = [n for n in FAST_PATH if not hasattr(protocol, n)]
    if not hasattr(protocol.server_state, "default_headers"):
        missing_fast.append("server_state.default_headers")
    cycle = protocol.cycle
    transport.close()
    client_side.close()
    await asyncio.sleep(0)
    return protocol, cycle, missing_fast


def test_the_installed_uvicorn_has_every_name() -> None:
    protocol, cycle, missing_fast = asyncio.run(_live_connection())
    missing = [
        name
        for name in sorted(PROTOCOL)
        if not hasattr(protocol, name.removeprefix("super."))
        or (
            name.startswith("super.") and name.removeprefix("super.") not in vars(HttpToolsProtocol)
        )
    ]
    assert isinstance(cycle, RequestResponseCycle), "no request cycle was made"
    missing += [f"cycle.{name}" for name in sorted(CYCLE) if not hasattr(cycle, name)]
    missing += [f"fast path: {name}" for name in missing_fast]
    if not hasattr(httptools_impl, "STATUS_LINE"):
        missing.append("httptools_impl.STATUS_LINE")
    assert missing == [], (
        f"uvicorn {uvicorn.__version__} no longer has what the door uses: {missing}"
    )
