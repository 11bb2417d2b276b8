"""Step 1, validate: the data contract on the training data, and the eval data against it.

:func:`check` is the work (also :meth:`mooring._project.Project.validate`); :func:`run`
is the step: keyed by the data's fingerprints, the read options, the contract and the
code, it rejects the run when the contract fails. The contract is the project's file
(:mod:`mooring.pipeline._contracts`): a file edited without ``mooring schema accept``
stops the run; a project without one takes production's, else the first run's
inferred contract, and writes it once the data passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mooring.contract._schema import Schema
from mooring.contract._statistics import DatasetStatistics
from mooring.contract._validation import (
    ValidationResult,
    feature_coverage,
    validate_statistics,
)
from mooring.errors import ChecksFailedError
from mooring.formats._files import atomic_write
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
from mooring.pipeline._outputs import ValidateOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._workspace import Workspace
from mooring.scale._statistics import sharded_validate

__all__ = ["ProjectValidation", "check", "failure", "run"]


@dataclass
class ProjectValidation:
    """The data contract checked on the training data and (when configured) the eval data."""

    schema: Schema
    statistics: DatasetStatistics
    train: ValidationResult
    eval: ValidationResult | None

    @property
    def ok(self) -> bool:
        return self.train.ok and (self.eval is None or self.eval.ok)

    @property
    def results(self) -> list[ValidationResult]:
        return [r for r in (self.train, self.eval) if r is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "schema_fingerprint": self.schema.fingerprint(),
            "train": self.train.to_dict(),
            "eval": self.eval.to_dict() if self.eval is not None else None,
        }

    def render_text(self) -> str:
        return "\n".join(r.render_text() for r in self.results)


def check(workspace: Workspace) -> ProjectValidation:
    """Check the train data against the contract, and the eval data against train (skew).

    The result is also written to ``<home>/reports/validation.json``.
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
    evaluation = None
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
    result = ProjectValidation(schema=schema, statistics=stats, train=train, eval=evaluation)
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
        "code_version": ctx.code["code_version"],
    }
    record.key = key = digest(record.inputs)
    entry = ctx.reuse(record, "validate", key)
    if entry is not None:
        return ValidateOutput.from_dict(entry["outputs"])
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
    output = ValidateOutput(
        ok=True,
        rows=result.statistics.num_rows,
        eval_rows=result.eval.num_rows if result.eval is not None else None,
        warnings=warnings,
        schema_fingerprint=result.schema.fingerprint(),
        statistics_hash=digest(result.statistics.to_dict()),
        report=str(report),
    )
    record.status, record.reusable = "done", True
    record.message = f"contract ok ({warnings} warning(s))"
    return output
