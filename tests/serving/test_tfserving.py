"""TF Serving's REST API against a real server: formats, status, metadata, the input contract."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from mooring.serving._loaded import load_served_model
from mooring.serving._protocols import tfserving
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row

PREDICT = f"/v1/models/{NAME}:predict"


def post(server: ServerThread, path: str, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, content=orjson.dumps(body), timeout=30)


def test_row_format_matches_the_signature_in_process(
    server: ServerThread, model_dirs: dict[str, Path]
) -> None:
    rows = [row(), row(age=70.0, hours=None, workclass=None, sex="Female")]  # type: ignore[arg-type]
    res = post(server, PREDICT, {"instances": rows})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model_version"] == "1" and res.headers["X-Model-Version"] == "1"
    assert res.headers["X-Request-Id"]
    model = load_served_model(NAME, 1, model_dirs["a"])
    expected = model.predict(
        {
            "age": np.array([39.0, 70.0], np.float32),
            "hours-per-week": np.array([40.0, math.nan], np.float32),
            "workclass": np.array(["Private", ""], object),
            "sex": np.array(["Male", "Female"], object),
        }
    )
    got = np.array([p["probabilities"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected["probabilities"], rtol=1e-6)
    assert [p["classes"] for p in body["predictions"]] == expected["classes"].tolist()
    assert [p["class_ids"] for p in body["predictions"]] == expected["class_ids"].tolist()


def test_columnar_format_answers_with_outputs(server: ServerThread) -> None:
    inputs = {
        "age": [39, 50.5],
        "hours-per-week": [40, 10],
        "workclass": ["Private", "x"],
        "sex": ["", None],
    }
    res = post(server, PREDICT, {"inputs": inputs, "signature_name": "serving_default"})
    assert res.status_code == 200, res.text
    outputs = res.json()["outputs"]
    assert set(outputs) == {"probabilities", "class_ids", "classes"}
    assert np.array(outputs["probabilities"]).shape == (2, 2)


def test_versions_and_labels(server: ServerThread) -> None:
    ok = post(server, f"/v1/models/{NAME}/versions/1:predict", {"instances": [row()]})
    assert ok.status_code == 200 and ok.json()["model_version"] == "1"
    label = post(server, f"/v1/models/{NAME}/labels/production:predict", {"instances": [row()]})
    assert label.status_code == 200 and label.headers["X-Model-Version"] == "1"
    missing = post(server, f"/v1/models/{NAME}/versions/7:predict", {"instances": [row()]})
    assert missing.status_code == 404 and "version 7" in missing.json()["error"]
    no_canary = post(server, f"/v1/models/{NAME}/labels/canary:predict", {"instances": [row()]})
    assert no_canary.status_code == 404 and "canary" in no_canary.json()["error"]
    unknown = post(server, "/v1/models/nope:predict", {"instances": [row()]})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_status_and_metadata(server: ServerThread) -> None:
    status = httpx.get(f"{server.url}/v1/models/{NAME}").json()
    assert status["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    meta = httpx.get(f"{server.url}/v1/models/{NAME}/metadata").json()
    assert meta["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["age"]["dtype"] == "DT_FLOAT"
    assert sig["inputs"]["sex"]["dtype"] == "DT_STRING"
    assert sig["outputs"]["class_ids"]["dtype"] == "DT_INT64"
    assert sig["inputs"]["age"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]


BAD: list[tuple[str, Any, str]] = [
    ("missing field", {"instances": [{"age": 1, "hours-per-week": 2, "workclass": "x"}]}, "'sex'"),
    ("unexpected field", {"instances": [{**row(), "zip": "1"}]}, "'zip'"),
    ("string for a number", {"instances": [{**row(), "age": "old"}]}, "instances.age[0]"),
    (
        "boolean for a number",
        {"instances": [{**row(), "hours-per-week": True}]},
        "instances.hours-per-week[0]",
    ),
    ("number for a string", {"instances": [{**row(), "sex": 1}]}, "instances.sex[0]"),
    ("nested value", {"instances": [{**row(), "age": [1, 2]}]}, "rank 1"),
    ("float32 overflow", {"instances": [{**row(), "age": 1e39}]}, "instances.age[0]"),
    ("empty batch", {"instances": []}, "empty batch"),
    (
        "empty columns",
        {"inputs": {"age": [], "hours-per-week": [], "workclass": [], "sex": []}},
        "empty",
    ),
    ("both formats", {"instances": [row()], "inputs": {}}, "exactly one"),
    ("neither format", {"signature_name": "serving_default"}, "exactly one"),
    ("unknown key", {"instances": [row()], "foo": 1}, "'foo'"),
    ("wrong signature", {"instances": [row()], "signature_name": "other"}, "'other'"),
    (
        "scalar column",
        {"inputs": {"age": 1, "hours-per-week": [1], "workclass": ["a"], "sex": ["b"]}},
        "inputs.age",
    ),
    (
        "inconsistent lengths",
        {
            "inputs": {
                "age": [1, 2],
                "hours-per-week": [1],
                "workclass": ["a", "b"],
                "sex": ["b", "c"],
            }
        },
        "inputs.hours-per-week",
    ),
    ("rows not objects", {"instances": [[1, 2, 3, 4]]}, "instances[0]"),
    ("body not an object", [1, 2], "JSON object"),
]


@pytest.mark.parametrize(("case", "body", "names"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_are_400_naming_the_field(
    server: ServerThread, case: str, body: Any, names: str
) -> None:
    res = post(server, PREDICT, body)
    assert res.status_code == 400, res.text
    assert names in res.json()["error"]


def test_nan_means_missing_infinity_and_broken_json_are_400(server: ServerThread) -> None:
    nan = b'{"instances": [{"age": NaN, "hours-per-week": 1, "workclass": "", "sex": ""}]}'
    assert httpx.post(server.url + PREDICT, content=nan).status_code == 200
    inf = b'{"instances": [{"age": Infinity, "hours-per-week": 1, "workclass": "", "sex": ""}]}'
    res = httpx.post(server.url + PREDICT, content=inf)
    assert res.status_code == 400 and "Infinity" in res.json()["error"]
    res = httpx.post(server.url + PREDICT, content=b"\xff\xfe")
    assert res.status_code == 400 and "not valid JSON" in res.json()["error"]
    res = httpx.post(server.url + PREDICT, content=b"[" * 100_000)
    assert res.status_code in (400, 413)


def test_oversized_body_is_413(server: ServerThread) -> None:
    big = {"instances": [row() for _ in range(2000)]}
    res = post(server, PREDICT, big)
    assert res.status_code == 413 and "body_limit_bytes" in res.json()["error"]


def _in_parts(body: bytes, size: int) -> Iterator[bytes]:
    """``body`` sent chunked (no Content-Length), ``size`` bytes a part."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_answers_as_a_whole_one_and_is_held_to_the_limit(
    server: ServerThread,
) -> None:
    body = orjson.dumps({"instances": [row(age=float(20 + i)) for i in range(5)]})
    whole = httpx.post(server.url + PREDICT, content=body, timeout=30)
    parts = httpx.post(server.url + PREDICT, content=_in_parts(body, 37), timeout=30)
    assert "content-length" not in parts.request.headers  # really sent in parts
    assert parts.status_code == whole.status_code == 200
    assert parts.json() == whole.json()
    # Past the limit with no length declared: refused as the parts arrive, not a 500.
    big = orjson.dumps({"instances": [row() for _ in range(2000)]})
    res = httpx.post(server.url + PREDICT, content=_in_parts(big, 4096), timeout=30)
    assert res.status_code == 413 and "above the limit of" in res.json()["error"]


