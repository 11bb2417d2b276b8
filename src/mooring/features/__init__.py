"""The feature layer: a feature spec whose state comes from statistics, as Keras layers.

``build_feature_spec`` resolves ``[features]`` against the schema and the
statistics (defaults inferred from the data, vocabularies and boundaries from
the statistics, no pass over the data); ``mooring.features._layers.build_preprocessing``
turns the spec into Keras 3 preprocessing layers (the only module here that imports
Keras, so reading a spec or converting columns never does); ``columns_from_table`` and
``columns_from_records`` convert raw data the same way for training and serving.

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
