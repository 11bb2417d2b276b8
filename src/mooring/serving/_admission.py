"""Admission: the inference permits, the predictions receiving their body, the body budget.

What a server may take on at once, counted in one place for every protocol: the door
(:mod:`mooring.serving._door`, HTTP/1.1) and gRPC (:mod:`mooring.serving._grpc.server`)
admit predictions through the same :class:`Admission`, so ``max_in_flight`` and
``body_budget_bytes`` bound both together.

* **Permits.** At most ``max_in_flight`` predictions hold one (:attr:`Admission.in_flight`).
* **Receiving.** At most ``max_receiving`` predictions whose body is still arriving
  (:attr:`Admission.receiving`); they hold bytes of the budget, not a permit.
* **Body budget.** Bytes of prediction bodies held, as they arrive and until their answer
  (:attr:`Admission.body_bytes`): at most ``body_budget_bytes``, or one body of any size.
  The door holds what has arrived and a share more (:meth:`Admission.grow`), not what a
  body declares, so bodies trickling in hold little of it.
* **The small bodies' share.** Bodies larger than :data:`SMALL_BODY` (or chunked ones
  once past it) hold at most ``body_budget_bytes`` less ``small_body_share`` of it together
  (:attr:`Admission.large_bytes`): however many large bodies arrive, ordinary requests of
  a few KiB find room (64 clients sending 4 MiB bodies left a single-row client one 200
  in 18 s when they could fill the whole budget).

Every refusal is reported to :attr:`Admission.on_refused` with its reason (the
``mooring_refused_total`` counter).

Examples:
    >>> admission = Admission(max_in_flight=1, body_budget_bytes=1024)
    >>> admission.try_admit(4096), admission.try_admit(1)
    (None, 'in_flight')
    >>> admission.release(4096); (admission.in_flight, admission.body_bytes)
    (0, 0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mooring.config import ServingConfig

__all__ = ["SMALL_BODY", "Admission"]

#: A body of at most this many bytes is small: it may hold the budget's reserved share.
SMALL_BODY = 64 * 1024


class Admission:
    """The counts of one serving process, with the checks and moves that keep them in
    their limits. Not thread-safe: every caller runs on the server's event loop."""

    __slots__ = (
        "body_budget_bytes",
        "body_bytes",
        "in_flight",
        "large_bytes",
        "large_room",
        "max_in_flight",
        "max_receiving",
        "on_refused",
        "pipelined_permits",
        "receiving",
    )

    def __init__(
        self,
        *,
        max_in_flight: int = 32,
        max_receiving: int = 256,
        body_budget_bytes: int = 32 * 1024 * 1024,
        small_body_reserve_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.max_in_flight = max_in_flight
        #: The permits a pipelined prediction may find taken and still be admitted: all
        #: but a quarter (the door's "pipelining yields a quarter of the permits").
        self.pipelined_permits = max_in_flight - max_in_flight // 4
        self.max_receiving = max_receiving
        self.body_budget_bytes = body_budget_bytes
        #: Predictions holding an inference permit.
        self.in_flight = 0
        #: Predictions whose body is still arriving (not yet holding a permit).
        self.receiving = 0
        #: Bytes of prediction bodies held, as they arrive and until their answer.
        self.body_bytes = 0
        #: What bodies larger than SMALL_BODY may hold together: the budget less the
        #: small bodies' reserve (at least one SMALL_BODY less than the budget).
        self.large_room = max(
            body_budget_bytes - max(small_body_reserve_bytes, 0),
            min(SMALL_BODY, body_budget_bytes),
        )
        #: Of body_bytes, those held by bodies larger than SMALL_BODY.
        self.large_bytes = 0
        #: Called with the reason of each refusal (in_flight, body_bytes, receiving, and
        #: the door's own: connections, read_timeout).
        self.on_refused: Callable[[str], None] | None = None

    @classmethod
    def of(cls, limits: ServingConfig) -> Admission:
        """The admission of ``[serving]``'s ``max_in_flight``, ``max_receiving``,
        ``body_budget_bytes`` and ``small_body_share`` (of the budget)."""
        return cls(
            max_in_flight=limits.max_in_flight,
            max_receiving=limits.max_receiving,
            body_budget_bytes=limits.body_budget_bytes,
            small_body_reserve_bytes=int(limits.body_budget_bytes * limits.small_body_share),
        )

    def counts(self) -> tuple[int, int, int]:
        """``(in_flight, receiving, body_bytes)``: all 0 when nothing is admitted.

        >>> Admission().counts()
        (0, 0, 0)
        """
        return self.in_flight, self.receiving, self.body_bytes

    def count(self, reason: str) -> None:
        """Report one refusal for ``reason``."""
        if self.on_refused is not None:
            self.on_refused(reason)

    def over_budget(self, size: int) -> bool:
        """Would holding ``size`` more bytes of bodies pass ``body_budget_bytes``? Never
        while none are held, so one body of any admitted size is always taken.

        >>> admission = Admission(body_budget_bytes=1024)
        >>> admission.over_budget(4096), admission.try_admit(4096), admission.over_budget(1)
        (False, None, True)
        """
        held = self.body_bytes
        if held > 0 and held + size > self.body_budget_bytes:
            return True
        large = self.large_bytes
        return size > SMALL_BODY and large > 0 and large + size > self.large_room

    def refusal(self, size: int, permits: int) -> str | None:
        """Why a prediction of ``size`` bytes would be refused now with ``permits`` taken at
        most (``in_flight``, ``body_bytes``), or None; nothing is counted or taken. A
        large body is refused where large bodies hold their part of the budget, a small one
        only where the whole budget is held.

        >>> kib = 1024
        >>> admission = Admission(body_budget_bytes=1024 * kib, small_body_reserve_bytes=256 * kib)
        >>> admission.start_receiving(700 * kib, large=True)
        True
        >>> admission.refusal(200 * kib, 32), admission.refusal(2 * kib, 32)
        ('body_bytes', None)
        """
        if self.in_flight >= permits:
            return "in_flight"
        if self.over_budget(size):
            return "body_bytes"
        return None

    # -- a message read whole (gRPC) ------------------------------------------------------
    def try_admit(self, size: int = 0) -> str | None:
        """Admit one prediction whose ``size`` bytes are already read; ``None`` when
        admitted (a permit and the bytes held until :meth:`release`), else why not (the
        refusal is counted; the caller answers "unavailable" with
        :func:`~mooring.serving._door_answers.refusal_message`).

        >>> admission = Admission(max_in_flight=1)
        >>> admission.try_admit(), admission.try_admit()
        (None, 'in_flight')
        """
        why = self.refusal(size, self.max_in_flight)
        if why is not None:
            self.count(why)
            return why
        self.in_flight += 1
        self.body_bytes += size
        if size > SMALL_BODY:
            self.large_bytes += size
        return None

    def release(self, size: int = 0) -> None:
        """Give back the permit and the ``size`` bytes of a prediction admitted by
        :meth:`try_admit`, once it is answered."""
        self.in_flight -= 1
        self.body_bytes -= size
        if size > SMALL_BODY:
            self.large_bytes -= size

    # -- a body that arrives (the door) ---------------------------------------------------
    def start_receiving(self, size: int, large: bool = False) -> bool:
        """Count a prediction whose body starts arriving, holding ``size`` bytes of the
        budget (of the large bodies' part when ``large``); False (nothing taken) when
        ``max_receiving`` already are."""
        if self.receiving >= self.max_receiving:
            return False
        self.receiving += 1
        self.body_bytes += size
        if large:
            self.large_bytes += size
        return True

    def stop_receiving(self) -> None:
        """A body counted by :meth:`start_receiving` has arrived (or never will)."""
        self.receiving -= 1

    def grow(self, held: int, wanted: int, large: bool = False, was_large: bool = False) -> bool:
        """Hold ``wanted`` bytes instead of ``held`` for a body that outgrew its share;
        False, nothing changed, when the others' bytes and ``wanted`` pass the budget or,
        for a ``large`` body (``was_large``: its ``held`` bytes were counted as large
        already), the other large bodies' and ``wanted`` pass their part of it."""
        others = self.body_bytes - held
        if others > 0 and others + wanted > self.body_budget_bytes:
            return False
        large_others = self.large_bytes - (held if was_large else 0)
        if large and large_others > 0 and large_others + wanted > self.large_room:
            return False
        self.body_bytes = others + wanted
        self.large_bytes = large_others + (wanted if large else 0)
        return True

    def give_back(self, size: int, large: bool = False) -> None:
        """Stop holding ``size`` bytes of the budget (of the large bodies' part)."""
        self.body_bytes -= size
        if large:
            self.large_bytes -= size

    def take_permit(self, permits: int) -> bool:
        """Take a permit for a prediction whose body has arrived, if fewer than ``permits``
        are taken (``max_in_flight``, or :attr:`pipelined_permits`)."""
        if self.in_flight >= permits:
            return False
        self.in_flight += 1
        return True

    def drop_permit(self) -> None:
        """Give back a permit taken by :meth:`take_permit`."""
        self.in_flight -= 1
