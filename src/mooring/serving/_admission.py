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

__all__ = ["Admission"]


class Admission:
    """The counts of one serving process, with the checks and moves that keep them in
    their limits. Not thread-safe: every caller runs on the server's event loop."""

    __slots__ = (
        "body_budget_bytes",
        "body_bytes",
        "in_flight",
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
        #: Called with the reason of each refusal (in_flight, body_bytes, receiving, and
        #: the door's own: connections, read_timeout).
        self.on_refused: Callable[[str], None] | None = None

    @classmethod
    def of(cls, limits: ServingConfig) -> Admission:
        """The admission of ``[serving]``'s ``max_in_flight``, ``max_receiving`` and
        ``body_budget_bytes``."""
        return cls(
            max_in_flight=limits.max_in_flight,
            max_receiving=limits.max_receiving,
            body_budget_bytes=limits.body_budget_bytes,
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
        return held > 0 and held + size > self.body_budget_bytes

    def refusal(self, size: int, permits: int) -> str | None:
        """Why a prediction of ``size`` bytes would be refused now with ``permits`` taken at
        most (``in_flight``, ``body_bytes``), or None; nothing is counted or taken."""
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
        return None

    def release(self, size: int = 0) -> None:
        """Give back the permit and the ``size`` bytes of a prediction admitted by
        :meth:`try_admit`, once it is answered."""
        self.in_flight -= 1
        self.body_bytes -= size

    # -- a body that arrives (the door) ---------------------------------------------------
    def start_receiving(self, size: int) -> bool:
        """Count a prediction whose body starts arriving, holding ``size`` bytes of the
        budget; False (nothing taken) when ``max_receiving`` already are."""
        if self.receiving >= self.max_receiving:
            return False
        self.receiving += 1
        self.body_bytes += size
        return True

    def stop_receiving(self) -> None:
        """A body counted by :meth:`start_receiving` has arrived (or never will)."""
        self.receiving -= 1

    def grow(self, held: int, wanted: int) -> bool:
        """Hold ``wanted`` bytes instead of ``held`` for a body that outgrew its share
        (a chunked body); False, nothing changed, when the others' bytes and ``wanted``
        pass the budget."""
        others = self.body_bytes - held
        if others > 0 and others + wanted > self.body_budget_bytes:
            return False
        self.body_bytes = others + wanted
        return True

    def give_back(self, size: int) -> None:
        """Stop holding ``size`` bytes of the budget."""
        self.body_bytes -= size

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
