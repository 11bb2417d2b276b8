"""The training layer: tf.data from Arrow, model builders, fit, checkpoints, export, parity.

``train_model`` turns a config and the training statistics into ONE SavedModel
(preprocessing inside) with ``mooring.json`` beside it; the folder is read back
with :func:`mooring.formats._model.load_saved_model`.

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
