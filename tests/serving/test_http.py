"""The HTTP plumbing: answers built as raw ASGI heads, bodies read from ASGI's messages.

Each is checked against what Starlette itself does with the same input, since the
serving path replaced Starlette's own helpers with these for speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mooring.formats._predictions import REQUEST_ID_PATTERN
from mooring.serving._errors import PayloadTooLargeError
from mooring.serving._http import (
    JSON,
    Answer,
    add_header,
    client_request_id,
    id_and_key,
    json_response,
    read_body,
    request_id,
)

# Header names as HTTP tokens; values as printable latin-1 text (what a head can carry).
_NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1
).filter(lambda n: n.lower() not in ("content-length", "content-type"))
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _sent(response: Response) -> list[dict[str, Any]]:
    """The ASGI messages ``response`` sends."""
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:  # pragma: no cover - an answer reads nothing
        raise AssertionError("an answer does not read the request")

    asyncio.run(response({"type": "http"}, receive, send))  # type: ignore[arg-type]
    return messages


@settings(max_examples=60, deadline=None)
@given(
    data=_JSON,
    status=st.sampled_from([200, 400, 404, 413, 503]),
    given_headers=st.dictionaries(_NAMES, _VALUES, max_size=3),
    added=st.dictionaries(_NAMES, _VALUES, max_size=3),
)
def test_an_answer_sends_what_starlette_would(
    data: Any, status: int, given_headers: dict[str, str], added: dict[str, str]
) -> None:
    # Names differing only in case would be one header to Starlette and two here; the
    # server never sets such a pair, so the property is stated without them.
    lowered = [n.lower() for n in [*given_headers, *added]]
    assume(len(set(lowered)) == len(lowered))
    body = orjson.dumps(data)
    ours = json_response(data, status, given_headers)
    theirs = Response(body, status_code=status, media_type=JSON, headers=given_headers)
    for name, value in added.items():
        add_header(ours, name, value)
        add_header(theirs, name, value)
    mine, reference = _sent(ours), _sent(theirs)
    assert [m["type"] for m in mine] == ["http.response.start", "http.response.body"]
    assert mine[0]["status"] == reference[0]["status"] == status
    assert sorted(mine[0]["headers"]) == sorted(reference[0]["headers"])
    assert mine[1]["body"] == reference[1]["body"] == body
    # Starlette's header view reads the same list.
    assert ours.headers["content-length"] == str(len(body))
    assert ours.headers["content-type"] == JSON


def test_an_answer_of_another_media_type_and_starlettes_headers_view() -> None:
    answer = Answer(b"\x00\x01", 200, {"Inference-Header-Content-Length": "1"}, "x/y")
    answer.headers["X-Model-Version"] = "3"  # Starlette's way: set, replacing any earlier
    answer.headers["X-Model-Version"] = "4"
    assert sorted(answer.raw_headers) == [
        (b"content-length", b"2"),
        (b"content-type", b"x/y"),
        (b"inference-header-content-length", b"1"),
        (b"x-model-version", b"4"),
    ]


def test_a_header_outside_latin_1_is_refused_as_starlette_does() -> None:
    with pytest.raises(UnicodeEncodeError, match="latin-1"):
        Answer(b"{}", 200, {"X-Note": "snow \u2603"})
    with pytest.raises(UnicodeEncodeError, match="latin-1"):
        Response(b"{}", headers={"X-Note": "snow \u2603"})


def _receive(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _request(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, _receive(messages))


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(st.binary(max_size=64), max_size=6), limit=st.integers(0, 256))
def test_a_body_in_any_parts_reads_as_starlette_reads_it(parts: list[bytes], limit: int) -> None:
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    whole = b"".join(parts)
    if len(whole) > limit:
        with pytest.raises(PayloadTooLargeError, match=f"above the limit of {limit} bytes"):
            asyncio.run(read_body(_receive(messages), [], limit))
        return
    assert asyncio.run(read_body(_receive(messages), [], limit)) == whole
    reference = _request(messages, [])
    assert asyncio.run(reference.body()) == whole


def test_a_declared_length_above_the_limit_is_refused_before_reading() -> None:
    headers = [(b"content-length", b"1000")]  # no message: nothing is read
    with pytest.raises(PayloadTooLargeError, match="the body is 1000 bytes, above the limit"):
        asyncio.run(read_body(_receive([]), headers, 999))


def test_a_client_that_leaves_mid_body_is_a_client_disconnect() -> None:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"instances": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(ClientDisconnect, match=r"^$"):  # Starlette's: no message
        asyncio.run(read_body(_receive(messages), [], 1024))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"x-request-id", b"x-request-key", b"host", b"x-request-ids"]),
            st.binary(max_size=12),
        ),
        max_size=6,
    )
)
def test_the_request_id_and_key_are_read_as_starlettes_headers_read_them(
    raw: list[tuple[bytes, bytes]],
) -> None:
    headers = Headers(raw=raw)
    assert id_and_key(raw) == (headers.get("x-request-id"), headers.get("x-request-key"))


@given(st.one_of(st.none(), _VALUES, st.text(alphabet="abc.:_-19 /", max_size=140)))
def test_a_clients_request_id_is_kept_only_when_a_plain_token(given_id: str | None) -> None:
    kept = client_request_id(given_id)
    plain = given_id is not None and REQUEST_ID_PATTERN.fullmatch(given_id) is not None
    assert kept == (given_id if plain else None)


def test_the_servers_request_ids_are_fresh_and_random() -> None:
    ids = [request_id() for _ in range(600)]  # more than one pool of random bytes
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
