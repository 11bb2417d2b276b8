"""Small networks exported with their ``explain`` signature, built once per session.

Untrained (random weights) is enough for completeness and for naming: integrated
gradients hold for any weights, and building without fitting costs about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests._support.shared import built_once, shared_root
from tests._support.synthetic import synthetic_table

#: Upper-case and non-ASCII column names, and ``noise``, which the network ignores.
COLUMNS = {"age": "Âge", "income": "Income", "color": "Colour", "city": "city"}


def explain_table(rows: int = 300, task: str = "binary") -> pa.Table:
    """The synthetic table with renamed columns and an ignored numeric ``noise`` column."""
    table = synthetic_table(rows, task=task)
    table = table.rename_columns([COLUMNS.get(n, n) for n in table.column_names])
    noise = np.random.default_rng(5).normal(3.0, 2.0, rows)
    return table.append_column("noise", pa.array(noise))


def columns_of(table: pa.Table, rows: int) -> dict[str, list[Any]]:
    """The feature columns of the first ``rows`` rows, as a client sends them."""
    return {n: table.column(n).to_pylist()[:rows] for n in table.column_names if n != "target"}


#: Every encoding a block can have: buckets, an is-missing input, an embedding, hashing,
#: and crosses (embedded and one-hot), for ``network("encodings")``.
ENCODINGS: dict[str, Any] = {
    "Âge": {"transform": "bucketize", "buckets": 5},
    "Income": {"missing": "indicator"},
    "Colour": {"encoding": "embedding", "dim": 3},
    "city": {"encoding": "hashing", "bins": 8},
    "crosses": [
        {"columns": ["Colour", "city"], "bins": 16, "dim": 2},
        {"columns": ["Âge", "city"], "bins": 16},
    ],
}


def build_network(out: Path, task: str, *, ignore: str | None = "noise") -> None:
    """An untrained mlp on :func:`explain_table`, exported to ``out``; the first hidden
    layer's weights from ``ignore``'s block are zero, so the network ignores it.
    ``task`` "encodings" is a binary one with :data:`ENCODINGS` as its ``[features]``."""
    import keras

    from mooring.config._model import FeaturesConfig
    from mooring.features._infer import build_feature_spec
    from mooring.features._inputs import columns_from_table
    from mooring.features._layers import block_name
    from mooring.training._builders import build_model, resolve_kind
    from mooring.training._explain import reference_sample
    from mooring.training._export import export_model
    from mooring.training._labels import resolve_label
    from tests.training.conftest import make_config, prepare

    keras.utils.set_random_seed(7)
    features = ENCODINGS if task == "encodings" else {}
    path, stats, schema = prepare(out, explain_table(task=task.replace("encodings", "binary")))
    cfg = make_config(path)
    cfg = cfg.model_copy(update={"features": FeaturesConfig.model_validate(features)})
    label = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label=label.column)
    model = build_model(spec, label, cfg.model, resolve_kind(cfg.model))
    if ignore is not None:
        widths = [model.get_layer(block_name(i)).output.shape[-1] for i in range(len(spec.names))]
        start = sum(widths[: spec.names.index(ignore)])
        hidden = model.get_layer("hidden_0")
        kernel = hidden.kernel.numpy()
        kernel[start : start + widths[spec.names.index(ignore)]] = 0.0
        hidden.kernel.assign(kernel)
    table = explain_table(task=task.replace("encodings", "binary"))
    reference = reference_sample(columns_from_table(table, spec), seed=7)
    export_model(model, spec, label, out / "model", reference=reference)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``network(task)``: the model folder of :func:`build_network`, built once per run."""
    root = shared_root(tmp_path_factory) / "explain-networks"

    def folder(task: str) -> Path:
        return built_once(root / task, lambda out: build_network(out, task)) / "model"

    return folder


def served(folder: Path, columns: dict[str, list[Any]]) -> dict[str, Any]:
    """The folder's ``serving_default`` on ``columns`` (None as NaN or ``""``)."""
    from mooring.formats._model import load_saved_model

    loaded = load_saved_model(folder, warn=False)
    clean = {
        name: [("" if info.is_string else float("nan")) if v is None else v for v in columns[name]]
        for name, info in loaded.inputs.items()
    }
    return loaded.predict(clean)
