"""The Open Inference Protocol v2, driven by the real tritonclient HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mooring.serving._loaded import load_served_model
from tests._support.server import NAME, ServerThread

COLUMNS = {
    "age": np.array([39.0, 61.0, np.nan], np.float32),
    "hours-per-week": np.array([40.0, 12.5, 60.0], np.float32),
    "workclass": np.array(["Private", "Self-emp", ""], dtype=object),
    "sex": np.array(["Male", "Female", "Female"], dtype=object),
}


@pytest.fixture
def client(server: ServerThread) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield c
    c.close()


def _inputs(binary: bool) -> list[triton.InferInput]:
    out = []
    for name, values in COLUMNS.items():
        datatype = "BYTES" if values.dtype == object else "FP32"
        inp = triton.InferInput(name, [len(values)], datatype)
        inp.set_data_from_numpy(values, binary_data=binary)
        out.append(inp)
    return out


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(NAME)
    assert client.is_model_ready(NAME, "1")
    assert not client.is_model_ready(NAME, "5")
    meta = client.get_model_metadata(NAME)
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    types = {t["name"]: t["datatype"] for t in meta["inputs"]}
    assert types == {"age": "FP32", "hours-per-week": "FP32", "sex": "BYTES", "workclass": "BYTES"}
    assert {t["name"] for t in meta["outputs"]} == {"probabilities", "class_ids", "classes"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_the_signature(
    client: triton.InferenceServerClient, model_dirs: dict[str, Path], binary: bool
) -> None:
    outputs = None
    if not binary:
        outputs = [
            triton.InferRequestedOutput(n, binary_data=False)
            for n in ("probabilities", "class_ids", "classes")
        ]
    result = client.infer(NAME, _inputs(binary), outputs=outputs, request_id="r-1")
    expected = load_served_model(NAME, 1, model_dirs["a"]).predict(COLUMNS)
    probabilities = result.as_numpy("probabilities")
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("class_ids"), expected["class_ids"])
    classes = [c.decode() if isinstance(c, bytes) else c for c in result.as_numpy("classes")]
    assert classes == expected["classes"].tolist()
    response = result.get_response()
    assert response["model_version"] == "1" and response["id"] == "r-1"


def test_infer_with_a_version_and_one_output(client: triton.InferenceServerClient) -> None:
    result = client.infer(
        NAME,
        _inputs(True),
        model_version="1",
        outputs=[triton.InferRequestedOutput("class_ids")],
    )
    assert result.as_numpy("class_ids").shape == (3,)
    assert result.as_numpy("probabilities") is None


def test_client_errors_are_4xx_naming_the_input(client: triton.InferenceServerClient) -> None:
    wrong = triton.InferInput("age", [3], "BYTES")
    wrong.set_data_from_numpy(np.array(["a", "b", "c"], dtype=object))
    rest = [i for i in _inputs(True) if i.name() != "age"]
    with pytest.raises(InferenceServerException, match=r"inputs\.age"):
        client.infer(NAME, [wrong, *rest])
    with pytest.raises(InferenceServerException, match="missing input 'age'"):
        client.infer(NAME, rest)
    with pytest.raises(InferenceServerException, match="not served"):
        client.infer(NAME, _inputs(True), model_version="9")


def test_rank_and_length_rules(server: ServerThread) -> None:
    def tensor(name: str, shape: list[int], data: list[object]) -> dict[str, object]:
        datatype = "BYTES" if name in ("workclass", "sex") else "FP32"
        return {"name": name, "shape": shape, "datatype": datatype, "data": data}

    good = [tensor("age", [1], [1.0]), tensor("hours-per-week", [1], [2.0]),
            tensor("workclass", [1], ["a"]), tensor("sex", [1], ["b"])]  # fmt: skip
    url = f"{server.url}/v2/models/{NAME}/infer"
    assert httpx.post(url, json={"inputs": good}).status_code == 200
    ranked = [tensor("age", [1, 1], [1.0]), *good[1:]]
    res = httpx.post(url, json={"inputs": ranked})
    assert res.status_code == 400 and "inputs.age" in res.json()["error"]
    longer = [tensor("age", [2], [1.0, 2.0]), *good[1:]]
    res = httpx.post(url, json={"inputs": longer})
    assert res.status_code == 400 and "same number of rows" in res.json()["error"]
    res = httpx.post(url, json={"inputs": [*good, tensor("zip", [1], [1.0])]})
    assert res.status_code == 400 and "'zip'" in res.json()["error"]


def test_the_v2_url_grammar_lives_in_the_protocol_module() -> None:
    from mooring.errors import InvalidRequestError, NotFoundError
    from mooring.serving._protocols import v2 as protocol

    assert protocol.parse_path("models/income/versions/3/infer", "POST") == protocol.Endpoint(
        "infer", "income", 3
    )
    assert protocol.parse_path("models/income/ready", "GET").kind == "model_ready"
    assert protocol.parse_path("models/income", "GET").kind == "model"
    assert protocol.parse_path("models/income/infer", "GET").kind == "unknown"
    assert protocol.parse_path("health/ready", "GET").kind == "ready"
    assert protocol.parse_path("", "GET").kind == "server"
    with pytest.raises(InvalidRequestError, match=r"version '0x1' in the URL is not a positive"):
        protocol.parse_path("models/income/versions/0x1/infer", "POST")
    with pytest.raises(NotFoundError, match=r"no such endpoint /v2/nothing/here"):
        protocol.parse_path("nothing/here", "GET")
