"""A binary model answers ``classes`` at its registered operating threshold, not at 0.5.

The registered version's threshold (0.5 moved to where rows fall between it and 0.5)
decides ``classes`` and ``class_ids`` on TF Serving's REST and gRPC APIs and the Open
Inference Protocol, in the prediction log and in batch scoring; a folder's ``mooring.json``
threshold does the same for ``serve --model-dir``; a model with none keeps its argmax.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from mooring.formats._predictions import read_prediction_log
from mooring.formats._version_record import RunRecord
from mooring.scale._engine import Engine
from mooring.scale._score import score_shards
from mooring.serving import RegistrySource
from mooring.serving._loaded import load_served_model
from tests._support.grpc import GrpcServerThread, channel, predict_request, prediction_stub
from tests._support.scoring import (
    ScoringProject,
    make_project,
    request_rows,
    served_predictions,
    write_shards,
)
from tests._support.server import FAST, NAME
from tests._support.serving_model import LABELS


@dataclass
class Scored:
    """Rows, the model's positive-class probabilities at 0.5's argmax, and a threshold."""

    shard: Path
    rows: list[dict[str, Any]]
    positive: np.ndarray[Any, Any]
    argmax: list[str]
    threshold: float


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]) -> Scored:
    (shard,) = write_shards(tmp_path_factory.mktemp("threshold-rows"), 1, 200)
    rows = request_rows(shard)
    plain = load_served_model(NAME, 1, model_dirs["a"])
    out = served_predictions(plain, rows)
    positive = out["probabilities"][:, 1].astype(np.float64)
    # A threshold on the side of 0.5 where most rows lie, so that many fall between.
    below = positive[positive < 0.5]
    above = positive[positive >= 0.5]
    threshold = (
        float(np.quantile(below, 0.25))
        if len(below) >= len(above)
        else float(np.quantile(above, 0.75))
    )
    return Scored(shard, rows, positive, [str(c) for c in out["classes"]], threshold)


def _expected(scored: Scored) -> list[str]:
    return [LABELS[1] if p >= scored.threshold else LABELS[0] for p in scored.positive]


def _between(scored: Scored) -> np.ndarray[Any, Any]:
    low, high = sorted((scored.threshold, 0.5))
    return np.flatnonzero((scored.positive >= low) & (scored.positive < high))


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path], scored: Scored
) -> ScoringProject:
    run = RunRecord(task="binary", threshold=scored.threshold, threshold_source="f1_optimal")
    return make_project(tmp_path_factory.mktemp("threshold-project"), model_dirs["a"], run=run)


@dataclass
class Answered:
    """The server's REST, v2 and gRPC answers for the rows, and its prediction log folder."""

    rest: dict[str, Any]
    oip: dict[str, Any]
    grpc: dict[str, np.ndarray[Any, Any]]
    log: Path


@pytest.fixture(scope="module")
def answered(
    project: ScoringProject, tmp_path_factory: pytest.TempPathFactory, scored: Scored
) -> Answered:
    import tensorflow as tf

    log = tmp_path_factory.mktemp("threshold-log")
    reg = project.registry()
    serving = FAST.model_copy(update={"log_sample_rate": 1.0})
    source = RegistrySource(reg, NAME)
    try:
        server = GrpcServerThread([source], serving, prediction_log_url=str(log))
        with server:
            server.wait_ready()
            with channel(server.target) as opened:
                response = prediction_stub(opened).Predict(predict_request(scored.rows), timeout=60)
            grpc = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
            rest = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": scored.rows})
            inputs = [
                {
                    "name": name,
                    "shape": [len(scored.rows)],
                    "datatype": "FP32" if name in ("age", "hours-per-week") else "BYTES",
                    "data": [row[name] for row in scored.rows],
                }
                for name in scored.rows[0]
            ]
            oip = server.client.post(f"/v2/models/{NAME}/infer", json={"inputs": inputs})
    finally:
        reg.close()
    assert rest.status_code == 200, rest.text
    assert oip.status_code == 200, oip.text
    return Answered(rest.json(), oip.json(), grpc, log)


