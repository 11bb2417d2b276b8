"""Raw values → the model's input arrays, the same way for training and serving.

The model takes one rank-1 array per feature column: ``float32`` for numeric
features (NaN = missing) and ``object``/bytes strings for text features
(``""`` = missing). Three sources convert here:

* an Arrow table (training, evaluation, batch scoring): :func:`columns_from_table`;
* JSON-like records, as a server receives them: :func:`columns_from_records`;
* arrays the caller already has: :func:`check_columns` asserts their shapes.

A rank or shape mismatch is an error, never a broadcast: ``[n, 1]`` where
``[n]`` is expected silently turns a per-row comparison into an n×n one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._io import is_number
from mooring.errors import DataError, UsageError
from mooring.features._spec import FeatureSpec
from mooring.formats._columns import columns_from_rows
from mooring.formats._model import SavedModelFolder, TensorInfo, load_saved_model, role_outputs

__all__ = [
    "check_columns",
    "columns_from_records",
    "columns_from_table",
    "model_spec",
    "predict_saved_model",
    "table_inputs",
]


def _numeric_array(
    name: str, column: pa.ChunkedArray | pa.Array, dtype: Any = np.float32
) -> np.ndarray[Any, Any]:
    """A numeric column as the model's input: floats with NaN for missing values, or, for
    an integer input fed from an integer column, the integers exactly (an int64 id above
    2^53 is no float's)."""
    kind = column.type
    if np.dtype(dtype).kind in "iu" and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return _integer_array(name, column, np.dtype(dtype))
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan, dtype=np.float32)
    if pa.types.is_boolean(kind):
        column = pc.cast(column, pa.int8())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            column = pc.cast(pc.utf8_trim_whitespace(column), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = [v for v in column.to_pylist() if v is not None and not is_number(v)][:3]
            raise DataError(
                f"column {name!r} is a numeric feature but holds text (e.g. {bad}); add such "
                "tokens to [data] na_values if they mean 'missing', or fix the source"
            ) from None
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        raise DataError(f"column {name!r} holds timestamps; timestamps are not model inputs")
    # Integers beyond 2^53 become the nearest float: a float input holds no more.
    filled = pc.fill_null(pc.cast(column, pa.float64(), safe=False), float("nan"))
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float32)


def _integer_array(
    name: str, column: pa.ChunkedArray | pa.Array, dtype: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    if column.null_count:
        raise DataError(
            f"column {name!r} has {column.null_count} missing value(s), but the model's input "
            f"is {dtype}, which has no missing value: fill them, or drop those rows"
        )
    try:
        exact = pc.cast(column, pa.from_numpy_dtype(dtype))
    except pa.ArrowInvalid:
        low, high = pc.min_max(column).values()
        raise DataError(
            f"column {name!r} holds values from {low} to {high}, outside the model's {dtype} "
            "input; check the column, or export the model with a wider integer input"
        ) from None
    return np.asarray(exact.to_numpy(zero_copy_only=False), dtype=dtype)


def _string_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray[Any, Any]:
    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), b"", dtype=object)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        column = pc.cast(column, pa.string())
    filled = pc.fill_null(column, "")
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=object)


def columns_from_table(table: pa.Table | pa.RecordBatch, spec: FeatureSpec) -> dict[str, Any]:
    """One rank-1 array per feature from an Arrow table (missing → NaN or ``""``).

    Raises:
        DataError: a feature column is absent, or a numeric feature holds text.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.features._spec import NumericFeature
        >>> spec = FeatureSpec(features=(NumericFeature("x", "normalize", "impute", 5.0, 0.0),))
        >>> columns_from_table(pa.table({"x": [1, None]}), spec)["x"].tolist()
        [1.0, nan]
    """
    names = table.schema.names
    missing = [f.name for f in spec.features if f.name not in names]
    if missing:
        raise DataError(
            f"data lacks feature columns {missing} that the model needs; it has {names}. "
            "Add the columns (empty values are fine) or retrain without them"
        )
    out: dict[str, Any] = {}
    for feature in spec.features:
        column = table.column(feature.name)
        out[feature.name] = (
            _string_array(column)
            if feature.dtype == "string"
            else _numeric_array(feature.name, column)
        )
    return out


def columns_from_records(records: Sequence[Mapping[str, Any]], spec: FeatureSpec) -> dict[str, Any]:
    """One rank-1 array per feature from JSON records, decoded exactly as the server decodes
    a request's ``instances`` (:func:`mooring.formats._columns.columns_from_rows`): every
    feature present in every record, ``null`` for a missing value, numbers for numeric
    features and strings for text ones.

    Raises:
        InvalidRequestError: a record the server would refuse, naming the field.

    Examples:
        >>> from mooring.features._spec import NumericFeature
        >>> spec = FeatureSpec(features=(NumericFeature("x", "normalize", "impute", 5.0, 0.0),))
        >>> columns_from_records([{"x": 3}, {"x": None}], spec)["x"].tolist()
        [3.0, nan]
    """
    inputs = {
        name: TensorInfo(name, "string" if dtype == "string" else "float32", (None,))
        for name, dtype in spec.input_dtypes().items()
    }
    columns, _ = columns_from_rows(list(records), inputs, where="records")
    return columns


