"""Train/serve parity: the exported SavedModel must answer exactly like the trained model.

After export, records of the evaluation data are turned into raw Python values
exactly as a server receives them (a JSON round trip: numbers, strings and
nulls), fed to the SavedModel loaded with ``tf.saved_model.load`` (no Keras),
and compared with the in-memory Keras model's predictions on the same rows
read through the training pipeline (Arrow). Extra records are added on purpose:
one with every feature missing, one with unseen categories, one with numbers a
million times outside the training range. Any difference above the tolerance
fails the run and shows the differing records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import orjson
import pyarrow as pa
import tensorflow as tf

from mooring.errors import ChecksFailedError
from mooring.features._inputs import columns_from_records, columns_from_table, predict_saved_model
from mooring.features._spec import FeatureSpec
from mooring.formats._model import SavedModelFolder
from mooring.training._export import postprocess
from mooring.training._labels import LabelEncoding

__all__ = ["ParityError", "ParityReport", "check_parity", "parity_records"]

UNSEEN = "__mooring_unseen_category__"


class ParityError(ChecksFailedError):
    """The exported model disagrees with the trained model beyond the tolerance."""


@dataclass
class ParityReport:
    """What the parity check compared and the largest difference it saw."""

    records: int
    max_abs_diff: float
    tolerance: float
    outputs: list[str]
    differing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differing

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "outputs": self.outputs,
            "passed": self.passed,
            "differing": self.differing[:10],
        }


def parity_records(table: pa.Table, spec: FeatureSpec, n: int) -> pa.Table:
    """The first ``n`` rows of ``table`` plus an all-missing, an unseen and an extreme record."""
    # In the spec's types: a column the spec reads as text may arrive typed as numbers
    # (e.g. mostly digits), and the records must be what a client of this model sends. A
    # number feature is a float: an integer beyond 2^53 becomes the nearest one.
    head = table.slice(0, n).select(spec.names).cast(_arrow_schema(spec), safe=False)
    rows = head.to_pylist()
    base = rows[0] if rows else {}
    all_missing = {name: None for name in spec.names}
    unseen = dict(base)
    extreme = dict(base)
    for feature in spec.features:
        if feature.dtype == "string":
            unseen[feature.name] = UNSEEN
        else:
            span = max(
                abs(getattr(feature, "upper", 0.0)), abs(getattr(feature, "lower", 0.0)), 1.0
            )
            extreme[feature.name] = span * 1e6
    extras = pa.Table.from_pylist([all_missing, unseen, extreme], schema=_arrow_schema(spec))
    return pa.concat_tables([head.cast(extras.schema), extras])


def _arrow_schema(spec: FeatureSpec) -> pa.Schema:
    return pa.schema(
        pa.field(f.name, pa.string() if f.dtype == "string" else pa.float64())
        for f in spec.features
    )


def check_parity(
    model: keras.Model | Callable[[pa.Table], dict[str, np.ndarray[Any, Any]]],
    loaded: SavedModelFolder,
    spec: FeatureSpec,
    label: LabelEncoding,
    table: pa.Table,
    *,
    records: int = 200,
    tolerance: float = 1e-6,
    raise_on_failure: bool = True,
) -> ParityReport:
    """Compare the in-memory model (Arrow path) with the SavedModel (JSON path).

    ``model`` is the trained Keras model, or a function from the records' table to the
    serving outputs of another kind's own prediction (the trees' YDF model).

    Raises:
        ParityError: some output differs by more than ``tolerance`` (or a class differs);
            the message lists the first differing records.
    """
    rows = parity_records(table, spec, records)
    if isinstance(model, keras.Model):
        expected_raw = model(
            {k: tf.constant(v) for k, v in columns_from_table(rows, spec).items()}, training=False
        )
        expected = {k: v.numpy() for k, v in postprocess(expected_raw, label).items()}
    else:
        # Another kind's own prediction (the trees' YDF model) on the Arrow path.
        expected = model(rows)
    # What a server receives: JSON, decoded to plain Python values.
    payload = orjson.loads(orjson.dumps(rows.to_pylist()))
    served = predict_saved_model(loaded, columns_from_records(payload, spec))
    keys = ["value"] if label.task == "regression" else ["probabilities", "classes"]
    worst = 0.0
    differing: list[dict[str, Any]] = []
    bad_rows: set[int] = set()
    for key in keys:
        a, b = expected[key], served[key]
        if a.dtype.kind in "fiu":
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            diff = diff.reshape(len(diff), -1).max(axis=1) if diff.size else diff
            finite = np.where(np.isnan(diff), np.inf, diff)
            worst = max(worst, float(finite.max()) if finite.size else 0.0)
            bad_rows.update(np.flatnonzero(finite > tolerance).tolist())
        else:
            bad_rows.update(np.flatnonzero(a != b).tolist())
    for i in sorted(bad_rows)[:10]:
        differing.append(
            {
                "row": int(i),
                "record": payload[i],
                "trained": {k: _plain(expected[k][i]) for k in keys},
                "served": {k: _plain(served[k][i]) for k in keys},
            }
        )
    report = ParityReport(
        records=rows.num_rows,
        max_abs_diff=worst,
        tolerance=tolerance,
        outputs=keys,
        differing=differing,
    )
    if differing and raise_on_failure:
        shown = "\n".join(
            f"  row {d['row']}: {d['record']} → trained {d['trained']} vs served {d['served']}"
            for d in differing[:5]
        )
        raise ParityError(
            f"train/serve parity failed: {len(bad_rows)} of {rows.num_rows} records differ by more "
            f"than {tolerance:g} (largest {worst:.3g}) between the trained model and the exported "
            f"SavedModel:\n{shown}\nThe export does not reproduce training; report this with the "
            "records above"
        )
    return report


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
