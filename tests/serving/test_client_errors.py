"""Client input is a 4xx naming the field, never a 5xx, and never counts as a server fault.

The request shapes here each made an earlier server answer 500, which the monitor
counted against a healthy version: a v2 ``datatype`` that is a list or an object, a
numeric column holding a float next to an integer beyond any double, a client
that disconnects before its body arrives, and a version or a length written with digits
that are not ASCII ("³" passes ``str.isdigit()``; ``int()`` refuses it).
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest

from mooring.formats._metrics import REQUESTS, read_samples, total
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import wait_until

PREDICT = f"/v1/models/{NAME}:predict"
INFER = f"/v2/models/{NAME}/infer"
HUGE = 10**310  # an integer no double can hold


def _tensors(**override: dict[str, Any]) -> list[dict[str, Any]]:
    tensors = {
        "age": {"name": "age", "shape": [1], "datatype": "FP32", "data": [39.0]},
        "hours-per-week": {
            "name": "hours-per-week",
            "shape": [1],
            "datatype": "FP32",
            "data": [40],
        },
        "workclass": {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": ["Private"]},
        "sex": {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["Male"]},
    }
    for name, changes in override.items():
        tensors[name.replace("_", "-")] = {**tensors[name.replace("_", "-")], **changes}
    return list(tensors.values())


def _post(server: ServerThread, path: str, body: Any) -> Any:
    # json, not orjson: it writes integers of any size, as an attacker's client would.
    return server.client.post(
        path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def _status_counts(server: ServerThread) -> dict[str, float]:
    text = server.client.get("/metrics").text
    counts: dict[str, float] = {}
    for name, labels, value in read_samples(text):
        if name == total(REQUESTS) and labels.get("model") == NAME:
            counts[labels["status"]] = counts.get(labels["status"], 0.0) + value
    return counts


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": _tensors(age={"datatype": ["FP32"]})}, r"inputs\.age: datatype \['FP32'\]"),
        ({"inputs": _tensors(age={"datatype": {"x": 1}})}, r"inputs\.age: datatype \{'x': 1\}"),
        ({"inputs": _tensors(), "outputs": [{"name": ["classes"]}]}, r"outputs\[0\]: unknown"),
    ],
    ids=["datatype-list", "datatype-object", "output-name-list"],
)
def test_v2_bodies_that_were_500s_are_400s_naming_the_field(
    server: ServerThread, body: dict[str, Any], message: str
) -> None:
    res = _post(server, INFER, body)
    assert res.status_code == 400, res.text
    assert re.search(message, res.json()["error"]), res.json()["error"]


def test_a_float_next_to_a_huge_integer_is_a_400(server: ServerThread) -> None:
    two = {
        "age": {"shape": [2], "data": [1.5, HUGE]},
        "hours_per_week": {"shape": [2], "data": [40, 41]},
        "workclass": {"shape": [2], "data": ["Private", "Private"]},
        "sex": {"shape": [2], "data": ["Male", "Female"]},
    }
    res = _post(server, INFER, {"inputs": _tensors(**two)})
    assert res.status_code == 400, res.text
    assert "inputs.age[1]" in res.json()["error"]
    res = _post(server, PREDICT, {"instances": [row(), {**row(), "age": HUGE}, row(age=1.5)]})
    assert res.status_code == 400, res.text
    assert "instances.age[1]" in res.json()["error"]
    res = _post(server, PREDICT, {"inputs": {**{k: [v] for k, v in row().items()}, "age": [HUGE]}})
    assert res.status_code == 400 and "inputs.age[0]" in res.json()["error"]


def test_an_unknown_version_is_404_and_a_wrong_method_is_405_with_allow(
    server: ServerThread,
) -> None:
    assert server.client.get(f"/v2/models/{NAME}/versions/1/ready").status_code == 200
    missing = server.client.get(f"/v2/models/{NAME}/versions/7/ready")
    assert missing.status_code == 404 and "no version 7" in missing.json()["error"]
    wrong = server.client.get(INFER)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    wrong = server.client.get(PREDICT)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    wrong = server.client.post(f"/v1/models/{NAME}/metadata", content=b"{}")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    # A method no route takes: the router's 405 keeps its Allow header too.
    for path in (PREDICT, INFER):
        wrong = server.client.put(path, content=b"{}")
        assert wrong.status_code == 405 and "POST" in wrong.headers["allow"], wrong.headers
        assert wrong.json()["error"].startswith(f"PUT {path}: ")


def test_head_is_answered_wherever_get_is_without_a_body(server: ServerThread) -> None:
    """RFC 9110 §9.3.2: HEAD is GET without the body, on every route GET takes."""
    paths = [f"/v1/models/{NAME}", f"/v1/models/{NAME}/metadata", f"/v1/models/{NAME}/versions/1"]
    paths += [f"/v2/models/{NAME}", f"/v2/models/{NAME}/ready", "/v2/health/live", "/v2"]
    paths += ["/v2/health/ready", "/healthz"]
    for path in paths:
        get, head = server.client.get(path), server.client.head(path)
        assert get.status_code == head.status_code == 200, (path, head.status_code, head.text)
        assert head.content == b"", path
        assert head.headers["content-length"] == str(len(get.content)), path
    head = server.client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert server.client.head(PREDICT).status_code == 405


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v2/models/{NAME}/versions/%C2%B3/ready"),
        ("GET", f"/v2/models/{NAME}/versions/%C2%B3"),
        ("POST", f"/v2/models/{NAME}/versions/%C2%B3/infer"),
        ("GET", f"/v1/models/{NAME}/versions/%C2%B3"),
        ("GET", f"/v1/models/{NAME}/versions/%C2%B3/metadata"),
        ("POST", f"/v1/models/{NAME}/versions/%C2%B3:predict"),
    ],
)
def test_a_version_of_digits_that_are_not_ascii_is_a_400(
    server: ServerThread, method: str, path: str
) -> None:
    res = server.client.request(method, path, content=b"{}")
    assert res.status_code == 400, res.text
    assert "version '³' in the URL is not a positive integer" in res.json()["error"]


@pytest.mark.parametrize("length", ["³", "9" * 5000, "-1", "12x"])
def test_an_inference_header_length_that_is_not_a_number_is_a_400(
    server: ServerThread, length: str
) -> None:
    res = server.client.post(
        INFER,
        content=json.dumps({"inputs": _tensors()}).encode(),
        headers={"Inference-Header-Content-Length": length.encode("latin-1")},
    )
    assert res.status_code == 400, res.text
    assert "Inference-Header-Content-Length" in res.json()["error"]


def test_client_errors_and_disconnects_never_count_as_server_faults(
    server: ServerThread,
) -> None:
    before = _status_counts(server)
    for body in (
        {"inputs": _tensors(age={"datatype": ["FP32"]})},
        {"inputs": _tensors(), "outputs": [{"name": {}}]},
        {"instances": [{**row(), "age": HUGE}, row(age=1.5)]},
    ):
        path = PREDICT if "instances" in body else INFER
        assert _post(server, path, body).status_code == 400
    # A client that sends half its body and leaves.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b'{"instances": [{"age": 39'
        )
    res = _post(server, PREDICT, {"instances": [row()]})
    assert res.status_code == 200, res.text
    after = _status_counts(server)
    new = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    assert not any(k.startswith("5") and v for k, v in new.items()), new
    assert new.get("400") == 3 and new.get("200") == 1
    # The disconnect is counted as 499 once the server has noticed it.
    wait_until(
        lambda: _status_counts(server).get("499", 0.0) - before.get("499", 0.0) >= 1,
        "the disconnect to be counted 499",
        seen=lambda: _status_counts(server),
    )
    assert _status_counts(server).get("499", 0.0) - before.get("499", 0.0) == 1


def test_fresh_request_ids_are_random_not_a_counter(server: ServerThread) -> None:
    ids = [server.client.get("/v2/health/live").headers["x-request-id"] for _ in range(3)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # 128 random bits: two ids in a row share no long prefix, as a counter's would.
    assert len({i[:20] for i in ids}) == 3
    # A client's own id is kept beside the server's, never adopted as the request's id.
    kept = server.client.get("/v2/health/live", headers={"X-Request-Id": "client-42"})
    assert kept.headers["x-client-request-id"] == "client-42"
    assert len(kept.headers["x-request-id"]) == 32 and kept.headers["x-request-id"] not in ids
    # Not a plain token: ignored, not echoed.
    odd = server.client.get("/v2/health/live", headers={"X-Request-Id": "x" * 200})
    assert "x-client-request-id" not in odd.headers and len(odd.headers["x-request-id"]) == 32


def test_a_boolean_reaches_a_text_input_as_the_text_booleans_are_trained_as(
    server: ServerThread,
) -> None:
    # JSON true and OIP BOOL are "true", the text a boolean column's contract holds.
    as_text = _post(server, INFER, {"inputs": _tensors(sex={"data": ["true"]})})
    as_bool = _post(server, INFER, {"inputs": _tensors(sex={"datatype": "BOOL", "data": [True]})})
    assert as_text.status_code == as_bool.status_code == 200, as_bool.text
    assert as_bool.json()["outputs"] == as_text.json()["outputs"]
    text = _post(server, PREDICT, {"instances": [{**row(), "sex": "false"}]})
    json_bool = _post(server, PREDICT, {"instances": [{**row(), "sex": False}]})
    assert json_bool.status_code == 200, json_bool.text
    assert json_bool.json()["predictions"] == text.json()["predictions"]
    refused = _post(server, INFER, {"inputs": _tensors(sex={"datatype": "BOOL", "data": [1]})})
    assert refused.status_code == 400 and "inputs.sex[0]" in refused.json()["error"]
