"""The door's HTTP/1.1 core (mooring.serving._door_core) in memory: bytes, events and a
clock of the test's own, no socket and no loop (tests/_support/door_core.Driver).

Framing and pipelining hold over every split of the bytes and every order of answers,
waits and timeouts; each hostile client of the door's probe is refused by the core
while normal clients on the same door are served; admission's counts end at zero.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.serving._door import Door
from mooring.serving._door_states import CHUNK_FRAMING, CHUNK_MIN_AVG, CHUNKS_FREE, HEAD_LIMIT
from tests._support.door_core import Driver

PREDICT = "/v1/models/income:predict"


def _plain(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    length = f"content-length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nhost: t\r\n{length}{extra}\r\n".encode() + body


def _chunked(path: str, body: bytes, pieces: int, trailer: bool) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    step = max(1, -(-len(body) // pieces))
    chunks = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
        for i in range(0, len(body), step)
    )
    return head + chunks + b"0\r\n" + (b"x-sum: 1\r\n" if trailer else b"") + b"\r\n"


# One request of a pipeline: (method, path, body) and how it is framed.
_REQUEST = st.one_of(
    st.tuples(st.just("GET"), st.sampled_from(["/v2/health/live", "/metrics?x=1"]), st.just(b"")),
    st.tuples(st.just("POST"), st.sampled_from([PREDICT, "/v2/models/income/infer"]),
              st.binary(min_size=1, max_size=200)),
)  # fmt: skip
_FRAMED = st.tuples(_REQUEST, st.booleans(), st.integers(1, 5), st.booleans())


def _wire(request: tuple[tuple[str, str, bytes], bool, int, bool]) -> bytes:
    (method, path, body), chunked, pieces, trailer = request
    if method == "POST" and chunked:
        return _chunked(path, body, pieces, trailer)
    return _plain(method, path, body)


def _idle(door: Door) -> None:
    assert door.admission.counts() == (0, 0, 0)


@settings(max_examples=150)
@given(
    requests=st.lists(_FRAMED, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    answers=st.lists(st.integers(0, 2), max_size=20),
    gaps=st.lists(st.floats(0, 0.5), max_size=20),
    half_close=st.booleans(),
)
def test_a_pipeline_split_anywhere_and_answered_in_any_order_is_served_once_each_in_order(
    requests: list[Any], cuts: list[int], answers: list[int], gaps: list[float], half_close: bool
) -> None:
    stream = b"".join(_wire(r) for r in requests)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    driver = Driver()
    for n, (start, stop) in enumerate(itertools.pairwise(bounds)):
        driver.send(stream[start:stop], after=gaps[n] if n < len(gaps) else 0.0)
        assert len(driver.pending) <= 1  # one request at a time, whatever was sent
        for _ in range(answers[n] if n < len(answers) else 1):
            if driver.pending:
                driver.answer()
    if half_close:  # the client's last byte sent: every request is still answered
        driver.eof()
    driver.settle()
    assert driver.received == [r[0] for r in requests]
    assert driver.statuses() == [200] * len(requests)
    assert driver.closed is half_close
    driver.leave()
    _idle(driver.door)


@settings(max_examples=100)
@given(
    events=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(1, 300)),
            st.tuples(st.just("answer"), st.just(0)),
            st.tuples(st.just("wait"), st.integers(0, 40)),
            st.tuples(st.just("leave"), st.just(0)),
            st.tuples(st.just("eof"), st.just(0)),
        ),
        max_size=30,
    ),
    busy=st.booleans(),
)
def test_in_any_order_of_events_nothing_follows_a_close_and_every_count_returns_to_zero(
    events: list[tuple[str, int]], busy: bool
) -> None:
    door = Door(ServingConfig(max_in_flight=4, retry_after_s=1, body_grace_s=1.0))
    if busy:
        door.admission.in_flight = 3  # one request pipelined behind another is refused
    stream = b"".join(
        _plain("POST", PREDICT, b'{"instances": [1]}') + _chunked(PREDICT, b"[2]" * 50, 3, True)
        for _ in range(3)
    )
    driver, sent, ended = Driver(door), 0, False
    for kind, amount in events:
        if driver.closed:
            break
        if kind == "send" and sent < len(stream) and not ended:
            driver.send(stream[sent : sent + amount])
            sent += amount
        elif kind == "answer" and driver.pending:
            driver.answer()
        elif kind == "wait":
            driver.advance(amount / 10)
        elif kind == "leave":
            driver.leave()
        elif kind == "eof":
            ended = True
            driver.eof()
        assert len(driver.pending) <= 1
    if not driver.closed:
        driver.leave()
    while driver.pending:  # the app finishes what it was given; its client is gone
        driver.answer()
    if busy:
        door.admission.in_flight -= 3
    _idle(door)
    assert set(driver.statuses()) <= {200, 408, 503}


def _at(driver: Driver, now: float) -> Driver:
    """``driver`` on the test's clock: its timers that ran out by ``now`` fire."""
    driver.advance(now - driver.now)
    return driver


