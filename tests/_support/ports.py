"""Free ports for the servers tests start on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port"]

#: Where test servers listen: below the kernel's ephemeral range, from which the port of
#: every outgoing connection is taken. A port the kernel hands out as free (bind to 0) is
#: in that range, and a client's connection (a load generator opens thousands) could take
#: it before the server that was given it listens.
_PORTS = (20_000, 32_768)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _PORTS[1]


def free_port() -> int:
    """A port nothing is bound to on 127.0.0.1, outside the ephemeral range."""
    high = min(_PORTS[1], _ephemeral_low())
    for _ in range(200):
        port = random.randrange(_PORTS[0], high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port between {_PORTS[0]} and {high}")
