"""The feature layer: a feature spec whose state comes from statistics, as Keras layers.

``build_feature_spec`` resolves ``[features]`` against the schema and the
statistics (defaults inferred from the data, vocabularies and boundaries from
the statistics, no pass over the data); ``mooring.features.layers.build_preprocessing``
turns the spec into Keras 3 preprocessing layers (the only module here that imports
Keras, so reading a spec or converting columns never does); ``columns_from_table`` and
``columns_from_records`` convert raw data the same way for training and serving.
"""

from __future__ import annotations

from mooring.features.infer import FeatureWarning, build_feature_spec, quantile_boundaries
from mooring.features.inputs import (
    check_columns,
    columns_from_records,
    columns_from_table,
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

__all__ = [
    "CategoricalFeature",
    "CrossFeature",
    "Feature",
    "FeatureSpec",
    "FeatureWarning",
    "NumericFeature",
    "build_feature_spec",
    "check_columns",
    "columns_from_records",
    "columns_from_table",
    "model_spec",
    "predict_saved_model",
    "quantile_boundaries",
]