def test_an_answer_carries_each_of_its_headers_once(server: ServerThread) -> None:
    res = httpx.post(
        server.url + PREDICT,
        content=orjson.dumps({"instances": [row()]}),
        headers=[("X-Request-Id", "first-1"), ("X-Request-Id", "second-2")],
        timeout=30,
    )
    assert res.status_code == 200
    names = [name.lower() for name, _ in res.headers.multi_items()]
    names_once = ("x-request-id", "x-client-request-id", "x-model-version", "content-length")
    for name in (*names_once, "content-type"):
        assert names.count(name) == 1, res.headers
    assert res.headers["x-client-request-id"] == "first-1"  # the first one given, as before
    assert len(res.headers["x-request-id"]) == 32  # the server's own
    assert res.headers["x-model-version"] == "1"
    assert int(res.headers["content-length"]) == len(res.content)


def test_metrics_are_exposed(server: ServerThread) -> None:
    post(server, PREDICT, {"instances": [row()]})
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        'mooring_requests_total{model="income",protocol="tfserving",status="200",version="1"}'
        in text
    )
    assert 'mooring_request_latency_seconds_bucket{le="0.0001"' in text
    assert "mooring_batch_size_rows_bucket" in text
    assert "mooring_queue_depth" in text
    assert "mooring_model_load_failures_total" in text or "mooring_model_load_failures" in text


