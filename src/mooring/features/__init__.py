"""The feature layer: a feature spec whose state comes from statistics, as Keras layers.

``build_feature_spec`` resolves ``[features]`` against the schema and the
statistics (defaults inferred from the data, vocabularies and boundaries from
the statistics, no pass over the data); ``build_preprocessing`` turns the spec
into Keras 3 preprocessing layers; ``columns_from_table`` and
``columns_from_records`` convert raw data the same way for training and serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mooring.features.infer import FeatureWarning, build_feature_spec, quantile_boundaries
from mooring.features.inputs import (
    check_columns,
    columns_from_records,
    columns_from_table,
    input_value,
    model_spec,
    predict_saved_model,
)
from mooring.features.spec import (
    CategoricalFeature,
    CrossFeature,
    Feature,
    FeatureSpec,
    NumericFeature,
)

if TYPE_CHECKING:
    from mooring.features.layers import build_inputs, build_preprocessing

__all__ = [
    "CategoricalFeature",
    "CrossFeature",
    "Feature",
    "FeatureSpec",
    "FeatureWarning",
    "NumericFeature",
    "build_feature_spec",
    "build_inputs",
    "build_preprocessing",
    "check_columns",
    "columns_from_records",
    "columns_from_table",
    "input_value",
    "model_spec",
    "predict_saved_model",
    "quantile_boundaries",
]


def __getattr__(name: str) -> Any:
    # The Keras layers load on first use, so reading a feature spec or converting
    # columns (evaluation, monitoring, the server) never imports Keras.
    if name in ("build_inputs", "build_preprocessing"):
        from mooring.features import layers

        return getattr(layers, name)
    raise AttributeError(f"module 'mooring.features' has no attribute {name!r}")