def test_normal_clients_are_served_under_slow_bodies_of_any_declared_length() -> None:
    # 700 connections at all times declaring a body (4,000,000 or 40,000 bytes, or chunked)
    # and sending 1 byte, each replaced as soon as it is cut. A body holds the budget by
    # what has arrived, so 4 MB declared buys nothing; where the slow ones fill the
    # receiving count or the budget, the one furthest behind the minimum rate is cut to
    # make room. Every normal prediction, of 20 bytes or of 1 MiB, is served 200, and every
    # slow body is gone by its grace.
    for declared in (b"content-length: 4000000", b"content-length: 40000",
                     b"transfer-encoding: chunked"):  # fmt: skip
        door = Door(ServingConfig(max_receiving=512, body_grace_s=2.0, body_timeout_s=30.0))
        chunked = declared.startswith(b"transfer")
        head = b"POST %s HTTP/1.1\r\nhost: t\r\n%s\r\n\r\n" % (PREDICT.encode(), declared)
        head += b"1\r\n{\r\n" if chunked else b"{"
        slow: list[Driver] = []
        served: list[int] = []
        large = b"[" + b"1," * (512 * 1024 - 1) + b"1]"
        reasons: list[str] = []
        door.admission.on_refused = reasons.append
        for tick in range(30):
            now = tick * 0.1
            slow = [_at(d, now) for d in slow if not d.closed]
            while len(slow) < 700:
                slow.append(_at(Driver(door), now))
                slow[-1].send(head)
            if tick == 15:  # 1.5 s: before the first slow bodies' grace
                early = list(reasons)
            if tick == 0:
                continue  # every slow body sent its byte this instant: none is behind yet
            normal = _at(Driver(door), now)
            normal.send(_plain("POST", PREDICT, large if tick % 5 == 0 else b'{"instances": [1]}'))
            # Its body held beside the slow ones', within the limits.
            assert door.admission.receiving <= 512
            assert door.admission.body_bytes <= door.limits.body_budget_bytes
            normal.settle()
            served += normal.statuses()
            normal.leave()
        assert served == [200] * 29, served
        # 4 MB declared: the slow bodies fit in the room and wait for their grace; else
        # some are cut before it, as others need room.
        assert ("read_timeout" in early) is not declared.endswith(b"4000000"), early
        for driver in slow:
            _at(driver, 8.0)
        assert all(d.closed and d.statuses() in ([408], [503]) for d in slow)
        _idle(door)


def test_a_body_sent_at_the_minimum_rate_is_read_whatever_it_takes_and_its_upload_not_counted() -> (
    None
):
    driver = Driver(min_body_rate_bytes_s=100.0, body_grace_s=1.0, body_timeout_s=30.0)
    body = b"[" + b"1," * 1000 + b"1]"
    driver.send(_plain("POST", PREDICT, body)[: -len(body)] + body[:200])
    for i in range(200, len(body), 200):  # 200 bytes a second: twice the minimum rate
        driver.send(body[i : i + 200], after=1.0)
    assert [r[2] for r in driver.received] == [body]
    # The upload's 10 s are the client's: the deadline counts from the body's end.
    assert driver.pending[0].arrived >= driver.now - 1e-6
    driver.settle()
    assert driver.statuses() == [200]


