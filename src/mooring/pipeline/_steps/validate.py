"""Step 1, validate: the data contract on the training data, and the eval data against it.

:func:`check` is the work (also :meth:`mooring._project.Project.validate`); :func:`run`
is the step: keyed by the data's fingerprints, the read options, the contract, the drift
floors and the code, it rejects the run when the contract fails. The contract is the
project's file (:mod:`mooring.pipeline._contracts`): a file edited without ``mooring
schema accept`` stops the run; a project without one takes production's, else the first
run's inferred contract, and writes it once the data passes.

The eval data's distributions are judged against the training data's as the drift
monitor judges a window (:func:`judge_distributions`): each feature's floors
(``[monitoring.thresholds]``) over the sampling noise at the eval file's row count,
never the time columns, the label or a column the model does not read, and "too few
rows" where the eval file cannot tell a shift of the floors' size from chance. A random
holdout of a small table is therefore not a list of drift warnings.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mooring.config import MooringConfig
from mooring.config._data import ContractConfig
from mooring.config._monitoring import MonitoringConfig
from mooring.contract._anomalies import Anomaly, AnomalyKind, Distance
from mooring.contract._schema import Schema
from mooring.contract._statistics import DatasetStatistics
from mooring.contract._validation import (
    ValidationResult,
    _severity,
    feature_coverage,
    validate_statistics,
)
from mooring.errors import ChecksFailedError
from mooring.formats._drift import METRIC_OF, DriftReport
from mooring.formats._files import atomic_write
from mooring.monitoring._calibration import Calibration
from mooring.monitoring._drift import compare_statistics
from mooring.monitoring._noise import SHARES
from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._contracts import (
    adopt,
    check_reviewed,
    has_registry,
    production_of,
    project_contract,
    version_contract,
)
from mooring.pipeline._fingerprint import digest
from mooring.pipeline._leaks import refuse_overlap
from mooring.pipeline._outputs import ValidateOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._workspace import Workspace
from mooring.scale._statistics import sharded_validate

__all__ = [
    "ProjectValidation",
    "check",
    "distributions_dict",
    "distributions_summary",
    "distributions_verdict",
    "failure",
    "judge_distributions",
    "run",
    "too_few_rows",
]

#: What the eval data's distributions are compared with, as the reports name it.
TRAINING_DATA = "the training data"
#: What a drift anomaly on the eval data advises before raising the floors.
SAME_POPULATION = "check that the data is drawn from the same population"


@dataclass
class ProjectValidation:
    """The data contract checked on the training data and (when configured) the eval data;
    ``distributions`` is the eval data's distributions judged against the training data's
    (:func:`judge_distributions`), ``None`` without eval data."""

    schema: Schema
    statistics: DatasetStatistics
    train: ValidationResult
    eval: ValidationResult | None
    distributions: DriftReport | None = None

    @property
    def ok(self) -> bool:
        return self.train.ok and (self.eval is None or self.eval.ok)

    @property
    def results(self) -> list[ValidationResult]:
        return [r for r in (self.train, self.eval) if r is not None]

    def to_dict(self) -> dict[str, Any]:
        evaluation = None
        if self.eval is not None:
            evaluation = {
                **self.eval.to_dict(),
                "distributions": distributions_dict(self.distributions, TRAINING_DATA),
            }
        return {
            "ok": self.ok,
            "schema_fingerprint": self.schema.fingerprint(),
            "train": self.train.to_dict(),
            "eval": evaluation,
        }

    def render_text(self) -> str:
        lines = [r.render_text() for r in self.results]
        if self.eval is not None:
            lines.append(distributions_summary(self.distributions, TRAINING_DATA, detail=True))
        return "\n".join(lines)


def check(workspace: Workspace) -> ProjectValidation:
    """Check the train data against the contract, and the eval data against train (skew).

    The eval data's distributions are judged as drift is (:func:`judge_distributions`),
    not by the contract's fixed distances. The result is also written to
    ``<home>/reports/validation.json``.
    """
    stats = workspace.statistics("train")
    schema = workspace.schema(stats)
    options = workspace.read_options
    contract = workspace.config.contract
    reads = read_columns(schema, workspace)
    if workspace.schema_inferred_from_statistics():
        # A schema inferred from these very statistics cannot see wrong types or
        # out-of-range values in them: judge the statistics, skip a second read.
        train = validate_statistics(stats, schema, contract=contract, reads=reads)
    else:
        train = sharded_validate(
            str(workspace.data_path("train")),
            schema,
            options=options,
            engine=workspace.engine,
            contract=contract,
            reads=reads,
        )
    # The feature spec must be something this data can feed, before anything trains.
    train.anomalies.extend(feature_coverage(schema, workspace.config.features))
    evaluation = distributions = None
    if workspace.config.data.eval is not None:
        evaluation = sharded_validate(
            str(workspace.data_path("eval")),
            schema,
            options=options,
            engine=workspace.engine,
            baseline=stats,
            contract=contract,
            reads=reads,
        )
        distributions = judge_distributions(
            evaluation, stats, schema, workspace.config, reads=reads
        )
    result = ProjectValidation(
        schema=schema,
        statistics=stats,
        train=train,
        eval=evaluation,
        distributions=distributions,
    )
    atomic_write(
        workspace.home / "reports" / "validation.json",
        orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2),
    )
    return result


def read_columns(schema: Schema, workspace: Workspace) -> set[str]:
    """The contract's columns the project's model reads: all but the timestamp and the
    columns ``[features] exclude`` leaves out (the label is read too)."""
    left_out = {*workspace.config.features.exclude, schema.timestamp}
    return {name for name in schema.columns if name not in left_out}


def judge_distributions(
    result: ValidationResult,
    baseline: DatasetStatistics | None,
    schema: Schema,
    cfg: MooringConfig | None,
    *,
    source: str = TRAINING_DATA,
    calibration: Calibration | None = None,
    reads: Collection[str] | None = None,
    remedy: str = SAME_POPULATION,
) -> DriftReport | None:
    """Replace ``result``'s distribution anomalies and distances by the drift check's
    verdict on its statistics against ``baseline`` (named ``source`` in the messages).

    Each feature is judged by its floors (``[monitoring.thresholds]``, per feature under
    ``[monitoring.features]``) over its sampling noise at ``result``'s row count and the
    natural variation in ``calibration`` when given
    (:func:`~mooring.monitoring._drift.compare_statistics`); never the time columns
    (``[data] timestamp``, any date or time column), the label, ``[features] exclude``
    or a column outside ``reads``. A feature whose tests cannot tell a shift of its
    floors' size from chance on so few rows is "too few rows" in the report, not an
    anomaly. Drift is an anomaly of the contract's severity (an error on a critical
    column), its message naming ``remedy`` before raising the floors. ``None`` when
    ``result`` has no statistics or there is no ``baseline``. Fixed-floor distances judge a
    random 120-row holdout of a 300-row table as 30 drifts; this judges it too small.

    Examples:
        >>> report = judge_distributions(holdout, train_stats, schema, cfg)  # doctest: +SKIP
        >>> report.drifted, report.feature("age").reasons  # doctest: +SKIP
        ([], ['too few rows (120; with this baseline no row count tells a shift ...)'])
    """
    result.anomalies[:] = [a for a in result.anomalies if a.kind != AnomalyKind.DISTRIBUTION_DRIFT]
    result.distances.clear()
    current = result.statistics
    if baseline is None or current is None:
        return None
    contract = cfg.contract if cfg is not None else ContractConfig()
    monitoring = cfg.monitoring if cfg is not None else MonitoringConfig()
    left_out = {schema.label, *(cfg.features.exclude if cfg is not None else ())}
    columns = [
        n
        for n in current.column_names
        if n in baseline.columns and n not in left_out and (reads is None or n in reads)
    ]
    timestamp = (cfg.data.timestamp if cfg is not None else None) or schema.timestamp
    report = compare_statistics(
        baseline,
        current,
        monitoring,
        columns=columns,
        calibration=calibration,
        timestamp=timestamp,
    )
    for feature in report.features:
        for key, floor in feature.thresholds.items():
            metric = METRIC_OF[key]
            value = feature.metrics.get(metric)
            hit = feature.drifted and any(r.startswith(f"{metric} ") for r in feature.reasons)
            # Every distance, and a share (missing, unseen, out of range) where it moved.
            if floor is None or value is None or (key in SHARES and not value and not hit):
                continue
            result.distances.append(Distance(feature.name, metric, value, floor, hit))
        if feature.drifted:
            col = schema.columns.get(feature.name)
            result.anomalies.append(
                Anomaly(
                    AnomalyKind.DISTRIBUTION_DRIFT,
                    _severity(col, contract),
                    feature.name,
                    f"drifted from {source}: {'; '.join(feature.reasons)}; {remedy}, or raise "
                    f"its floors under [monitoring.features.{_toml_key(feature.name)}] if the "
                    "shift is expected",
                )
            )
    return report


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it may be, else quoted.

    >>> _toml_key("age"), _toml_key("hours per week")
    ('age', '"hours per week"')
    """
    if name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def too_few_rows(report: DriftReport) -> dict[str, list[str]]:
    """The features with too few rows, grouped by the reason (its row counts).

    >>> too_few_rows(report)  # doctest: +SKIP
    {'too few rows (120; ...)': ['age', 'fnlwgt']}
    """
    groups: dict[str, list[str]] = {}
    for feature in report.features:
        if feature.status == "insufficient_data" and feature.reasons:
            groups.setdefault(feature.reasons[0], []).append(feature.name)
    return groups