def test_server_metadata_and_request_ids(server: ServerThread) -> None:
    assert server.client.get("/v2").json()["name"] == "mooring"
    body = orjson.dumps({"instances": [row()]})
    res = server.client.post(PREDICT, content=body, headers={"X-Request-Id": "abc-1"})
    # The server's own id, always; the client's kept beside it.
    assert len(res.headers["X-Request-Id"]) == 32 and res.headers["X-Client-Request-Id"] == "abc-1"
    res = server.client.post(PREDICT, content=body, headers={"X-Request-Id": "x" * 200})
    assert len(res.headers["X-Request-Id"]) == 32  # not a plain token: ignored, not echoed
    assert "X-Client-Request-Id" not in res.headers
    assert server.client.get("/v1/models/income/nothing").status_code == 404
    assert server.client.post(f"/v1/models/{NAME}").status_code == 405
    assert server.client.post(f"/v1/models/{NAME}:classify", content=body).status_code == 400


def test_unknown_paths_and_methods_answer_json(server: ServerThread) -> None:
    res = server.client.get("/nothing/here")
    assert res.status_code == 404 and "/nothing/here" in res.json()["error"]
    res = server.client.post("/metrics")
    assert res.status_code == 405 and "error" in res.json()


def test_a_key_given_twice_is_a_400_naming_it(server: ServerThread) -> None:
    one = orjson.dumps({"instances": [row()]})
    twice = one.replace(b'"age":', b'"age":17,"age":', 1)
    res = httpx.post(server.url + PREDICT, content=twice)
    assert res.status_code == 400 and "'age' appears twice" in res.json()["error"]
    top = b'{"instances": [], ' + one[1:]
    res = httpx.post(server.url + PREDICT, content=top)
    assert res.status_code == 400 and "'instances' appears twice" in res.json()["error"]
    # A colon inside a string, or escaped, is not a member: no false alarm.
    escaped = one.replace(b'"Private"', b'"Pri\\u003avate"').replace(b'"Male"', b'"a:b"')
    assert httpx.post(server.url + PREDICT, content=escaped).status_code == 200


def test_b64_strings_are_tf_servings_binary_encoding(server: ServerThread) -> None:
    plain = row()
    encoded = {
        **plain,
        "workclass": {"b64": base64.b64encode(plain["workclass"].encode()).decode()},
    }
    want = post(server, PREDICT, {"instances": [plain]}).json()["predictions"]
    assert post(server, PREDICT, {"instances": [encoded]}).json()["predictions"] == want
    columns = {k: [v] for k, v in encoded.items()}
    assert post(server, PREDICT, {"inputs": columns}).json()["outputs"] == {
        k: [v] for k, v in want[0].items()
    }
    for bad, why in (("!!", "not base64"), (base64.b64encode(b"\xff").decode(), "not UTF-8")):
        res = post(server, PREDICT, {"instances": [{**plain, "sex": {"b64": bad}}]})
        assert res.status_code == 400 and why in res.json()["error"], res.text
        assert "sex[0]" in res.json()["error"]


def test_string_outputs_named_bytes_come_back_as_b64() -> None:
    outputs = {
        "image_bytes": np.array([b"\x00\xff", b"ok"], dtype=object),
        "classes": np.array(["a", "b"]),
        "scores": np.array([0.5, 0.25]),
    }
    body = tfserving.format_predict(outputs, rows=2, row_format=True, version=3)
    assert body["predictions"][0] == {"image_bytes": {"b64": "AP8="}, "classes": "a", "scores": 0.5}
    assert body["predictions"][1]["image_bytes"] == {"b64": "b2s="}