def test_the_server_answers_classes_at_the_registered_threshold(
    scored: Scored, answered: Answered
) -> None:
    between = _between(scored)
    assert len(between) >= 5, "no rows between the threshold and 0.5 to tell them apart"
    expected = _expected(scored)
    # Those rows are answered on the threshold's side, not the argmax's.
    assert all(expected[i] != scored.argmax[i] for i in between)
    predictions = answered.rest["predictions"]
    assert [p["classes"] for p in predictions] == expected
    assert [p["class_ids"] for p in predictions] == [LABELS.index(c) for c in expected]
    outputs = {o["name"]: o["data"] for o in answered.oip["outputs"]}
    assert outputs["classes"] == expected
    assert outputs["class_ids"] == [LABELS.index(c) for c in expected]
    assert answered.grpc["classes"].astype(str).tolist() == expected
    assert answered.grpc["class_ids"].tolist() == [LABELS.index(c) for c in expected]


def test_the_prediction_log_holds_the_classes_answered(scored: Scored, answered: Answered) -> None:
    table = read_prediction_log(str(answered.log), NAME, version=1)
    logged = table["output.classes"].to_pylist()
    assert len(logged) == 3 * len(scored.rows)  # the gRPC, REST and v2 requests
    assert logged == _expected(scored) * 3  # one request after the other, in order
    assert table["output.class_ids"].to_pylist().count(1) == 3 * _expected(scored).count(LABELS[1])


def test_batch_scoring_gives_the_servers_classes(
    project: ScoringProject,
    scored: Scored,
    answered: Answered,
    tmp_path: Path,
) -> None:
    out = tmp_path / "scores"
    with project.registry() as reg:
        score_shards(
            project.cfg(),
            reg,
            data=str(scored.shard),
            out=str(out),
            engine=Engine("local", workers=1),
        )
    table = pq.read_table(out / f"{scored.shard.stem}.parquet")
    assert table["output.classes"].to_pylist() == [
        p["classes"] for p in answered.rest["predictions"]
    ]
    assert table["output.class_ids"].to_pylist() == [LABELS.index(c) for c in _expected(scored)]


def test_a_folder_answers_at_the_threshold_its_mooring_json_records(
    scored: Scored, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    folder = shutil.copytree(model_dirs["a"], tmp_path / "model")
    meta = json.loads((folder / "mooring.json").read_text())
    (folder / "mooring.json").write_text(json.dumps({**meta, "threshold": scored.threshold}))
    model = load_served_model(NAME, 1, folder)
    assert model.threshold == scored.threshold
    out = served_predictions(model, scored.rows)
    assert out["classes"].tolist() == _expected(scored)
    # A registered threshold wins over the folder's.
    registered = load_served_model(NAME, 1, folder, threshold=0.5)
    out = served_predictions(registered, scored.rows)
    assert out["classes"].tolist() == [
        LABELS[1] if p >= 0.5 else LABELS[0] for p in scored.positive
    ]


def test_the_cut_is_made_in_float64_as_the_evaluation_made_it(
    scored: Scored, model_dirs: dict[str, Path]
) -> None:
    # Just above one row's float32 probability: that row is negative, as the evaluation
    # (float64 scores, ``>= threshold``) counts it; a float32 comparison rounds the cut.
    row = int(_between(scored)[0])
    cut = float(scored.positive[row]) + 1e-12
    model = load_served_model(NAME, 1, model_dirs["a"], threshold=cut)
    out = served_predictions(model, scored.rows[row : row + 1])
    assert out["class_ids"].tolist() == [0]
    at = load_served_model(NAME, 1, model_dirs["a"], threshold=float(scored.positive[row]))
    assert served_predictions(at, scored.rows[row : row + 1])["class_ids"].tolist() == [1]
