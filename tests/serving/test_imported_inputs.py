"""A model built elsewhere, served as ``serve --model-dir`` serves it: its inputs under the
names its author gave them (upper case too), and a missing value refused where the model
would read NaN as a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from mooring.formats._model import load_saved_model
from mooring.serving import DirectorySource, build_app
from mooring.training._import import import_model
from tests._support.byom import CASED_ROWS, cased_amounts, cased_module
from tests._support.server import FAST, ServerThread

pytestmark = pytest.mark.xdist_group("imported-inputs")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cased")
    raw = cased_module(root / "raw")
    declared = import_model(
        raw, root / "declared", task="regression", allows_missing=["LoanAmount"]
    )
    return {"raw": raw, "declared": declared.folder}


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[ServerThread]:
    """The SavedModel as it was saved (no mooring.json: ``serve --model-dir``), and the
    same model imported with ``--allows-missing LoanAmount``."""
    sources = [
        DirectorySource(folders["raw"], "loans"),
        DirectorySource(folders["declared"], "kept"),
    ]
    with ServerThread(build_app(sources, FAST)) as running:
        running.wait_ready()
        yield running


def _post(server: ServerThread, model: str, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(f"{server.url}/v1/models/{model}:predict", content=content, timeout=30)


def test_upper_case_arguments_are_the_inputs_names(
    server: ServerThread, folders: dict[str, Path]
) -> None:
    # TensorFlow saved the TensorSpec names lower-cased; the signature binds "Age" only.
    assert sorted(load_saved_model(folders["raw"], require_metadata=False).inputs) == [
        "Age",
        "LoanAmount",
    ]
    rows = _post(server, "loans", {"instances": CASED_ROWS})
    assert rows.status_code == 200, rows.text
    got = [p for p in rows.json()["predictions"]]
    np.testing.assert_allclose(got, cased_amounts(CASED_ROWS), rtol=1e-6)
    columns = {k: [r[k] for r in CASED_ROWS] for k in CASED_ROWS[0]}
    answered = _post(server, "loans", {"inputs": columns})
    assert answered.status_code == 200, answered.text
    np.testing.assert_allclose(answered.json()["outputs"], cased_amounts(CASED_ROWS), rtol=1e-6)


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [CASED_ROWS[0], {"Age": None, "LoanAmount": 90.0}]},
        b'{"instances": [{"Age": 40, "LoanAmount": 150}, {"Age": NaN, "LoanAmount": 90}]}',
        {"inputs": {"Age": [40.0, None], "LoanAmount": [150.0, 90.0]}},
    ],
    ids=["null", "nan", "columns"],
)
def test_a_missing_value_to_an_imported_float_input_is_a_400_naming_it(
    server: ServerThread, body: bytes | dict[str, Any]
) -> None:
    res = _post(server, "loans", body)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert "input 'Age', row 1" in error and "--allows-missing Age" in error, error


def test_an_input_declared_to_handle_missing_takes_null(server: ServerThread) -> None:
    kept = _post(server, "kept", {"instances": [CASED_ROWS[0], {"Age": 25.0, "LoanAmount": None}]})
    assert kept.status_code == 200, kept.text
    assert kept.json()["predictions"][0] == pytest.approx(cased_amounts(CASED_ROWS)[0])
    refused = _post(server, "kept", {"instances": [{"Age": None, "LoanAmount": 1.0}]})
    assert refused.status_code == 400 and "input 'Age', row 0" in refused.json()["error"]


def test_an_explanation_refuses_a_missing_value_as_a_prediction_does(server: ServerThread) -> None:
    body = {"instances": [{"Age": None, "LoanAmount": 90.0}]}
    res = httpx.post(
        f"{server.url}/v1/models/loans:explain", content=orjson.dumps(body), timeout=30
    )
    assert res.status_code == 400 and "input 'Age', row 0" in res.json()["error"], res.text


def test_a_model_without_an_explanation_says_so_without_its_folder(
    server: ServerThread, folders: dict[str, Path]
) -> None:
    body = {"instances": CASED_ROWS}
    res = httpx.post(
        f"{server.url}/v1/models/loans:explain", content=orjson.dumps(body), timeout=30
    )
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert "model 'loans' version 1" in error and str(folders["raw"].parent) not in error, error
