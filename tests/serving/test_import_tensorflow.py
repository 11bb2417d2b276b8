"""Serving imports TensorFlow without Keras and with its API namespaces deferred, and still
serves the same predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mooring.serving._loaded import load_served_model
from tests._support.server import NAME

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this test process has imported Keras already.
SCRIPT = """
import json, sys, threading
from pathlib import Path
from mooring._tensorflow import import_tensorflow
from mooring.serving._loaded import load_served_model

import gc
frozen = []
def freeze():
    gc.freeze()
    frozen.append(gc.get_freeze_count())
got = []
threads = [
    threading.Thread(target=lambda: got.append(import_tensorflow(on_import=freeze)))
    for _ in range(4)
]
for t in threads: t.start()
for t in threads: t.join()
tf = got[0]
served = load_served_model(sys.argv[2], 1, Path(sys.argv[1]))
columns = served.example_columns(16)
out = served.predict(columns)
frozen_after_load = gc.get_freeze_count()
compat_deferred = type(tf.compat).__name__ == "_DeferredModule"
compat_v1_before = "tensorflow._api.v2.compat.v1" in sys.modules
# Eight threads touch a deferred namespace first, together: all see it whole.
barrier = threading.Barrier(8)
placeholders = []
def touch():
    barrier.wait()
    placeholders.append(tf.compat.v1.placeholder.__name__)
touching = [threading.Thread(target=touch) for _ in range(8)]
for t in touching: t.start()
for t in touching: t.join()
keras_before = sorted(m for m in sys.modules if m == "keras" or m.startswith("keras."))
import keras  # first use still works, training included
import numpy as np
tiny = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
tiny.compile(optimizer="adam", loss="mse")
fit_loss = tiny.fit(np.ones((8, 2)), np.ones(8), epochs=1, verbose=0).history["loss"][0]
print(json.dumps({
    "frozen": frozen,
    "frozen_after_load": frozen_after_load,
    "same_module": all(m is tf for m in got) and tf is sys.modules["tensorflow"],
    "has_saved_model": all(hasattr(m, "saved_model") for m in got),
    "keras_before": keras_before,
    "compat_deferred": compat_deferred,
    "compat_v1_before": compat_v1_before,
    "placeholders": placeholders,
    "keras_layer": keras.layers.Dense(1).__class__.__name__,
    "fit_loss": float(fit_loss),
    "tf_keras_layer": tf.keras.layers.Dense(1).__class__.__name__,
    "placeholder_left": "keras.src.optimizers" in sys.modules
                        and sys.modules["keras.src.optimizers"] is None,
    "columns": {k: v.tolist() for k, v in columns.items()},
    "probabilities": out["probabilities"].tolist(),
}))
"""


def test_serving_skips_keras_and_predicts_like_a_full_import(model_dirs: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_dirs["a"]), NAME],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["same_module"] and report["has_saved_model"]
    # on_import ran once, on TensorFlow's objects; the model loaded later is not frozen.
    assert len(report["frozen"]) == 1 and report["frozen"][0] > 100_000
    assert report["frozen_after_load"] <= report["frozen"][0]  # frozen objects can still die
    assert report["keras_before"] == []  # loading and predicting never touched Keras
    # ... nor tf.compat, still deferred; on first use it runs, once, for every thread.
    assert report["compat_deferred"] and not report["compat_v1_before"]
    assert report["placeholders"] == ["placeholder"] * 8
    assert report["keras_layer"] == report["tf_keras_layer"] == "Dense"
    assert report["fit_loss"] > 0  # Keras trains on the deferred namespaces it touches
    assert not report["placeholder_left"]
    # This process imported TensorFlow the usual way, Keras and all: same outputs.
    served = load_served_model(NAME, 1, model_dirs["a"])
    columns = {
        name: np.array(values, dtype=served.inputs[name].numpy_dtype())
        for name, values in report["columns"].items()
    }
    expected = served.predict(columns)["probabilities"]
    np.testing.assert_array_equal(np.array(report["probabilities"], dtype=np.float32), expected)


# Every public namespace, run, attribute by attribute (a module by name, others by type).
# (A full import with Keras differs on its own: Keras imports `tensorflow.experimental`,
# a second copy of tf.experimental, which the import system then binds as tf.experimental.)
SURFACE = """
import json, sys, types
if sys.argv[1] == "deferred":
    from mooring._tensorflow import import_tensorflow
    tf = import_tensorflow()
else:  # the same import without deferring: Keras's eager import also skipped
    sys.modules["keras.src.optimizers"] = None
    import tensorflow as tf
    del sys.modules["keras.src.optimizers"]
def describe(v):
    return v.__name__ if isinstance(v, types.ModuleType) else type(v).__name__
surface = {}
for name, v in sorted(vars(tf).items()):
    if isinstance(v, types.ModuleType) and v.__name__.startswith("tensorflow._api.v2."):
        surface[name] = {a: describe(getattr(v, a)) for a in dir(v) if not a.startswith("__")}
        surface[name]["bound as"] = describe(getattr(tf, name))
import tensorflow.compat.v1 as tf1
surface["compat.v1 by import"] = tf1.placeholder.__name__
print(json.dumps(surface))
"""


def test_deferred_namespaces_show_the_same_api_as_a_full_import() -> None:
    runs = {
        how: subprocess.Popen(
            [sys.executable, "-c", SURFACE, how],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for how in ("deferred", "full")
    }
    surfaces = {}
    for how, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        surfaces[how] = json.loads(out.strip().splitlines()[-1])
    assert len(surfaces["full"]) > 40  # tf.compat, tf.data, tf.distribute, ...
    # tf.distribute and tf.lite share their names with packages: still the namespaces.
    assert surfaces["deferred"]["distribute"]["bound as"] == "tensorflow._api.v2.distribute"
    assert surfaces["deferred"] == surfaces["full"]


# `mooring serve --grpc-port` in a fresh interpreter (the CLI's own path, in a thread), a
# gRPC Predict answered, then the modules loaded: TF Serving's stubs import the
# `tensorflow` package, so they must come after TensorFlow's import without Keras.
GRPC_SERVE = """
import json, os, sys, threading
import httpx
from mooring.cli import main
from tests._support.waiting import wait_until
config, model_dir, port, grpc_port = sys.argv[1:5]
args = ["serve", "--config", config, "--model-dir", model_dir, "--port", port,
        "--grpc-port", grpc_port, "--no-access-log"]
threading.Thread(target=main, args=(args,), daemon=True).start()
wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200,
           "mooring serve to become ready", timeout=240, ignoring=(httpx.TransportError,))
import grpc
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
request = predict_pb2.PredictRequest()
request.model_spec.name = "income"
values = {"age": 39.0, "hours-per-week": 40.0, "workclass": "Private", "sex": "Male"}
for name, value in values.items():
    proto = request.inputs[name]
    proto.tensor_shape.dim.add(size=1)
    if isinstance(value, str):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.append(value.encode())
    else:
        proto.dtype = types_pb2.DT_FLOAT
        proto.float_val.append(value)
with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
    reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
print(json.dumps({
    "version": reply.model_spec.version.value,
    "keras": sorted(m for m in sys.modules if m.split(".")[0] == "keras"),
}))
sys.stdout.flush()
os._exit(0)
"""


def test_serve_with_grpc_never_imports_keras(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    from tests._support.server import free_port

    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\n[data]\ntrain = "train.csv"\n[serving]\nwarmup_requests = 1\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            GRPC_SERVE,
            str(config),
            str(model_dirs["a"]),
            str(free_port()),
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,  # the script imports tests._support
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["version"] == 1
    assert report["keras"] == []
