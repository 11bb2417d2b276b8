"""Export for the edge: TF Lite conversion with calibrated quantization and an accuracy gate.

A registered version's SavedModel is converted with ``tf.lite.TFLiteConverter``
(``float16``, ``dynamic`` or calibrated ``int8``), run with the LiteRT
interpreter on the evaluation rows, scored by the evaluation layer next to the
SavedModel, and attached to the version in the registry only when the metric
drop stays within ``[export] max_metric_drop``::

    result = export_lite(registry, "income", version=3, mode="int8", config=cfg)
    result.passed, result.reason, result.deltas, result.latency
"""

from __future__ import annotations

from mooring.export.convert import MODES, Conversion, Mode, check_mode, convert_saved_model
from mooring.export.data import distinct_rows, sample_rows
from mooring.export.lite import DEFAULT_METRICS, export_lite
from mooring.export.result import AGREEMENT_TOLERANCE, LiteExport
from mooring.export.runtime import LiteModel

__all__ = [
    "AGREEMENT_TOLERANCE",
    "DEFAULT_METRICS",
    "MODES",
    "Conversion",
    "LiteExport",
    "LiteModel",
    "Mode",
    "check_mode",
    "convert_saved_model",
    "distinct_rows",
    "export_lite",
    "sample_rows",
]
