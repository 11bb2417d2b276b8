"""Evaluation: metrics, slices, calibration, thresholds, cost, windows and gates.

The core works on arrays (labels and predictions) plus, optionally, the evaluation rows'
raw columns for slices and time windows::

    result = evaluate(task="binary", labels=y, scores=p, table=table, config=cfg.evaluation)
    decision = decide(result, baseline=production_result)
    result.save(folder, decision)           # report.json (the dashboard renders the HTML)
    decision.to_dict()                      # {"blessed": ..., "gates": [...], "warnings": [...]}

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
