"""TCP ports for test servers, chosen where no outgoing connection can take one.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its ephemeral
range, the range every outgoing connection's local port comes from too. A test that
chose such a port, closed it and started a server that listens seconds later (once its
model loaded) lost it now and then to a client's connection elsewhere in the suite.
These ports are drawn from below that range (and above Ray's worker ports, 10002–19999),
where only another listener can take one.

Examples:
    >>> port = free_port()  # 20000 up to the ephemeral range's start, on most machines
    >>> server = Server(app, host="127.0.0.1", port=port)  # doctest: +SKIP
"""

from __future__ import annotations

import random
import socket

__all__ = ["bound_socket", "free_port"]

#: Ray's workers listen on 10002–19999 by default; the kernel's ephemeral range
#: starts at 32768 unless the machine says otherwise.
_LOWEST = 20000
_TRIES = 200
#: The operating system's randomness: the suite's tests seed Python's own generator
#: (Keras's ``set_random_seed``, Hypothesis), and seeded alike, every xdist worker would
#: draw the same ports in the same order.
_DRAW = random.SystemRandom()


def _highest() -> int:
    """The highest port below the kernel's ephemeral range."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            return int(handle.read().split()[0]) - 1
    except (OSError, ValueError, IndexError):
        return 32767


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to ``host`` on a free port below the ephemeral range (any free
    port when that range leaves too few): hand it to the server, which then owns it."""
    highest = _highest()
    ports = range(_LOWEST, highest + 1) if highest - _LOWEST >= 1000 else range(0)
    for port in _DRAW.sample(ports, min(_TRIES, len(ports))):
        sock = socket.socket()
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        return sock
    sock = socket.socket()
    sock.bind((host, 0))
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, for a server started by another process."""
    with bound_socket(host) as sock:
        port: int = sock.getsockname()[1]
        return port