def test_a_trailer_flood_is_refused_within_the_framing_bound() -> None:
    driver = Driver()
    driver.send(_chunked(PREDICT, b"{}", 1, False)[:-2])  # up to the last chunk's line
    sent = 0
    while not driver.closed:
        driver.send(b"x-pad: " + b"a" * 1000 + b"\r\n")
        sent += 1009
        assert sent < HEAD_LIMIT + CHUNK_FRAMING + 2000, "trailers were read past the bound"
    assert driver.statuses() == [400]
    _idle(driver.door)


@pytest.mark.parametrize("size", [1, 6])
def test_tiny_chunks_are_refused_by_their_count_whatever_their_framing(size: int) -> None:
    # 1-byte chunks carry 4 bytes of framing more than their data, 6-byte ones less (within
    # CHUNK_FRAMING however many): each costs a parse, so past CHUNKS_FREE a body must
    # average CHUNK_MIN_AVG bytes a chunk. 3.9 MiB in 6-byte chunks cost 2.4 CPU-s.
    driver = Driver()
    driver.send(
        b"POST %s HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" % PREDICT.encode()
    )
    chunks = 0
    while not driver.closed and chunks < 700_000:
        driver.send((b"%x\r\n%s\r\n" % (size, b"a" * size)) * 1000)
        chunks += 1000
    assert chunks <= CHUNKS_FREE + 1000
    assert driver.statuses() == [400]
    assert b"send chunks of at least %d bytes, or a Content-Length" % CHUNK_MIN_AVG in bytes(
        driver.written
    )
    _idle(driver.door)


@settings(max_examples=25)
@given(
    sizes=st.lists(st.integers(1, 2 * CHUNK_MIN_AVG - 1), min_size=1, max_size=60),
    small=st.integers(0, CHUNKS_FREE),
)
def test_a_body_whose_chunks_average_the_minimum_is_read_whole(
    sizes: list[int], small: int
) -> None:
    # Up to CHUNKS_FREE chunks of a byte, then chunks whose sizes average CHUNK_MIN_AVG
    # or more (each small one paired with one large enough to make up for it).
    sizes = [1] * small + [s for size in sizes for s in (size, 2 * CHUNK_MIN_AVG - size)]
    data = b"".join(b"%x\r\n%s\r\n" % (n, b"7" * n) for n in sizes) + b"0\r\n\r\n"
    driver = Driver(body_limit_bytes=2**20)
    head = b"POST %s HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
    driver.send(head % PREDICT.encode() + data)
    assert [len(r[2]) for r in driver.received] == [sum(sizes)]
    driver.settle()
    assert driver.statuses() == [200]
    _idle(driver.door)


def test_every_spelling_of_a_prediction_path_is_admitted_alike() -> None:
    for path in (PREDICT, "/v1/models/income%3Apredict", "/v1/models/income%3apredict?x=1"):
        door = Door(ServingConfig(max_in_flight=2, retry_after_s=1))
        door.admission.in_flight = 2
        driver = Driver(door)
        driver.send(_plain("POST", path, b"{}"))
        assert driver.statuses() == [503], path
        assert driver.wait_until is not None and driver.paused  # parked: not read for 1 s
        door.admission.in_flight = 0
        driver.advance(1.0)
        driver.send(_plain("POST", path, b"{}"))
        assert driver.pending and driver.pending[0].route is not None, path
        driver.settle()
        assert driver.statuses() == [503, 200]


def test_a_chunk_past_the_body_limit_is_refused_at_its_size_line() -> None:
    driver = Driver(body_limit_bytes=1024)
    driver.send(
        b"POST %s HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" % PREDICT.encode()
    )
    driver.send(b"ffffffffffffffff\r\n")
    assert driver.closed and driver.statuses() == [413]
    _idle(driver.door)


def test_bodies_in_flight_stay_within_the_byte_budget() -> None:
    # 4 MiB bodies against a 10 MiB budget: two are read, the third is refused from its
    # headers (503, before a byte of it is held), and is admitted once one is answered.
    door = Door(ServingConfig(body_budget_bytes=10 * 1024 * 1024, body_limit_bytes=4 * 1024 * 1024))
    body = b"1" * (4 * 1024 * 1024)
    clients = [Driver(door) for _ in range(3)]
    for client in clients:
        client.send(_plain("POST", PREDICT, body))
    assert [c.statuses() for c in clients] == [[], [], [503]]
    assert door.admission.body_bytes == 2 * len(body)
    clients[0].answer()
    late = Driver(door)
    late.send(_plain("POST", PREDICT, body))
    assert late.pending and door.admission.body_bytes == 2 * len(body)
    for client in (clients[1], late):
        client.settle()
        client.leave()
    clients[0].leave()
    clients[2].leave()
    _idle(door)