def check_columns(columns: Mapping[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """Assert one rank-1 array per feature, all of the same length; convert dtypes.

    Raises:
        UsageError: a feature is absent, an array is not rank 1 (e.g. ``[n, 1]``),
            or the lengths differ.
    """
    absent = [n for n in spec.names if n not in columns]
    if absent:
        raise UsageError(
            f"inputs lack features {absent}; the model takes {spec.names} (missing values "
            "are NaN for numbers and '' for text)"
        )
    out: dict[str, Any] = {}
    length: int | None = None
    for name, dtype in spec.input_dtypes().items():
        array = np.asarray(columns[name])
        if array.ndim != 1:
            raise UsageError(
                f"input {name!r} has shape {list(array.shape)}; every input must have shape "
                f"[n] (one value per row) — flatten it, e.g. values.reshape(-1) for [n, 1]"
            )
        if length is None:
            length = array.shape[0]
        elif array.shape[0] != length:
            raise UsageError(
                f"input {name!r} has {array.shape[0]} rows but earlier inputs have {length}; "
                "every input needs one value per row"
            )
        if dtype == "string":
            out[name] = array.astype(object) if array.dtype != object else array
        else:
            try:
                out[name] = array.astype(np.float32)
            except (TypeError, ValueError):
                raise UsageError(
                    f"input {name!r} must be numeric (float32, NaN = missing); got dtype "
                    f"{array.dtype}"
                ) from None
    return out


def table_inputs(model: SavedModelFolder, table: pa.Table) -> dict[str, Any]:
    """An imported model's inputs from a table: the column of each input's name, as the
    signature takes it.

    A ``[N]`` or ``[N, 1]`` input takes a plain column (numbers: null is NaN; text: null
    is ``""``); an input of any other shape a list column (Parquet's nested lists, e.g.
    a table of small images), checked against the signature as a request would be.

    Raises:
        DataError: a column is missing, or its values do not fit the input.
    """
    from mooring.errors import InvalidRequestError
    from mooring.formats._tensors import check_shape, tensor_from_values

    missing = [name for name in model.inputs if name not in table.column_names]
    if missing:
        raise DataError(
            f"the data has no column {missing[0]!r} for the model's input of that name "
            f"(inputs: {', '.join(model.inputs)}; columns: {', '.join(table.column_names)})"
        )
    out: dict[str, Any] = {}
    for name, info in model.inputs.items():
        column = table.column(name)
        if info.shape in ((None,), (None, 1)):
            if info.is_string:
                text = pc.fill_null(pc.cast(column, pa.string()), "")
                values: Any = np.array(text.to_pylist(), dtype=object)
            else:
                values = _numeric_array(name, column, info.numpy_dtype()).astype(
                    info.numpy_dtype(), copy=False
                )
            out[name] = values.reshape(-1, 1) if len(info.shape) == 2 else values
            continue
        try:
            array = tensor_from_values(f"column {name!r}", column.to_pylist(), info)
            check_shape(f"column {name!r}", array.shape, info)
        except InvalidRequestError as exc:
            raise DataError(str(exc)) from None
        out[name] = array
    return out


def model_spec(model: SavedModelFolder) -> FeatureSpec:
    """The feature spec a model folder was trained with (``mooring.json``'s ``feature_spec``)."""
    return FeatureSpec.from_dict(model.metadata["feature_spec"])


def predict_saved_model(
    model: SavedModelFolder | str | Path,
    data: pa.Table | Mapping[str, Any],
    *,
    batch_size: int = 8192,
) -> dict[str, Any]:
    """Predict with a model folder from an Arrow table or a mapping of rank-1 arrays.

    The table's columns are converted with the model's own feature spec (from
    ``mooring.json``), exactly as training fed them; an imported model (no feature
    spec) takes the columns of its inputs' names (:func:`table_inputs`) and answers
    with its own outputs plus those its roles name. Returns
    ``{"probabilities", "class_ids", "classes"}`` (classification) or ``{"value"}``
    (regression) as numpy arrays, one row per input row.

    Examples:
        >>> out = predict_saved_model("runs/income/model", table)  # doctest: +SKIP
        >>> out["probabilities"][:, 1]  # doctest: +SKIP
    """
    loaded = model if isinstance(model, SavedModelFolder) else load_saved_model(model)
    if "feature_spec" not in loaded.metadata:  # an imported model: its signature's names
        feed = table_inputs(loaded, data) if isinstance(data, pa.Table) else dict(data)
        outputs = loaded.predict(feed, batch_size=batch_size)
        return role_outputs(loaded.roles, loaded.task, outputs)
    spec = model_spec(loaded)
    columns = columns_from_table(data, spec) if isinstance(data, pa.Table) else data
    return loaded.predict(check_columns(columns, spec), batch_size=batch_size)
