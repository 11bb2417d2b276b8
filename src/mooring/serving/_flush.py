"""``POST /admin/flush``: write the prediction log's buffered rows now, in every worker.

The server writes its log every ``[serving] log_flush_s`` seconds (or ``log_flush_rows``
rows), so ``mooring live`` and ``mooring drift`` run just after a window of traffic
would read the window before it. They ask the server to flush first: each worker's
:meth:`~mooring.serving._log.PredictionLog.flush` writes what it holds, and the answer
comes once every worker has written (or a worker did not answer within
:data:`WAIT_S`, said so).

Who may ask: with an admin token (``[serving] admin_token`` or its environment
variable) set, a request bearing it, as every admin endpoint; without one, a client on
this machine only (a loopback address), since flushing writes nothing the log would not
write seconds later and reveals nothing.

With ``mooring serve --workers N`` the worker that answers writes a flush notice to its
run's folder (:meth:`~mooring.serving._workers.WorkerRun.announce_flush`); every worker
reads it with its deployment notices (every 0.1 s), flushes and acknowledges it, and the
answering worker waits for the acknowledgements of every worker that is ready.

Examples:
    >>> await flush_logs(state)  # doctest: +SKIP
    {'log': 'written', 'rows': 120, 'workers': 2, 'unanswered': 0}
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

from mooring.serving._state import ServerState

__all__ = ["WAIT_S", "flush_logs", "is_loopback"]

#: How long a flush waits for the writer of each worker.
WAIT_S = 5.0
#: How often the answering worker looks for the other workers' acknowledgements.
_POLL_S = 0.02


def is_loopback(client: Any) -> bool:
    """Whether an ASGI ``client`` (``(host, port)``) is on this machine.

    >>> is_loopback(("127.0.0.1", 50312)), is_loopback(("::1", 1)), is_loopback(("10.0.0.2", 1))
    (True, True, False)
    >>> is_loopback(None)
    False
    """
    if not isinstance(client, tuple | list) or not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


async def flush_logs(state: ServerState) -> dict[str, Any]:
    """Flush this worker's prediction log, and every other worker's in a run of several;
    what was written, JSON-ready (no path: the answer goes to a client)."""
    plog = state.prediction_log
    worker = state.worker
    stamp = None if worker is None else await asyncio.to_thread(worker.announce_flush)
    rows = None if plog is None else await asyncio.to_thread(plog.flush, WAIT_S)
    if plog is None or plog.sample_rate <= 0:
        return {"log": "off", "rows": 0, "workers": 1, "unanswered": 0}
    if worker is None or stamp is None:
        written = rows is not None
        return {
            "log": "written" if written else "not written in time",
            "rows": rows or 0,
            "workers": 1,
            "unanswered": 0 if written else 1,
        }
    await asyncio.to_thread(worker.acknowledge_flush, stamp, rows)
    deadline = time.monotonic() + WAIT_S
    while True:
        acks, missing = await asyncio.to_thread(worker.flush_acknowledgements, stamp)
        if not missing or time.monotonic() >= deadline:
            break
        await asyncio.sleep(_POLL_S)
    answered = [r for r in acks.values() if r is not None]
    return {
        "log": "written" if not missing and len(answered) == len(acks) else "not written in time",
        "rows": sum(answered),
        "workers": len(acks) + len(missing),
        "unanswered": len(missing) + len(acks) - len(answered),
    }
