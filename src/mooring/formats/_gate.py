"""A gate decision's JSON form, as every layer reads it.

Evaluation writes it (``GateDecision.to_dict``: ``{"blessed", "gates", "warnings",
"defaults", "ungated"}``), the registry stores it with a version and refuses to deploy a
version it did not bless, and the pipeline, the CLI and the dashboard show it.

A version is *ungated* when no gate judged it: it is not blessed and every recorded gate
(if any) was skipped. Records written before the ``ungated`` key existed are read the
same way, from ``blessed`` and their gates, so the registry's schema is unchanged.

Examples:
    >>> verdict({"blessed": False, "gates": []})
    'ungated'
    >>> verdict({"blessed": False, "gates": [{"name": "auc", "passed": False}]})
    'not blessed'
    >>> verdict(None)
    'unevaluated'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["UNGATED", "Verdict", "is_ungated", "judged_gates", "verdict"]

Verdict = Literal["blessed", "not blessed", "ungated", "unevaluated"]
#: How a version no gate judged is described, everywhere it is shown.
UNGATED = "ungated: no gate judged it"


def judged_gates(decision: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The recorded gates that judged (passed or failed), leaving out the skipped ones."""
    gates = (decision or {}).get("gates")
    if not isinstance(gates, list):
        return []
    return [g for g in gates if isinstance(g, Mapping) and not g.get("skipped")]


def is_ungated(decision: Mapping[str, Any] | None) -> bool:
    """True when a decision exists, did not bless, and no gate judged (all skipped or none)."""
    if not isinstance(decision, Mapping) or decision.get("blessed"):
        return False
    flag = decision.get("ungated")
    if isinstance(flag, bool):
        return flag
    return not judged_gates(decision)


def verdict(decision: Mapping[str, Any] | None) -> Verdict:
    """``blessed``, ``not blessed`` (a gate failed), ``ungated``, or ``unevaluated`` (no
    decision: registered without mooring's evaluation)."""
    if not isinstance(decision, Mapping):
        return "unevaluated"
    if decision.get("blessed"):
        return "blessed"
    return "ungated" if is_ungated(decision) else "not blessed"
