"""Column names with any characters: Keras and TensorFlow see safe names, users see theirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mooring.features._inputs import columns_from_records
from mooring.formats._model import load_saved_model, signature_names
from mooring.serving._loaded import load_served_model
from mooring.training._train import train_model
from tests.training.conftest import make_config, prepare, synthetic_table

# Upper case too: TensorFlow lower-cases the input names it saves, so "Age/years" must
# travel under an alias or the model cannot be called by its own columns.
BIG_ID = 9007199259780359
RENAMED = {"age": "Age/years", "income": "income €", "color": "2 colour", "city": "Città"}


@pytest.mark.parametrize("kind", ["mlp", "gbt"])
def test_any_column_name_trains_exports_and_serves_under_its_own_name(
    tmp_path: Path, kind: str
) -> None:
    table = synthetic_table(rows=300).rename_columns(
        [RENAMED.get(n, n) for n in synthetic_table(rows=300).column_names]
    )
    # An int64 id beyond 2^53 as a feature: the parity check's records hold it as a float.
    ids = pa.array([BIG_ID + 7 * i for i in range(300)], pa.int64())
    table = table.append_column("account id", ids)
    # A Python keyword cannot name a tf.function argument (found by a generated table),
    # nor can "self", which TensorFlow's own methods take beside the inputs.
    table = table.append_column("global", pa.array(np.arange(300) % 7, pa.int64()))
    table = table.append_column("self", pa.array(np.arange(300) % 5, pa.float64()))
    names = [*RENAMED.values(), "account id", "global", "self"]
    path, stats, schema = prepare(tmp_path, table)
    cfg = make_config(path, kind=kind, epochs=1, gbt={"num_trees": 10})
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp_path / "run", tensorboard=False
    )
    assert result.parity is not None and result.parity.passed
    folder = load_saved_model(result.model_dir, warn=False)
    assert sorted(folder.inputs) == sorted(names)
    # TensorFlow keeps names it accepts; the rest travel under an alias mooring.json records.
    assert folder.aliases == {
        n: signature_names(names)[n]
        for n in ("Age/years", "income €", "2 colour", "Città", "account id", "global", "self")
    }
    served = load_served_model("synthetic", 1, result.model_dir)
    record: dict[str, Any] = {
        "Age/years": 41,
        "income €": None,
        "2 colour": "red",
        "Città": "Oslo",
        "account id": BIG_ID + 3,
        "global": 4,
        "self": 2.5,
    }
    from mooring.features._inputs import model_spec

    columns = columns_from_records(orjson.loads(orjson.dumps([record, record])), model_spec(folder))
    out = served.predict(columns)
    assert out["probabilities"].shape == (2, 2)
    assert np.isfinite(out["probabilities"]).all()
    # The explain signature takes the same aliases and answers per column, by its own name.
    from mooring.explain._explainers import explain_rows

    explained = explain_rows(result.model_dir, columns)
    assert set(names) <= set(explained.columns)
    assert np.isfinite(explained.attributions).all() and explained.attributions.shape[0] == 2
    # The direct (flat) call is in use, and answers as the keyword call does: the flat
    # order follows the sanitised keyword names, not the columns' own.
    assert served.folder.flat_columns is not None
    assert sorted(served.folder.flat_columns) == sorted(folder.inputs)
    order, served.folder.flat_columns = served.folder.flat_columns, None
    keyword = served.predict(columns)
    served.folder.flat_columns = order
    for name, value in keyword.items():
        np.testing.assert_array_equal(out[name], value)
    # A column that is not rank 1 takes the keyword call, and TensorFlow's own error.
    flat = {k: np.asarray(v) for k, v in columns.items()}
    flat["Age/years"] = np.ones((2, 2), np.float32)
    import tensorflow as tf

    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match=r"(?i)age"):
        served.predict(flat)


def test_signature_names_keep_what_tensorflow_accepts() -> None:
    names = signature_names(["age", "hours-per-week", "od280/od315", "a b", "a_b", "a-b", "ünï"])
    assert names["age"] == "age"
    keywords = signature_names(["global", "class", "match"])
    assert keywords["global"].startswith("global_") and keywords["class"].startswith("class_")
    assert keywords["match"] == "match"  # a soft keyword is a valid argument name
    taken = signature_names(["self", "args", "kwargs", "self."])
    assert taken["self"].startswith("self_") and taken["self"] != "self"
    assert taken["args"] == "args" and taken["kwargs"] == "kwargs"  # no method takes them
    # TensorFlow saves input names in lower case: a name with upper case is aliased.
    cased = signature_names(["Age", "LoanAmount", "sensor.000.temp °C"])
    assert cased["Age"].startswith("age_") and cased["LoanAmount"].startswith("loanamount_")
    assert all(v == v.lower() for v in [*names.values(), *cased.values()])
    assert names["hours-per-week"] == "hours-per-week"
    assert names["od280/od315"] == "od280/od315"
    assert names["a b"] != names["a_b"] != names["a-b"]  # distinct even where TF would merge
    assert all(v.isascii() for v in names.values())
    assert len(set(names.values())) == len(names)
