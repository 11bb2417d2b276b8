"""One version's life on the server: its state, its error, and once warmed the slot it answers from.

A :class:`Harness` follows one version from the moment the manager starts loading it
until it is unloaded, as TF Serving's loader harness does::

    LOADING -> WARMING -> READY -> DRAINING -> UNLOADED
       |          |
       +----------+-----> FAILED

Only a ``READY`` harness has a :class:`Slot` (the loaded model, its batcher and the
count of requests using it); the router hands requests to slots only. A ``DRAINING``
harness takes no new request and stops its batcher once those in flight have
finished. A ``FAILED`` harness keeps the load or verification error for the status
endpoints. A shadow harness (``shadow=True``) was loaded for shadow copies: its own
one-thread executor, rows not logged with the answers, its error reported apart.

Examples:
    >>> harness = Harness(3)
    >>> harness.state.value, harness.answers
    ('loading', False)
    >>> harness.warming()
    >>> harness.failed("version 3: the artifact changed")
    >>> harness.state.value, harness.error
    ('failed', 'version 3: the artifact changed')
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mooring.serving._batcher import Batcher, Columns, Outputs
from mooring.serving._loaded import ServedModel

if TYPE_CHECKING:
    from mooring._tracing import RequestTrace
    from mooring.serving._log import LogTicket

__all__ = ["Harness", "HarnessState", "Slot"]


class HarnessState(enum.Enum):
    """Where a version is in its life on this server."""

    LOADING = "loading"  # fetching, verifying and opening the artifact
    WARMING = "warming"  # loaded; warm-up predictions run before it takes traffic
    READY = "ready"  # may be routed to (the aspired versions say whether it is)
    DRAINING = "draining"  # retired: finishes the requests it holds, takes no new one
    UNLOADED = "unloaded"  # its batcher stopped; gone
    FAILED = "failed"  # did not load or verify; ``error`` says why


# The moves a harness may make; anything else is a bug of the manager.
_NEXT: dict[HarnessState, frozenset[HarnessState]] = {
    HarnessState.LOADING: frozenset({HarnessState.WARMING, HarnessState.FAILED}),
    HarnessState.WARMING: frozenset({HarnessState.READY, HarnessState.FAILED}),
    HarnessState.READY: frozenset({HarnessState.DRAINING}),
    HarnessState.DRAINING: frozenset({HarnessState.UNLOADED}),
    HarnessState.UNLOADED: frozenset(),
    HarnessState.FAILED: frozenset(),
}


@dataclass(eq=False)
class Slot:
    """One loaded version with its batcher and the count of requests using it."""

    model: ServedModel
    batcher: Batcher
    inflight: int = 0
    loaded_at: float = field(default_factory=time.time)
    #: The model's version: a plain field, read several times per request.
    version: int = field(init=False)
    #: Its inputs are ``[None]`` columns (else tensors, batched by their inner shapes).
    columnar: bool = field(init=False)

    def __post_init__(self) -> None:
        self.version = self.model.version
        self.columnar = self.model.columnar

    async def predict(
        self,
        columns: Columns,
        rows: int,
        timeout_s: float,
        trace: RequestTrace | None = None,
        ticket: LogTicket | None = None,
    ) -> Outputs:
        """The request's outputs from its batch; with ``ticket``, its rows are logged with
        the batch (the ticket says whether they went into the log's buffer)."""
        self.inflight += 1
        # A tensor request merges only with requests of the same inner shapes.
        shapes = None if self.columnar else tuple(v.shape[1:] for v in columns.values())
        try:
            return await self.batcher.submit(
                columns, rows=rows, timeout_s=timeout_s, trace=trace, tag=ticket, shapes=shapes
            )
        finally:
            self.inflight -= 1


@dataclass(eq=False)
class Harness:
    """One version's state on this server and, once ready, its slot.

    ``error`` is the last load or verification error of the version: set when it
    fails, kept while a later attempt loads it again (a new harness made with
    ``error=``), cleared when it is ready. ``contract_error`` says why a ready version
    is served with the signature checks only.
    """

    version: int
    shadow: bool = False
    state: HarnessState = HarnessState.LOADING
    error: str | None = None
    contract_error: str | None = None
    slot: Slot | None = None

    @property
    def answers(self) -> bool:
        """True while the version may take requests (ready, with its slot)."""
        return self.state is HarnessState.READY and self.slot is not None

    def warming(self) -> None:
        """The artifact is open: warm-up predictions run next."""
        self._move(HarnessState.WARMING)

    def ready(self, slot: Slot) -> None:
        """Warmed, with its batcher running: the version may be routed to."""
        self._move(HarnessState.READY)
        self.slot, self.error = slot, None

    def failed(self, error: str) -> None:
        """The version did not load or verify; it is never served."""
        self._move(HarnessState.FAILED)
        self.error = error

    def draining(self) -> Slot:
        """Retired: the slot that finishes its requests in flight before it stops."""
        slot = self.slot
        if slot is None:
            raise RuntimeError(f"version {self.version} has no slot to drain ({self.state.value})")
        self._move(HarnessState.DRAINING)
        return slot

    def unloaded(self) -> None:
        """The batcher stopped: nothing of the version is left."""
        self._move(HarnessState.UNLOADED)
        self.slot = None

    def _move(self, to: HarnessState) -> None:
        if to not in _NEXT[self.state]:
            raise RuntimeError(
                f"version {self.version} cannot go from {self.state.value} to {to.value}"
            )
        self.state = to
