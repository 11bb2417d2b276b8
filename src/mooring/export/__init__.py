"""Export for the edge: TF Lite conversion with calibrated quantization and an accuracy gate.

A registered version's SavedModel is converted with ``tf.lite.TFLiteConverter``
(``float16``, ``dynamic`` or calibrated ``int8``), run with the LiteRT
interpreter on the evaluation rows, scored by the evaluation layer next to the
SavedModel, and attached to the version in the registry only when the metric
drop stays within ``[export] max_metric_drop``::

    result = export_lite(registry, "income", version=3, mode="int8", config=cfg)
    result.passed, result.reason, result.deltas, result.latency

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