def distributions_dict(report: DriftReport | None, source: str) -> dict[str, Any]:
    """The distribution verdict as ``validation.json`` holds it (``eval.distributions``):
    the reference, the status (``ok``, ``drift``, ``insufficient_data``), the features
    judged and drifted, each too-few-rows feature with its reason, and the notes.

    >>> distributions_dict(None, "the training data")["status"]
    'not_compared'
    """
    if report is None:
        return {"reference": None, "status": "not_compared", "note": "no statistics to compare"}
    return {
        "reference": source,
        "status": report.status,
        "judged": [f.name for f in report.features],
        "drifted": report.drifted,
        "too_few_rows": {
            n: reason for reason, names in too_few_rows(report).items() for n in names
        },
        "notes": report.notes,
    }


def distributions_summary(report: DriftReport | None, source: str, *, detail: bool = False) -> str:
    """The distribution verdict in a line (with ``detail``, one more per too-few-rows reason):
    what drifted, what was judged, and where the rows are too few to tell.

    >>> distributions_summary(None, "the training data")
    'distributions not compared with the training data (no statistics)'
    """
    if report is None:
        return f"distributions not compared with {source} (no statistics)"
    judged, few = len(report.features), too_few_rows(report)
    waiting = sum(len(names) for names in few.values())
    head = distributions_verdict(report)
    if waiting and waiting < judged:
        head += f"; too few rows in {waiting}"
    if waiting and not detail:
        rows = report.window.get("rows")
        head += f" ({rows:,} rows " if isinstance(rows, int) else " ("
        head += "cannot tell a shift of the threshold size from noise)"
    lines = [f"distributions against {source}: {head}"]
    if detail:
        lines += [f"  {', '.join(names)}: {reason}" for reason, names in few.items()]
        lines += [
            f"  {note}"
            for note in report.notes
            if not note.startswith("drift thresholds are not calibrated")
        ]
    return "\n".join(lines)