@settings(max_examples=30)
@given(
    large=st.lists(st.integers(65 * 1024, 700 * 1024), min_size=1, max_size=8),
    small=st.lists(st.integers(1, 64 * 1024), min_size=1, max_size=8),
    chunked=st.booleans(),
)
def test_small_bodies_are_admitted_while_large_ones_hold_the_rest_of_the_budget(
    large: list[int], small: list[int], chunked: bool
) -> None:
    # 1 MiB, a quarter for small bodies. Large bodies (declared, or chunked ones once past
    # 64 KiB) arrive whole and wait in the model, as many as their part takes, the others
    # refused 503; then small ones, up to the reserve, are each admitted. (When large
    # bodies could fill the whole budget, a single-row request got one 200 in 18 s.)
    budget = 2**20
    door = Door(ServingConfig(body_budget_bytes=budget, small_body_share=0.25))
    held = []
    for size in large:
        client = Driver(door)
        body = b"1" * size
        client.send(_chunked(PREDICT, body, 4, False) if chunked else _plain("POST", PREDICT, body))
        assert client.pending or client.statuses() == [503]
        assert door.admission.large_bytes <= 3 * budget // 4 or len(client.pending) == 1
        held.append(client)
    assert door.admission.large_bytes <= 3 * budget // 4 or len(large) == 1
    room = budget // 4
    for size in small:
        if size > room:
            break
        room -= size
        client = Driver(door)
        client.send(_plain("POST", PREDICT, b"2" * size))
        assert [len(r[2]) for r in client.received] == [size]
        held.append(client)
    for client in held:
        client.settle()
        client.leave()
    _idle(door)
    assert door.admission.large_bytes == 0


def test_a_body_that_passes_the_budget_while_arriving_is_read_unkept_and_refused() -> None:
    # Two 800 KiB bodies against a 1 MiB budget: each fits at its headers, holding what
    # has come; the one whose next bytes would pass the budget is read to its end without
    # being kept, answered 503 on a connection that stays open, and served when retried.
    budget = 1024 * 1024
    door = Door(
        ServingConfig(body_budget_bytes=budget, body_limit_bytes=4 * budget, small_body_share=0.0)
    )
    body = b"1" * (800 * 1024)
    request = _plain("POST", PREDICT, body)
    start, cut = len(request) - len(body) + 1, len(request) - len(body) // 2
    first, second = Driver(door), Driver(door)
    for client in (first, second):
        client.send(request[:start])
    for client in (first, second):
        client.send(request[start:cut])
    assert door.admission.body_bytes <= budget and door.admission.receiving == 2
    first.send(request[cut:])
    assert door.admission.body_bytes <= budget and door.admission.receiving == 1
    assert first.statuses() == [503] and not first.closed and not first.pending
    second.send(request[cut:])
    assert [r[2] for r in second.received] == [body]
    second.settle()
    first.send(request, after=1.0)
    first.settle()
    assert first.statuses() == [503, 200] and second.statuses() == [200]
    assert [r[2] for r in first.received] == [body]
    _idle(door)


def test_malformed_heads_are_refused_with_their_status_and_nothing_more_is_read() -> None:
    cases = {
        b"GET / HTTP/1.1\r\nhost: a b\r\n\r\n": 400,
        b"GET / HTTP/1.1\r\n\r\n": 400,
        b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n"
        b"\r\n": 400,
        b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: gzip\r\n\r\n": 501,
        b"GET / HTTP/1.1\r\nhost: t\r\nx: " + b"a" * HEAD_LIMIT + b"\r\n\r\n": 431,
    }
    for wire, status in cases.items():
        driver = Driver()
        driver.send(wire + _plain("GET", "/v2/health/live"))
        assert driver.closed and driver.statuses() == [status], wire[:60]
        assert not driver.pending


