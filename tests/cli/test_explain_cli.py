"""``mooring explain REQUEST_ID`` explains a served request from the inputs the prediction
log kept, as the server's ``:explain`` explained it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mooring.explain
from mooring.cli import main
from mooring.errors import NotFoundError
from mooring.explain import _explainers, explain_rows
from mooring.formats._predictions import request_rows
from mooring.registry import Registry
from mooring.serving import RegistrySource, build_app
from tests._support.monitored import FEATURES, shared_project
from tests._support.server import NAME, ServerThread

# A batch of two rows, one with a missing number and a missing text.
ROWS = [
    {"age": None, "hours-per-week": 45.5, "workclass": "", "sex": "Female"},
    {"age": 58.0, "hours-per-week": 50.0, "workclass": "Self-emp-inc", "sex": "Male"},
]


def test_explain_reproduces_the_served_explanation_of_a_logged_request(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = shared_project(tmp_path_factory)
    cfg = project.cfg
    serving = cfg.serving.model_copy(
        update={"log_sample_rate": 1.0, "warmup_requests": 1, "log_flush_s": 600.0}
    )
    registry = Registry.from_config(cfg)
    app = build_app(
        [RegistrySource(registry, NAME)],
        serving,
        prediction_log_url=str(cfg.home / "predictions"),
        registry=registry,
    )
    config = ["--config", str(project.config_path)]
    log_url = str(cfg.home / "predictions")
    try:
        with ServerThread(app) as server:
            server.wait_ready()
            answer = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": ROWS})
            request_id = answer.headers["x-request-id"]
            served = server.client.post(f"/v1/models/{NAME}:explain", json={"instances": ROWS})
            assert served.status_code == 200, served.text
            # Not written yet (the log writes every 600 s here): --server has the server
            # write its log, then explain the logged rows; nothing is explained here.
            assert not _logged(log_url, request_id)
            monkeypatch.setattr(mooring.explain, "explain_rows", _refused)
            assert main(["explain", request_id, *config, "--json", "--server", server.url]) == 0
            asked = json.loads(capsys.readouterr().out)
    finally:
        registry.close()
    monkeypatch.setattr(mooring.explain, "explain_rows", explain_rows)

    # The version's explain/ SavedModel alone is loaded, not the one it serves.
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("mooring explain loaded the serving SavedModel")

    monkeypatch.setattr(_explainers, "load_saved_model", refused)
    monkeypatch.setattr(_explainers, "_CACHE", type(_explainers._CACHE)())
    assert main(["explain", request_id, *config, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["request_id"], shown["model"], shown["version"]) == (request_id, NAME, 1)
    assert asked == shown  # the server's explainer and the one loaded here, to the bit
    # A server that is gone: said, and explained here.
    assert main(["explain", request_id, *config, "--json", "--server", server.url]) == 0
    said = capsys.readouterr()
    assert said.err.startswith("no server explained it (") and "explaining it here" in said.err
    assert json.loads(said.out) == shown
    expected = served.json()["explanations"]
    assert len(shown["explanations"]) == len(expected) == 2
    for got, want in zip(shown["explanations"], expected, strict=True):
        assert list(got["attributions"]) == FEATURES
        np.testing.assert_allclose(
            [got["attributions"][c] for c in FEATURES],
            [want["attributions"][c] for c in FEATURES],
            atol=1e-6,
        )
        assert got["explained"] == pytest.approx(want["explained"], abs=1e-6)
        assert got["baseline"] == pytest.approx(want["baseline"], abs=1e-6)

    assert main(["explain", request_id, *config, "--top", "3"]) == 0
    said = capsys.readouterr().out
    assert f"{NAME} v1, request {request_id}" in said
    # Of the first row's four columns two are missing: at least one is among its top three.
    assert said.count("(1 more)") == 2 and "(missing)" in said

    assert main(["explain", "never-served", *config]) == 2
    err = capsys.readouterr().err
    assert "holds no answer of model 'income' to request 'never-served'" in err


def _logged(log_url: str, request_id: str) -> bool:
    try:
        return request_rows(log_url, NAME, request_id).num_rows > 0
    except NotFoundError:
        return False


def _refused(*args: object, **kwargs: object) -> None:
    raise AssertionError("mooring explain --server explained the rows here")
