"""The registry's verdict on a canary is the server's answer: the same request, the real
server on 127.0.0.1 as the reference, 200 where it answers 200 and the same 400 where not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mooring.errors import ConflictError
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving import RegistrySource, build_app
from tests._support.server import FAST, LINEAGE, ServerThread

BLESSED: dict[str, Any] = {"blessed": True, "gates": [{"name": "auc", "passed": True}]}
NAME = "loans"

#: Each version: the columns its signature reads (name → float32/string) and the columns
#: its contract names besides them. v1 read the leaking `reject`; v2 excludes it and its
#: contract still names it; v3 forgot it altogether; v4 reads `grade` as a number.
VERSIONS: dict[int, tuple[dict[str, str], tuple[str, ...]]] = {
    1: ({"income": "float32", "reject": "float32", "grade": "string"}, ()),
    2: ({"income": "float32", "grade": "string"}, ("reject",)),
    3: ({"income": "float32", "grade": "string"}, ()),
    4: ({"income": "float32", "grade": "float32"}, ("reject",)),
}


def _export(folder: Path, columns: dict[str, str]) -> Path:
    """A real SavedModel reading ``columns``, with the signature description mooring.json
    keeps for a trained model."""
    import keras
    import tensorflow as tf

    numbers = [n for n, dtype in columns.items() if dtype == "float32"]
    inputs = {n: keras.Input(shape=(), dtype="float32", name=n) for n in numbers}
    merged = keras.layers.Concatenate()([keras.layers.Reshape((1,))(i) for i in inputs.values()])
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(merged))

    def serve(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        share = model({n: features[n] for n in numbers}, training=False)[:, 0]
        probabilities = tf.stack([1.0 - share, share], axis=1)
        class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "classes": tf.gather(tf.constant(["no", "yes"]), class_ids),
        }

    signature = {
        n: tf.TensorSpec([None], tf.float32 if d == "float32" else tf.string, name=n)
        for n, d in columns.items()
    }
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[signature])
    archive.write_out(str(folder), verbose=False)
    metadata = {
        "format": "mooring.model",
        "task": "binary",
        "label_vocabulary": ["no", "yes"],
        "signature": {
            "name": "serving_default",
            "inputs": {n: {"dtype": d, "shape": [None]} for n, d in columns.items()},
        },
    }
    (folder / "mooring.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def _record(columns: dict[str, str], excluded: tuple[str, ...]) -> RunRecord:
    kinds = {"float32": "float", "string": "string"}
    schema = {
        "format": "mooring.schema",
        "label": "default",
        "columns": {
            **{n: {"type": kinds[d]} for n, d in columns.items()},
            **{n: {"type": "float"} for n in excluded},
            "default": {"type": "string"},
        },
    }
    return RunRecord.read({"features": dict.fromkeys(columns, "numeric"), "schema": schema})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """``loans`` v1-v4 (:data:`VERSIONS`), each also the production of its own name
    ``ref<N>`` for the server to answer from; v1 is production of ``loans``."""
    root = tmp_path_factory.mktemp("clients")
    reg = Registry.open(f"sqlite:///{root / 'registry.db'}", artifacts=root / "artifacts")
    for version, (columns, excluded) in VERSIONS.items():
        folder = _export(root / f"v{version}", columns)
        for name in (NAME, f"ref{version}"):
            record = VersionRecord(lineage=LINEAGE, gate=BLESSED, run=_record(columns, excluded))
            mv = register_judged(reg, name=name, artifact_dir=folder, record=record)
            if name != NAME:
                reg.deploy(name, production=mv.version)
    reg.deploy(NAME, production=1)
    yield reg
    reg.close()


def _verdict(registry: Registry, version: int) -> str | None:
    """None when the registry lets ``version`` be the canary, else its refusal."""
    try:
        registry.deploy(NAME, production=1, canary=version, weight=10)
    except ConflictError as exc:
        return str(exc)
    registry.deploy(NAME, production=1)
    return None


def test_the_canary_check_says_what_the_server_answers(registry: Registry) -> None:
    door = registry._door(NAME, 1)
    assert door is not None and door.source == "mooring.json"
    request = door.request()
    sources = [RegistrySource(registry, f"ref{v}") for v in VERSIONS]
    answers = {}
    with ServerThread(build_app(sources, FAST)) as server:
        server.wait_ready()
        for version in VERSIONS:
            reply = server.client.post(f"/v1/models/ref{version}:predict", json=request)
            answers[version] = (reply.status_code, reply.json())
    # The server itself: production's clients are answered by v1 and v2, refused by v3, v4.
    assert {v: status for v, (status, _) in answers.items()} == {1: 200, 2: 200, 3: 400, 4: 400}
    assert _verdict(registry, 2) is None
    for version in (3, 4):
        refusal = _verdict(registry, version)
        error = answers[version][1]["error"]
        assert refusal is not None and f"400: {error}" in refusal, (refusal, error)
    assert "unexpected field 'reject'" in answers[3][1]["error"]
    assert "grade" in answers[4][1]["error"]
