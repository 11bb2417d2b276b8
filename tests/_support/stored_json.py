"""Hypothesis strategies for stored JSON records: any JSON, and the mappings today's
writers produce (the gate decision, a version's lineage)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
#: Any JSON value.
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_numbers = st.floats(allow_nan=False, allow_infinity=False) | st.none()
_text = st.text(max_size=12)

_GATE_KEYS = (
    "name",
    "metric",
    "slice",
    "kind",
    "value",
    "bound",
    "passed",
    "message",
    "skipped",
    "baseline",
    "diff",
    "default",
)


def _ordered(keys: tuple[str, ...]) -> Any:
    return lambda data: {k: data[k] for k in keys if k in data}


#: One gate as ``GateRecord.to_dict`` writes it: every key, in order.
gate_dicts = st.fixed_dictionaries(
    {
        "name": _text,
        "metric": st.sampled_from(["auc", "accuracy", "recall", "flip_rate"]),
        "slice": st.none() | _text,
        "kind": st.sampled_from(["value", "change", "baseline"]),
        "value": _numbers,
        "bound": st.dictionaries(
            st.sampled_from(["lower", "upper", "direction", "absolute", "reference"]),
            _numbers | st.sampled_from(["higher", "lower", "majority"]),
            max_size=3,
        ),
        "passed": st.booleans(),
        "message": _text,
        "skipped": st.booleans(),
        "baseline": _numbers,
        "diff": _numbers,
        "default": st.booleans(),
    }
).map(_ordered(_GATE_KEYS))


@st.composite
def decision_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A decision as ``DecisionRecord.to_dict`` writes it (``ungated`` consistent)."""
    gates = draw(st.lists(gate_dicts, max_size=3))
    judged = [g for g in gates if not g["skipped"]]
    blessed = bool(judged) and all(g["passed"] for g in judged)
    return {
        "blessed": blessed,
        "gates": gates,
        "warnings": draw(st.lists(_text, max_size=2)),
        "defaults": draw(st.booleans()),
        "ungated": not blessed and not judged,
    }


def without_some(data: dict[str, Any], drop: st.DrawFn) -> dict[str, Any]:
    """``data`` less a drawn subset of its keys (an older record)."""
    gone = drop(st.sets(st.sampled_from(sorted(data)))) if data else set()
    return {k: v for k, v in data.items() if k not in gone}


#: Keys no writer uses, for the "unknown keys survive" properties.
unknown_keys = st.text(min_size=1, max_size=8).map(lambda s: f"x-{s}")


_digests = st.text("0123456789abcdef", min_size=4, max_size=8)
_paths = st.sampled_from(["/d/adult.data.csv", "/d/adult.test.csv", "eval.parquet"])

#: A trained version's lineage as the register step writes it, stamped by the registry.
trained_lineage = st.fixed_dictionaries(
    {
        "data_fingerprint": _digests,
        "eval_fingerprint": _digests,
        "train_data": _paths,
        "eval_data": _paths,
        "statistics_hash": _digests,
        "schema_hash": _digests,
        "schema_fingerprint": _digests,
        "contract_fingerprint": st.none() | _digests,
        "feature_spec_hash": _digests,
        "model_key": _digests,
        "code_version": st.none() | _digests,
        "source_sha256": st.none() | _digests,
        "run_id": _text,
        "training_workers": st.integers(1, 8),
        "training_engine": st.sampled_from(["process", "ray", "multiprocessing"]),
        "training_restarts": st.integers(0, 3),
        "mooring_version": st.sampled_from(["0.1.0"]),
        "tensorflow_version": st.none() | st.sampled_from(["2.16.1"]),
        "keras_version": st.none() | st.sampled_from(["3.3.3"]),
    }
)
#: An imported version's lineage (with an evaluation on import, or without).
imported_lineage = st.fixed_dictionaries(
    {
        "origin": st.just("imported"),
        "source_path": _paths,
        "source_format": st.sampled_from(["saved_model", "keras", "ydf"]),
        "source_sha256": _digests,
        "signature": st.sampled_from(["serving_default", "predict"]),
        "actor": _text,
        "reason": st.none() | _text,
        "task": st.none() | st.sampled_from(["binary", "regression"]),
        "allowed_ops": st.lists(
            st.fixed_dictionaries(
                {"op": st.sampled_from(["PrintV2", "SimpleMLInferenceOp"]), "reason": _text}
            ),
            max_size=2,
        ),
        "mooring_version": st.just("0.1.0"),
    },
    optional={"eval_data": _paths, "eval_fingerprint": _digests, "label": _text},
)


