"""Admission (mooring.serving._admission): permits, receiving count and body budget.

Any interleaving of the door's and gRPC's moves keeps every count within its limit and
brings it back to 0 once every admitted request is let go.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.serving._admission import Admission
from mooring.serving._door import Door


def test_try_admit_takes_a_permit_and_bytes_until_release() -> None:
    seen: list[str] = []
    admission = Admission(max_in_flight=2, body_budget_bytes=100)
    admission.on_refused = seen.append
    assert admission.try_admit(80) is None
    assert admission.try_admit(30) == "body_bytes"  # 110 held would pass 100
    assert admission.try_admit(20) is None
    assert admission.try_admit(0) == "in_flight"
    assert admission.counts() == (2, 0, 100)
    admission.release(80)
    admission.release(20)
    assert admission.counts() == (0, 0, 0)
    assert seen == ["body_bytes", "in_flight"]


def test_one_body_of_any_size_is_taken_alone() -> None:
    admission = Admission(body_budget_bytes=10)
    assert not admission.over_budget(1_000)
    assert admission.try_admit(1_000) is None
    assert admission.over_budget(1)


def test_a_pipelined_request_leaves_a_quarter_of_the_permits() -> None:
    admission = Admission(max_in_flight=8)
    assert admission.pipelined_permits == 6
    admission.in_flight = 6
    assert admission.refusal(0, admission.pipelined_permits) == "in_flight"
    assert admission.refusal(0, admission.max_in_flight) is None


def test_receiving_is_bounded_and_counts_nothing_when_refused() -> None:
    admission = Admission(max_receiving=1)
    assert admission.start_receiving(10)
    assert not admission.start_receiving(10)
    assert admission.counts() == (0, 1, 10)


def test_a_growing_body_stays_within_the_budget_of_the_others() -> None:
    admission = Admission(body_budget_bytes=100)
    assert admission.start_receiving(40)
    assert admission.grow(40, 500)  # alone: any size
    assert admission.body_bytes == 500
    assert admission.try_admit(0) == "body_bytes"  # past the budget: nothing more
    admission.stop_receiving()
    admission.give_back(500)
    assert admission.start_receiving(60)
    assert admission.grow(60, 100)
    assert not admission.grow(0, 1)  # 100 held by the other: no room for one more byte
    assert admission.body_bytes == 100


def test_large_messages_leave_the_small_ones_their_share_of_the_budget() -> None:
    # 1 MiB, a quarter for small bodies: 300 KiB messages take 768 KiB at most together
    # (the third is refused with 600 KiB held), while 4 KiB ones fill the rest.
    kib = 1024
    admission = Admission(
        max_in_flight=200, body_budget_bytes=1024 * kib, small_body_reserve_bytes=256 * kib
    )
    assert [admission.try_admit(300 * kib) for _ in range(3)] == [None, None, "body_bytes"]
    assert [admission.try_admit(4 * kib) for _ in range(106)] == [None] * 106
    assert admission.try_admit(4 * kib) == "body_bytes"  # the whole budget: 1,024 KiB held
    assert admission.large_bytes == 600 * kib
    for size in [300 * kib] * 2 + [4 * kib] * 106:
        admission.release(size)
    assert admission.counts() == (0, 0, 0) and admission.large_bytes == 0


def test_the_door_and_its_limits_share_one_admission() -> None:
    limits = ServingConfig(
        max_in_flight=3, max_receiving=5, body_budget_bytes=2**20, small_body_share=0.25
    )
    door = Door(limits)
    assert (door.admission.max_in_flight, door.admission.max_receiving) == (3, 5)
    assert (door.admission.body_budget_bytes, door.admission.large_room) == (2**20, 3 * 2**18)
    shared = Admission()
    assert Door(limits, shared).admission is shared


@dataclass
class _Held:
    """One request in the model: what it took, to give back."""

    kind: str  # "admitted" (gRPC), "receiving" (a body arriving), "permit" (body arrived)
    size: int


class _Clients:
    """The door's and gRPC's moves on one admission, with what each request holds."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.held: list[_Held] = []

    def admit(self, size: int, _: int) -> None:
        if self.admission.try_admit(size) is None:
            self.held.append(_Held("admitted", size))

    def receive(self, size: int, _: int) -> None:
        admission = self.admission
        if not admission.over_budget(size) and admission.start_receiving(size):
            self.held.append(_Held("receiving", size))

    def grow(self, size: int, pick: int) -> None:
        item = self._pick(pick)
        if item is None or item.kind != "receiving":
            return
        if self.admission.grow(item.size, item.size + size):
            item.size += size

    def arrive(self, _: int, pick: int) -> None:
        item = self._pick(pick)
        if item is None or item.kind != "receiving":
            return
        admission = self.admission
        admission.stop_receiving()
        if admission.take_permit(admission.max_in_flight):
            item.kind = "permit"
        else:
            admission.give_back(item.size)
            self.held.remove(item)

    def release(self, _: int, pick: int) -> None:
        item = self._pick(pick)
        if item is None:
            return
        self.held.remove(item)
        admission = self.admission
        if item.kind == "admitted":
            admission.release(item.size)
            return
        if item.kind == "receiving":
            admission.stop_receiving()
        else:
            admission.drop_permit()
        admission.give_back(item.size)

    def _pick(self, pick: int) -> _Held | None:
        return self.held[pick % len(self.held)] if self.held else None


_MOVES = st.lists(
    st.tuples(
        st.sampled_from(["admit", "receive", "grow", "arrive", "release"]),
        st.integers(min_value=0, max_value=200),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=60,
)


@given(
    moves=_MOVES,
    max_in_flight=st.integers(min_value=1, max_value=6),
    max_receiving=st.integers(min_value=1, max_value=6),
    budget=st.integers(min_value=1, max_value=300),
)
def test_any_interleaving_stays_within_limits_and_ends_at_zero(
    moves: list[tuple[str, int, int]], max_in_flight: int, max_receiving: int, budget: int
) -> None:
    admission = Admission(
        max_in_flight=max_in_flight, max_receiving=max_receiving, body_budget_bytes=budget
    )
    clients = _Clients(admission)
    for move, size, pick in moves:
        getattr(clients, move)(size, pick)
        in_flight, receiving, body_bytes = admission.counts()
        assert 0 <= in_flight <= max_in_flight
        assert 0 <= receiving <= max_receiving
        assert body_bytes == sum(item.size for item in clients.held)
        # Past the budget only by one body, taken while no other bytes were held.
        assert body_bytes <= budget or sum(1 for item in clients.held if item.size) == 1
    while clients.held:
        clients.release(0, 0)
    assert admission.counts() == (0, 0, 0)