def distributions_verdict(report: DriftReport) -> str:
    """The distribution verdict's head: what drifted of the features judged, or that too
    few rows judged none (:func:`distributions_summary` and ``mooring validate`` lead with it).

    >>> distributions_verdict(report)  # doctest: +SKIP
    '2 of 20 features drifted (mean area, worst area)'
    """
    judged, drifted = len(report.features), report.drifted
    waiting = sum(len(names) for names in too_few_rows(report).values())
    if drifted:
        return f"{len(drifted)} of {judged} features drifted ({', '.join(drifted)})"
    if waiting == judged and judged:
        return f"not judged: too few rows in all {judged} features"
    return f"no drift in the {judged - waiting} of {judged} features judged"


def failure(result: ProjectValidation, report: Path) -> str:
    """One line for a failed contract: how many errors, the first three, the report."""
    errors = [a for r in result.results for a in r.errors]
    shown = "; ".join(f"{a.column or 'table'}: {a.message}" for a in errors[:3]) + (
        f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    )
    return f"the data contract failed with {len(errors)} error(s): {shown} (report: {report})"


def run(ctx: RunContext, record: StepRecord) -> ValidateOutput:
    """The validate step."""
    cfg, ws = ctx.config, ctx.workspace
    current = project_contract(cfg)
    adopted_from = None
    # A rejected first run leaves no registry behind: it is opened here only if it exists.
    registry = ctx.registry if has_registry(cfg) else None
    if registry is not None:
        try:
            check_reviewed(cfg, registry, current)
        except ChecksFailedError as exc:
            raise RejectedError(str(exc)) from None
    if current is None:
        production = production_of(registry, ctx.name) if registry else None
        if registry is not None and production is not None:
            # A project that predates its contract file takes what production reads.
            found = version_contract(registry.get(ctx.name, version=production))
            adopt(cfg, registry, found.schema, source="production " + found.source)
        else:
            adopted_from = "the training data of run " + ctx.run_id
    # The contract's own fingerprint, not its file's: a first run's inferred contract and
    # the file it then writes are the same key, so the next run reuses this step.
    used = current if current is not None else project_contract(cfg)
    if used is None:
        used = ws.inferred_schema()
    record.inputs = {
        "train_fingerprint": ws.data_fingerprint("train"),
        "eval_fingerprint": ws.data_fingerprint("eval") if cfg.data.eval else None,
        "read": cfg.data.model_dump(mode="json", exclude={"train", "eval", "positive"}),
        "contract": cfg.contract.model_dump(mode="json", by_alias=True),
        "contract_fingerprint": used.fingerprint(),
        # The eval data's distributions are judged with the drift check's floors.
        "drift": _drift_settings(cfg.monitoring) if cfg.data.eval else None,
        "code_version": ctx.code["code_version"],
    }
    record.key = key = digest(record.inputs)
    entry = ctx.reuse(record, "validate", key)
    if entry is not None:
        reused = ValidateOutput.from_dict(entry["outputs"])
        record.message += unlabelled_summary(reused, cfg.data.label or used.label)
        return reused
    # Train = eval, or eval rows that are training rows: refused before anything else.
    overlap = refuse_overlap(ws)
    result = check(ws)
    ctx.use_statistics(result.statistics)
    report = ctx.home / "reports" / "validation.json"
    if not result.ok:
        errors = [a for r in result.results for a in r.errors]
        record.outputs = {"ok": False, "errors": len(errors), "report": str(report)}
        raise RejectedError(failure(result, report))
    if adopted_from is not None:
        # The first run's contract, inferred from data that passed: the project's own now.
        adopt(cfg, ctx.registry, ws.inferred_schema(result.statistics), source=adopted_from)
    elif current is not None:
        # A contract file kept with the project, met by a new registry: audited as adopted.
        adopt(cfg, ctx.registry, current, source="the project's contract file")
    warnings = sum(len(r.warnings) for r in result.results)
    label = cfg.data.label or result.schema.label
    evaluated = result.eval.statistics if result.eval is not None else None
    output = ValidateOutput(
        ok=True,
        rows=result.statistics.num_rows,
        eval_rows=result.eval.num_rows if result.eval is not None else None,
        unlabelled=_unlabelled(result.statistics, label),
        eval_unlabelled=_unlabelled(evaluated, label) if evaluated is not None else 0,
        warnings=warnings,
        schema_fingerprint=result.schema.fingerprint(),
        statistics_hash=digest(result.statistics.to_dict()),
        report=str(report),
    )
    record.status, record.reusable = "done", True
    record.message = f"contract ok ({warnings} warning(s))"
    if result.eval is not None:
        record.message += "; eval " + distributions_summary(result.distributions, TRAINING_DATA)
    if overlap is not None and overlap["shared"]:
        record.message += (
            f"; {overlap['shared']:,} eval row(s) ({overlap['share']:.2%}) also in the "
            "training data"
        )
    record.message += unlabelled_summary(output, label)
    return output


def _unlabelled(statistics: DatasetStatistics, label: str | None) -> int:
    """Rows of ``statistics``' data without a label (none when it has no such column)."""
    return statistics[label].missing if label is not None and label in statistics else 0


def unlabelled_summary(output: ValidateOutput, label: str | None) -> str:
    """What the console says of the rows left out for want of a label ("" for none).

    >>> unlabelled_summary(ValidateOutput(ok=True, report="", rows=277, unlabelled=45), "price")
    "; dropped 45 of 277 training rows with no label in 'price'"
    """
    parts = [
        f"dropped {missing:,} of {rows:,} {what} rows with no label in {label!r}"
        for what, missing, rows in (
            ("training", output.unlabelled, output.rows),
            ("eval", output.eval_unlabelled, output.eval_rows),
        )
        if missing and rows is not None
    ]
    return "".join(f"; {part}" for part in parts)


def _drift_settings(config: MonitoringConfig) -> dict[str, Any]:
    """What of ``[monitoring]`` the eval data's distributions are judged by (the step's key)."""
    used = {"bins", "rare_share", "thresholds", "features"}
    return config.model_dump(
        mode="json", include=used | {"calibration_margin", "calibration_quantile"}
    )