_stamps = st.sampled_from(["2026-05-01T12:00:00.000Z", "2026-05-01T12:03:07.412Z"])
_statuses = st.sampled_from(["running", "succeeded", "rejected", "failed", "interrupted"])
_steps = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["validate", "train", "evaluate", "gate", "register"]),
            "status": st.sampled_from(["pending", "done", "cached", "skipped", "failed"]),
            "key": st.none() | _digests,
            "inputs": st.dictionaries(_text, json_values, max_size=2),
            "outputs": st.dictionaries(_text, json_values, max_size=2),
            "message": _text,
            "changed_inputs": st.lists(_text, max_size=2),
        }
    ),
    max_size=3,
)
_attempts = st.lists(
    st.fixed_dictionaries(
        {"started_at": _stamps, "status": _statuses, "pid": st.integers(1, 99999)},
        optional={"duration_s": st.floats(0, 100)},
    ),
    min_size=1,
    max_size=2,
)
_outcome = st.fixed_dictionaries(
    {
        "version": st.none() | st.integers(1, 9),
        "blessed": st.none() | st.booleans(),
        "candidate": st.none() | _text,
        "metrics": st.none() | st.dictionaries(_text, st.floats(0, 1), max_size=2),
        "report": st.none() | _paths,
        "deployed_as": st.sampled_from([None, "production", "canary"]),
        "canary_weight": st.none() | st.integers(0, 100),
        "deployment": st.fixed_dictionaries(
            {
                "production": st.none() | st.integers(1, 9),
                "canary": st.none() | st.integers(1, 9),
                "canary_weight": st.integers(0, 100),
            }
        ),
    }
)
#: A pipeline run's record (run.json) as ``mooring run`` writes it while and after it runs.
pipeline_runs = st.fixed_dictionaries(
    {
        "kind": st.just("mooring.run"),
        "run_id": _text,
        "model": _text,
        "created_at": _stamps,
        "inputs": st.dictionaries(_text, json_values, max_size=3),
        "inputs_key": _digests,
        "code": st.fixed_dictionaries(
            {"code_version": st.none() | _digests, "source_sha256": _digests}
        ),
        "force": st.booleans(),
        "status": _statuses,
        "attempts": _attempts,
        "reason": st.none() | _text,
        "error": st.none()
        | st.fixed_dictionaries(
            {"step": _text, "type": _text, "message": _text, "user_error": st.booleans()}
        ),
        "steps": _steps,
    },
    optional={
        "resumed_after": st.none() | _text,
        "updated_at": _stamps,
        "finished_at": _stamps,
        "duration_s": st.floats(0, 1000),
        "cpu_seconds": st.floats(0, 1000),
        "cached_steps": st.lists(_text, max_size=3),
        "cost": st.dictionaries(_text, json_values, max_size=3),
        "result": _outcome,
    },
)


_timings = st.dictionaries(
    st.sampled_from(["prepare_seconds", "fit_seconds", "cpu_seconds", "total_seconds"]),
    st.floats(0, 1e4),
    max_size=4,
)
#: A training run's record (the ``run.json`` beside a model) as today's trainers write it:
#: every kind's keys, then the network's (``plan``, ``linear_fit``) or the trees'.
training_runs = st.fixed_dictionaries(
    {
        "format": st.just("mooring.training-run"),
        "version": st.just(1),
        "started": _stamps,
        "finished": _stamps,
        "versions": st.fixed_dictionaries({"mooring": st.just("0.1.0")}),
        "params": st.dictionaries(_text, json_values, max_size=3),
        "kind": st.sampled_from(["mlp", "linear", "gbt"]),
        "seed": st.none() | st.integers(0, 2**31),
        "task": st.sampled_from(["binary", "multiclass", "regression"]),
        "label": st.fixed_dictionaries(
            {"task": st.just("binary"), "vocabulary": st.lists(_text, max_size=2)}
        ),
        "features": st.dictionaries(_text, st.sampled_from(["numeric/zscore", "categorical/x"])),
        "crosses": st.lists(_text, max_size=2),
        "feature_spec_hash": _digests,
        "statistics_hash": st.none() | _digests,
        "schema_hash": st.none() | _digests,
        "data": st.fixed_dictionaries(
            {"train_rows": st.integers(0, 10**6), "validation_rows": st.integers(0, 10**5)}
        ),
        "epochs": st.lists(
            st.fixed_dictionaries({"epoch": st.integers(1, 9), "loss": st.floats(0, 9)}),
            max_size=3,
        ),
        "best_epoch": st.none() | st.integers(1, 9),
        "stopped_early": st.booleans(),
        "resumed_from": st.none() | st.integers(1, 9),
        "timings": _timings,
        "warnings": st.lists(_text, max_size=2),
        "parity": st.none() | st.fixed_dictionaries({"records": st.integers(0, 50)}),
        "model_dir": _paths,
    },
    optional={
        "plan": st.fixed_dictionaries({"total_steps": st.integers(1, 9999)}),
        "linear_fit": st.fixed_dictionaries({"method": st.just("lbfgs")}),
        "trees": st.integers(1, 300),
        "feature_importances": st.dictionaries(_text, st.floats(0, 1), max_size=2),
        "distributed": st.fixed_dictionaries({"workers": st.integers(1, 4)}),
    },
)