def test_an_upgrade_request_is_answered_with_its_body_then_the_connection_closes() -> None:
    body = b'{"instances": [1]}'
    driver = Driver()
    driver.send(_plain("POST", PREDICT, body, extra="connection: upgrade\r\nupgrade: h2c\r\n"))
    assert [r[2] for r in driver.received] == [body]
    driver.answer()
    assert driver.closed and driver.statuses() == [200]


def test_a_client_that_half_closes_is_answered_what_it_sent_whole_then_closed() -> None:
    one = Driver()
    one.send(_plain("POST", PREDICT, b"{}"))
    one.eof()
    assert not one.closed and not one.core.keeps(one.pending[0])
    one.answer()
    assert one.closed and one.statuses() == [200]
    assert b"connection: close\r\n" in one.written  # its answer says it is the last
    # A body cut short by the client's last byte never completes: closed unanswered, a
    # prediction counted as its client's (499).
    cut = Driver()
    cut.send(_plain("POST", PREDICT, b"{}" * 50)[:-10])
    cut.eof()
    assert cut.closed and cut.statuses() == [] and len(cut.lost) == 1
    # Refused 503 and parked, the request held behind is still answered after the wait.
    door = Door(ServingConfig(max_in_flight=1, retry_after_s=1))
    door.admission.in_flight = 1
    parked = Driver(door)
    parked.send(_plain("POST", PREDICT, b"{}") + _plain("GET", "/v2/health/live"))
    parked.eof()
    assert not parked.closed and parked.statuses() == [503]
    parked.settle()
    assert parked.closed and parked.statuses() == [503, 200]
    # Refused with nothing behind: closed at once, not kept parked for retry_after_s.
    refused = Driver(door)
    refused.send(_plain("POST", PREDICT, b"{}"))
    refused.eof()
    assert refused.closed and refused.statuses() == [503]
    door.admission.in_flight = 0
    for driver in (one, cut, parked):
        _idle(driver.door)


def test_an_idle_connection_closes_quietly_and_a_silent_one_is_refused_408() -> None:
    idle = Driver(keep_alive_s=5.0)
    idle.send(_plain("GET", "/v2/health/live"))
    idle.settle()
    idle.advance(5.1)
    assert idle.closed and idle.statuses() == [200]
    silent = Driver(header_timeout_s=10.0)
    silent.send(b"GET / HTTP/1.1\r\n")
    silent.advance(10.1)
    assert silent.closed and silent.statuses() == [408]


@settings(max_examples=60)
@given(
    version=st.sampled_from(["1.0", "1.1"]),
    client_keeps=st.booleans(),
    status=st.sampled_from([200, 204, 304, 404]),
    sized=st.booleans(),
    app_closes=st.booleans(),
    head=st.booleans(),
    shutdown=st.booleans(),
)
def test_one_decision_frames_each_answer_and_keeps_or_closes_the_connection(
    version: str,
    client_keeps: bool,
    status: int,
    sized: bool,
    app_closes: bool,
    head: bool,
    shutdown: bool,
) -> None:
    connection = "keep-alive" if client_keeps else "close"
    method = "HEAD" if head else "GET"
    driver = Driver()
    driver.send(
        f"{method} /metrics HTTP/{version}\r\nhost: t\r\nconnection: {connection}\r\n\r\n".encode()
    )
    req = driver.pending.pop(0)
    if shutdown:
        driver.act(driver.core.shutdown())
    headers = [(b"content-length", b"5")] if sized else []
    headers += [(b"connection", b"close" if app_closes else b"keep-alive")]
    framed = driver.core.head(req, status, headers, b"")
    bodied = status not in (204, 304) and not head
    chunked = bodied and not sized and version == "1.1"
    keep = client_keeps and not app_closes and not shutdown and (sized or not bodied or chunked)
    lines = framed.split(b"\r\n")
    assert (b"transfer-encoding: chunked" in lines) == chunked
    assert (b"connection: close" in lines) == (not keep)
    assert b"connection: keep-alive" not in lines  # the app's own is never written
    body = driver.core.body(req, b"hello", False)
    assert body == (b"" if head else b"5\r\nhello\r\n0\r\n\r\n" if chunked else b"hello")
    driver.act(driver.core.answered(req, driver.now))
    assert driver.closed == (not keep)
