"""Feature spec from statistics: defaults, state, determinism, hashing, errors, layers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._model import FeaturesConfig
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import ConfigError, InvalidRequestError, UsageError
from mooring.features._infer import FeatureWarning, build_feature_spec, quantile_boundaries
from mooring.features._inputs import check_columns, columns_from_records, columns_from_table
from mooring.features._layers import build_preprocessing
from mooring.features._spec import CategoricalFeature, FeatureSpec, NumericFeature


def _table(rows: int = 500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    gains = np.where(rng.random(rows) < 0.9, 0.0, rng.lognormal(8, 1, rows))
    age: list[float | None] = rng.normal(40, 10, rows).tolist()
    age[::25] = [None] * len(age[::25])
    return pa.table(
        {
            "age": age,
            "gain": gains,
            "color": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]).tolist(),
            "code": rng.integers(1, 5, rows),
            "y": rng.choice(["a", "b"], rows).tolist(),
        }
    )


def _features(mapping: dict[str, object]) -> FeaturesConfig:
    return FeaturesConfig.model_validate(mapping)


def test_defaults_follow_the_data() -> None:
    stats = compute_statistics(_table())
    spec = build_feature_spec(None, statistics=stats, label="y")
    assert spec.names == ["age", "gain", "color", "code"]
    age, gain, color = spec["age"], spec["gain"], spec["color"]
    assert isinstance(age, NumericFeature) and age.transform == "normalize"
    assert age.missing == "indicator"  # the training data had missing ages
    assert age.mean == pytest.approx(stats["age"].numeric.mean)
    assert age.variance == pytest.approx(stats["age"].numeric.variance)
    # 90% zeros: bucketized, with the tail split by refined quantiles.
    assert isinstance(gain, NumericFeature) and gain.transform == "bucketize"
    assert len(gain.boundaries) == 9 and all(b > 0 for b in gain.boundaries)
    assert isinstance(color, CategoricalFeature) and color.encoding == "one_hot"
    # Vocabulary: most frequent first, from the statistics' counts.
    assert color.vocabulary == tuple(v for v, _ in stats["color"].strings.top(10))
    assert color.missing == "oov"


def test_a_column_new_in_the_data_is_not_a_feature_until_the_contract_lists_it() -> None:
    contract = infer_schema(compute_statistics(_table().drop_columns(["gain"])), label="y")
    stats = compute_statistics(_table())  # the new data has 'gain' too
    spec = build_feature_spec(None, statistics=stats, schema=contract, label="y")
    assert spec.names == ["age", "color", "code"]
    with pytest.raises(ConfigError, match="'gain', which is not a column of the training data"):
        build_feature_spec(_features({"gain": {}}), statistics=stats, schema=contract, label="y")


def test_listed_options_and_include_listed() -> None:
    stats = compute_statistics(_table())
    config = _features(
        {
            "include": "listed",
            "age": {"transform": "log_normalize", "clip": 3.0, "missing": "impute"},
            "color": {"encoding": "embedding", "dim": 3, "missing": "category"},
            "code": {"kind": "categorical"},
            "crosses": [{"columns": ["color", "code"], "bins": 16, "dim": 2}],
        }
    )
    spec = build_feature_spec(config, statistics=stats, label="y")
    assert spec.names == ["age", "color", "code"]
    age = spec["age"]
    assert isinstance(age, NumericFeature) and (age.transform, age.clip) == ("log_normalize", 3.0)
    assert 2.0 < age.mean < 5.0  # mean of log1p(age), derived from the quantile sketch
    code = spec["code"]
    assert isinstance(code, CategoricalFeature)
    assert (code.source, code.vocabulary) == ("integer", ("1", "2", "3", "4"))
    _, encoded = build_preprocessing(spec)
    assert {k: tuple(v.shape) for k, v in encoded.items()} == {
        "age": (None, 1),
        "color": (None, 3),
        "code": (None, 5),
        "color_x_code": (None, 2),
    }


def test_fingerprint_covers_options_state_and_statistics() -> None:
    stats = compute_statistics(_table())
    spec = build_feature_spec(None, statistics=stats, label="y")
    again = build_feature_spec(None, statistics=compute_statistics(_table()), label="y")
    assert spec.fingerprint() == again.fingerprint()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    other_stats = compute_statistics(_table(seed=1))
    assert build_feature_spec(None, statistics=other_stats, label="y").fingerprint() != (
        spec.fingerprint()
    )
    bucketed = _features({"age": {"transform": "bucketize"}})
    assert build_feature_spec(bucketed, statistics=stats, label="y").fingerprint() != (
        spec.fingerprint()
    )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=5, max_size=60),
    st.randoms(use_true_random=False),
)
def test_vocabulary_order_does_not_depend_on_row_order(values: list[str], rnd: object) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = compute_statistics(pa.table({"c": values, "y": ["p"] * len(values)}))
    b = compute_statistics(pa.table({"c": shuffled, "y": ["p"] * len(values)}))
    spec_a = build_feature_spec(None, statistics=a, label="y")
    spec_b = build_feature_spec(None, statistics=b, label="y")
    assert spec_a["c"] == spec_b["c"]
    counts = {v: values.count(v) for v in set(values)}
    vocab = spec_a["c"].vocabulary  # type: ignore[union-attr]
    assert list(vocab) == sorted(counts, key=lambda v: (-counts[v], v))


def test_quantile_boundaries_split_a_spiky_tail() -> None:
    from mooring.contract._statistics import NumericSummary

    summary = NumericSummary()
    summary.update(np.concatenate([np.zeros(950), np.arange(1.0, 51.0)]))
    boundaries = quantile_boundaries(summary, 5)
    assert len(boundaries) == 4
    assert list(boundaries) == sorted(boundaries) and boundaries[0] > 0


def test_zero_variance_is_guarded_and_warned() -> None:
    stats = compute_statistics(pa.table({"flat": [3.0] * 50, "y": ["a", "b"] * 25}))
    with pytest.warns(UserWarning, match=r"'flat' is constant"):
        spec = build_feature_spec(None, statistics=stats, label="y")
    flat = spec["flat"]
    assert isinstance(flat, NumericFeature) and flat.constant and flat.variance == 1.0


def test_layers_handle_missing_unseen_and_far_values() -> None:
    stats = compute_statistics(_table())
    config = _features({"color": {"missing": "category"}})
    spec = build_feature_spec(config, statistics=stats, label="y")
    inputs, encoded = build_preprocessing(spec)
    import keras

    model = keras.Model(inputs, encoded)
    records = [
        {"age": None, "gain": 1e12, "color": None, "code": 2},
        {"age": 1e9, "gain": 0, "color": "ultraviolet", "code": 99},
    ]
    out = model({k: tf.constant(v) for k, v in columns_from_records(records, spec).items()})
    age = out["age"].numpy()
    assert age[0].tolist() == [0.0, 1.0]  # mean imputed (0 after normalising) + indicator
    assert age[1].tolist() == [5.0, 0.0]  # clipped at 5 standard deviations
    color = out["color"].numpy()
    # Indices: 0 = out of vocabulary, 1 = missing, then the vocabulary.
    assert color[0].argmax() == 1 and color[1].argmax() == 0
    assert out["gain"].numpy()[0].argmax() == len(spec["gain"].boundaries)  # type: ignore[union-attr]
    assert out["code"].numpy()[1].argmax() == 0


def test_table_and_json_paths_give_the_same_arrays() -> None:
    table = _table(rows=30)
    stats = compute_statistics(table)
    spec = build_feature_spec(None, statistics=stats, label="y")
    from_table = columns_from_table(table, spec)
    from_json = columns_from_records(table.select(spec.names).to_pylist(), spec)
    for name in spec.names:
        a, b = from_table[name], from_json[name]
        if a.dtype == object:
            assert a.tolist() == b.tolist()
        else:
            np.testing.assert_array_equal(a, b)
    assert math.isnan(from_json["age"][0])


def test_check_columns_refuses_n_by_1_inputs() -> None:
    spec = FeatureSpec(features=(NumericFeature("x", "normalize", "impute", 5.0, 0.0),))
    assert check_columns({"x": np.zeros(4)}, spec)["x"].dtype == np.float32
    with pytest.raises(UsageError, match=r"'x' has shape \[4, 1\].*reshape\(-1\)"):
        check_columns({"x": np.zeros((4, 1))}, spec)


def test_spec_errors_name_the_fix() -> None:
    stats = compute_statistics(_table())
    with pytest.raises(ConfigError, match=r"'y', which is the label"):
        build_feature_spec(_features({"y": {}}), statistics=stats, label="y")
    with pytest.raises(ConfigError, match=r"'agee', which is not a column.*did you mean 'age'"):
        build_feature_spec(_features({"agee": {}}), statistics=stats, label="y")
    with pytest.raises(ConfigError, match=r"kind = 'numeric' but the column holds text"):
        build_feature_spec(_features({"color": {"kind": "numeric"}}), statistics=stats, label="y")
    crossed = _features({"exclude": ["code"], "crosses": [{"columns": ["color", "code"]}]})
    with pytest.raises(ConfigError, match=r"'code' is not a feature"):
        build_feature_spec(crossed, statistics=stats, label="y")
    with pytest.raises(ValueError, match=r"apply to categorical features"):
        _features({"age": {"kind": "numeric", "encoding": "one_hot"}})


def test_a_listed_and_excluded_column_is_excluded_with_a_note() -> None:
    stats = compute_statistics(_table())
    config = _features({"age": {"transform": "bucketize"}, "exclude": ["age"]})
    with pytest.warns(FeatureWarning, match=r"lists 'age' and also excludes it: it is excluded"):
        spec = build_feature_spec(config, statistics=stats, label="y")
    assert "age" not in {f.name for f in spec.features}
    assert any("also excludes it" in w for w in spec.warnings)


def test_schema_types_and_fingerprint_are_used() -> None:
    stats = compute_statistics(_table())
    schema = infer_schema(stats, label="y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = build_feature_spec(None, statistics=stats, schema=schema)
    assert spec.schema_fingerprint == schema.fingerprint()
    assert "y" not in spec.names


def test_hashing_encoding_buckets_unseen_values_deterministically() -> None:
    stats = compute_statistics(_table())
    config = _features({"color": {"encoding": "hashing", "bins": 8, "dim": 2}})
    spec = build_feature_spec(config, statistics=stats, label="y")
    color = spec["color"]
    assert isinstance(color, CategoricalFeature) and (color.size, color.width) == (8, 2)
    import keras

    inputs, encoded = build_preprocessing(spec)
    model = keras.Model(inputs, encoded["color"])
    colors = ["never-seen", "never-seen", "red"]
    # Every input present, as a server request must have them: null for the others.
    records = [{**dict.fromkeys(spec.names), "color": color} for color in colors]
    out = model({k: tf.constant(v) for k, v in columns_from_records(records, spec).items()})
    np.testing.assert_array_equal(out[0], out[1])


def test_records_decode_as_the_server_decodes_a_request() -> None:
    spec = build_feature_spec(None, statistics=compute_statistics(_table()), label="y")
    record = dict.fromkeys(spec.names)
    with pytest.raises(InvalidRequestError, match=r"records\[0\]: missing field 'age'"):
        columns_from_records([{k: v for k, v in record.items() if k != "age"}], spec)
    with pytest.raises(InvalidRequestError, match=r"records\.age\[0\]: expected a number"):
        columns_from_records([{**record, "age": "40"}], spec)
