"""The model card: a Markdown page generated from what a version records.

Sections: intended use, data (lineage and training statistics), metrics overall
and per slice, calibration, gate results, training, limitations. Inputs are
plain mappings, so the card renders whatever the evaluation layer recorded:
scalars become table rows, per-slice mappings become one row per slice.
:meth:`mooring.registry.Registry.register` stores the card once, at registration,
when its caller passes this renderer as ``render_card`` (it is a
:class:`~mooring.registry.CardRenderer`); the registry itself renders nothing.

Examples:
    >>> card = render_model_card(name="income", version=3, created_at="2024-01-01T00:00:00+00:00",
    ...     created_by="ana", lineage={}, metrics={"overall": {"auc": 0.91}}, gate=None,
    ...     statistics=None, params={})
    >>> "| auc | 0.91 |" in card
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mooring.dashboard._version_facts import model_kind
from mooring.evaluation._gates import describe_bound
from mooring.formats._gate import UNGATED, DecisionRecord, verdict
from mooring.formats._lineage import Lineage

__all__ = ["render_model_card"]

_DEFAULT_LIMITATIONS = (
    "Trained and evaluated only on the data described above; performance on populations "
    "or time periods not represented there is unknown.",
    "Metrics per slice with few examples are noisy; check the slice sizes before acting on them.",
    "Monitor drift against the training statistics recorded with this version.",
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if value is None:
        return "—"
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _scalars(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _kv_table(
    data: Mapping[str, Any], key: str = "metric", value: str = "value", *, ordered: bool = True
) -> list[str]:
    items = sorted(data.items()) if ordered else list(data.items())
    return _table([key, value], items)


def _slice_rows(slices: Any) -> list[tuple[str, dict[str, Any]]]:
    """Accept {feature: {value: metrics}}, {"feature=value": metrics} or a list of records."""
    rows: list[tuple[str, dict[str, Any]]] = []
    if isinstance(slices, Mapping):
        for feature, inner in slices.items():
            if not isinstance(inner, Mapping):
                continue
            nested = {k: v for k, v in inner.items() if isinstance(v, Mapping)}
            if nested:
                rows += [(f"{feature}={value}", _scalars(m)) for value, m in nested.items()]
            else:
                rows.append((str(feature), _scalars(inner)))
    elif isinstance(slices, Sequence) and not isinstance(slices, str):
        for item in slices:
            if not isinstance(item, Mapping):
                continue
            label = item.get("slice") or "=".join(
                str(item[k]) for k in ("feature", "value") if k in item
            )
            inner = item.get("metrics")
            values: Mapping[str, Any] = inner if isinstance(inner, Mapping) else item
            scalars = {
                k: v for k, v in _scalars(values).items() if k not in {"slice", "feature", "value"}
            }
            rows.append((str(label), scalars))
    return rows


def _metrics_section(metrics: Mapping[str, Any]) -> list[str]:
    out = ["## Metrics", ""]
    overall = metrics.get("overall")
    overall_scalars = _scalars(overall) if isinstance(overall, Mapping) else _scalars(metrics)
    if overall_scalars:
        out += ["### Overall", "", *_kv_table(overall_scalars), ""]
    slice_rows = _slice_rows(metrics.get("slices"))
    if slice_rows:
        columns = sorted({k for _, values in slice_rows for k in values})[:8]
        out += ["### Per slice", ""]
        out += _table(
            ["slice", *columns], [(label, *(v.get(c) for c in columns)) for label, v in slice_rows]
        )
        out.append("")
    calibration = metrics.get("calibration")
    if isinstance(calibration, Mapping) and _scalars(calibration):
        out += ["### Calibration", "", *_kv_table(_scalars(calibration)), ""]
    if len(out) == 2:
        out += ["No evaluation metrics were recorded for this version.", ""]
    return out


def _gate_section(gate: Mapping[str, Any] | None) -> list[str]:
    out = ["## Gate results", ""]
    if gate is None:
        return [*out, "No gate was evaluated: this version is **not blessed**.", ""]
    decision = DecisionRecord.of(gate)
    shown = verdict(decision)
    if shown == "ungated":
        out += [f"Decision: **ungated** ({UNGATED}): this version is **not blessed**.", ""]
    else:
        out += [f"Decision: **{shown}**", ""]
    waived = decision.waived if decision is not None else []
    if waived:
        out += [
            f"**{len(waived)} gate(s) comparing with production were waived**: "
            f"{waived[0].waived} (the audit log's `waive` event names who waived them).",
            "",
        ]
    if decision is not None and decision.gates:
        rows = [
            (
                g.name,
                g.value,
                describe_bound(g.bound),
                f"waived: {g.waived} (production {g.baseline})"
                if g.waived
                else (
                    f"skipped: {g.message.removeprefix('skipped:').strip()}"
                    if g.skipped
                    else ("pass" if g.passed else "FAIL")
                ),
            )
            for g in decision.gates
        ]
        out += [*_table(["gate", "value", "bound", "result"], rows), ""]
    return out


def _data_section(lineage: Lineage, statistics: Mapping[str, Any] | None) -> list[str]:
    out = ["## Data", ""]
    shown = lineage.data
    if shown:
        out += [*_kv_table(shown, "item", "value"), ""]
    if statistics:
        rows = statistics.get("num_rows", statistics.get("rows"))
        columns = statistics.get("columns")
        count = len(columns) if isinstance(columns, Mapping | Sequence) else None
        out.append(
            f"Training statistics are stored with this version (rows: {_fmt(rows)}, "
            f"columns: {_fmt(count)}) and are the drift baseline for monitoring."
        )
        out.append("")
    elif not shown:
        out += ["No data lineage was recorded.", ""]
    return out


def describe_threshold(threshold: float | None, source: str | None) -> str | None:
    """A version's operating threshold and how it was set, for people; None without one.

    A binary classifier's ``classes`` are answered at it. Example::

        >>> describe_threshold(0.18, "f1_optimal")
        '0.18 (f1_optimal: chosen on the evaluation data; binary classes are answered at it)'
    """
    if threshold is None:
        return None
    if source in (None, "configured"):
        how = "configured, not chosen on the evaluation data"
    else:
        how = f"{source}: chosen on the evaluation data"
    return f"{threshold:.4g} ({how}; binary classes are answered at it)"


def render_model_card(  # noqa: PLR0913 (the CardRenderer protocol's keywords, one per fact)
    *,
    name: str,
    version: int,
    created_at: str,
    created_by: str,
    lineage: Mapping[str, Any],
    metrics: Mapping[str, Any] | None,
    gate: Mapping[str, Any] | None,
    statistics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    description: str | None = None,
    intended_use: str | None = None,
    limitations: Sequence[str] | None = None,
    parent_version: int | None = None,
    threshold: float | None = None,
    threshold_source: str | None = None,
) -> str:
    """Render the Markdown model card of one version (``threshold``: the operating
    threshold registered with it, ``threshold_source`` how it was chosen).

    Example::

        registry.register("income", export_dir,
                          VersionRecord(lineage=lineage, metrics=metrics),
                          render_card=render_model_card)
    """
    recorded = Lineage.read(lineage)
    out = [f"# Model card: {name} version {version}", ""]
    if description:
        out += [description, ""]
    facts: dict[str, Any] = {
        "registered": created_at,
        "by": created_by,
        "parent version": parent_version,
        "model kind": model_kind(params),
        "candidate": (params or {}).get("candidate"),
    }
    operating = describe_threshold(threshold, threshold_source)
    if operating is not None:  # a version with none (regression, imported) shows no row
        facts["operating threshold"] = operating
    facts |= {
        "code version": recorded.code_version,
        "mooring": recorded.mooring_version,
        "TensorFlow": recorded.tensorflow_version,
        "Keras": recorded.keras_version,
    }
    out += _kv_table(facts, "item", "value", ordered=False)
    out += ["", "## Intended use", ""]
    out += [
        intended_use
        or (
            f"Scores new records with the same columns and meaning as the training data of "
            f"'{name}'. Not validated for decisions about populations outside that data."
        ),
        "",
    ]
    out += _data_section(recorded, statistics)
    out += _metrics_section(metrics or {})
    out += _gate_section(gate)
    if params:
        out += ["## Training", "", *_kv_table(_scalars(params), "parameter", "value"), ""]
    out += ["## Limitations", ""]
    out += [f"- {item}" for item in (limitations or _DEFAULT_LIMITATIONS)]
    out.append("")
    return "\n".join(out)
