"""``mooring stats``, ``mooring schema infer|diff|accept``, ``mooring validate``: the data
contract."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mooring._project import Project
from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.cli._engine import EngineOpt, RayAddressOpt, WorkersOpt, engine_from
from mooring.config import MooringConfig, load_config
from mooring.config._data import ContractConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.contract._validation import ENVIRONMENTS, ValidationResult
from mooring.errors import NotFoundError, UsageError
from mooring.scale._shards import list_shards
from mooring.scale._statistics import sharded_validate

if TYPE_CHECKING:
    from mooring.contract._diff import SchemaDiff
    from mooring.formats._drift import DriftReport
    from mooring.monitoring._calibration import Calibration
    from mooring.pipeline._contracts import Reference

schema_app = typer.Typer(help="Infer and inspect data contracts (schemas).", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="mooring.toml to take read options from.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DelimOpt = Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter (default ',').")]
NaOpt = Annotated[
    list[str] | None,
    typer.Option("--na-value", help="A token that means missing (repeatable), e.g. '?'."),
]


def _options(config: Path | None, delimiter: str | None, na: list[str] | None) -> ReadOptions:
    options = ReadOptions.from_config(load_config(config).data) if config else ReadOptions()
    if delimiter is not None:
        if len(delimiter) != 1:
            raise UsageError(f"--delimiter must be one character, got {delimiter!r}")
        options = replace(options, delimiter=delimiter)
    if na:
        options = replace(options, na_values=(*options.na_values, *na))
    return options


def _print_stats(stats: DatasetStatistics) -> None:
    """One row per column; names and types whole, the values wrapped between words (on 80
    columns a fold would split "Some-college" or "marital-status" in two)."""
    console.print(escape(f"{stats.source} — {stats.num_rows:,} rows"))
    table = Table()
    table.add_column("column", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("missing")
    table.add_column("values", ratio=1)
    for name, col in stats.columns.items():
        missing = f"{col.missing:,} ({100 * col.null_fraction:.1f}%)"
        if col.numeric is not None and col.numeric.count:
            n = col.numeric
            values = (
                f"min {n.min:g}, mean {n.mean:.4g}, max {n.max:g}, p50 {n.quantiles([0.5])[0]:g}"
            )
        elif col.strings is not None:
            top = ", ".join(f"{v} ({c:,})" for v, c in col.strings.top(3))
            values = f"{col.strings.distinct:,} distinct: {top}"
        else:
            values = ""
        table.add_row(escape(name), col.type, missing, escape(values))
    console.print(table)


@app.command(
    "stats",
    epilog="Examples: mooring stats data.csv --na-value '?' --out stats.json   |   "
    "mooring stats 's3://bucket/features/*.parquet' --engine ray --ray-address auto",
)
def stats_command(
    data: Annotated[
        list[str],
        typer.Argument(
            help="CSV or Parquet file(s), folder(s) of them or glob(s), local or fsspec URLs."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write statistics JSON here.")
    ] = None,
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compute one-pass, mergeable statistics of a dataset (one file or many shards)."""
    from mooring.scale._statistics import sharded_statistics

    project = load_config(config).project if config else None
    chosen = engine_from(project, engine, workers, ray_address)
    source = data[0] if len(data) == 1 else data
    stats = sharded_statistics(source, _options(config, delimiter, na_value), engine=chosen)
    if out is not None:
        stats.save(out)
    if as_json:
        print_json(stats.to_dict())
    else:
        _print_stats(stats)
        if out is not None:
            console.print(f"statistics written to {out}")


@schema_app.command("infer", epilog="Example: mooring schema infer train.csv --label class")
def schema_infer_command(
    data: Annotated[str, typer.Argument(help="CSV/Parquet file, or a statistics JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Schema file to write.")] = Path(
        "schema.yaml"
    ),
    label: Annotated[str | None, typer.Option("--label", help="The label column.")] = None,
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Infer a schema (the data contract) and save it as editable YAML."""
    contract = ContractConfig()
    timestamp = None
    if config is not None:
        cfg = load_config(config)
        contract, timestamp = cfg.contract, cfg.data.timestamp
        label = label or cfg.data.label
    if data.endswith(".json"):
        stats = DatasetStatistics.load(data)
    else:
        stats = compute_statistics(data, _options(config, delimiter, na_value))
    schema = infer_schema(stats, label=label, timestamp=timestamp, contract=contract)
    schema.save(out)
    if as_json:
        print_json(schema.to_dict())
    else:
        console.print(f"schema with {len(schema.columns)} columns written to {out}")


def _print_result(result: ValidationResult) -> None:
    style = "green" if result.ok else "red"
    head, *rest = result.render_text().split("\n")
    console.print(f"[{style}]{head}[/]")
    for line in rest:
        console.print(line, markup=False)


EnvironmentOpt = Annotated[
    str,
    typer.Option(
        "--environment",
        help="training: the label is required; serving: request data, the label is absent.",
    ),
]


@app.command(
    "validate",
    epilog=(
        "Examples: mooring validate new.csv (inside a project: against production's contract)"
        "   |   mooring validate new.csv --against 3   |   "
        "mooring validate new.csv --schema schema.yaml --baseline train-stats.json"
    ),
)
def validate_command(
    data: Annotated[
        list[str] | None,
        typer.Argument(
            help="Data to check: file(s), folder(s) or glob(s) of shards; omit to check the "
            "project's data."
        ),
    ] = None,
    schema: Annotated[
        Path | None, typer.Option("--schema", help="Check against this schema YAML instead.")
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Check against a registered version's contract: a number or an alias "
            "(production, canary).",
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Statistics JSON to compare with (skew).")
    ] = None,
    environment: EnvironmentOpt = "training",
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check data against the project's contract: production's, else contract/schema.yaml.

    Every anomaly at once, each with the column, what was seen, what was expected and
    the fix. Exit 0: no errors (warnings allowed); 1: error-level anomalies; 2: usage.
    """
    if environment not in ENVIRONMENTS:
        raise UsageError(
            f"--environment {environment!r} is not one of {list(ENVIRONMENTS)}: 'training' "
            "for data with labels, 'serving' for request data without them"
        )
    if data is None:
        if schema is not None or against is not None:
            raise UsageError("--schema and --against check files: name the file(s) to check")
        if config is None:
            if not Path("mooring.toml").is_file():
                raise UsageError(
                    "give a data file, or --config mooring.toml to validate the project's data"
                )
            config = Path("mooring.toml")
        project = Project.load(config)
        if engine is not None or workers is not None or ray_address is not None:
            project = project.with_engine(engine_from(None, engine, workers, ray_address))
        raise typer.Exit(_validate_project(project, as_json=as_json))
    if schema is not None and against is not None:
        raise UsageError("give --schema FILE or --against VERSION, not both")
    if config is None and Path("mooring.toml").is_file():
        config = Path("mooring.toml")
    cfg = load_config(config) if config else None
    contract = cfg.contract if cfg is not None else ContractConfig()
    options = _options(config, delimiter, na_value)
    if cfg is not None:
        # In a project the files come first: a mistyped path is named before production's
        # contract is looked up in the registry.
        list_shards(data)
    ref = _reference(cfg, schema, against)
    distributions = _distribution_reference(cfg, baseline, against)
    result = sharded_validate(
        data[0] if len(data) == 1 else data,
        ref.schema,
        options=options,
        engine=engine_from(cfg.project if cfg else None, engine, workers, ray_address),
        # An explicit baseline also bounds the row count; production's training data
        # does not (a month of requests is not a training set).
        baseline=distributions.statistics if baseline is not None else None,
        contract=contract,
        reads=ref.reads,
        environment=environment,
    )
    report = _judge_distributions(result, distributions, ref.schema, cfg, ref.reads)
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "reference": ref.source,
                "environment": environment,
                "distributions": _distributions_dict(distributions, report),
            }
        )
    else:
        console.print(f"against {ref.source}", markup=False)
        _print_result(result)
        _print_distributions(distributions, report)
    raise typer.Exit(0 if result.ok else 1)


def _validate_project(project: Project, *, as_json: bool) -> int:
    """The project's data: train against the contract, eval against train; the exit code."""
    checked = project.validate()
    cfg = project.workspace.config
    train = _Distributions(checked.statistics, None, "the training data's statistics")
    report = None
    if checked.eval is not None:
        # The eval data against the training data, judged as drift is: floors over
        # sampling noise, never the time axis, "too few rows" where so.
        report = _judge_distributions(checked.eval, train, checked.schema, cfg)
    if as_json:
        data = checked.to_dict()
        if checked.eval is not None:
            data["eval"]["distributions"] = _distributions_dict(train, report)
        print_json(data)
    else:
        for result in checked.results:
            _print_result(result)
        if checked.eval is not None:
            _print_distributions(train, report)
    return 0 if checked.ok else 1


@dataclass(frozen=True)
class _Distributions:
    """What a file's distributions are compared with (``statistics``; None: nothing, and
    ``source`` says why), and the natural variation measured in its training data."""

    statistics: DatasetStatistics | None
    calibration: Calibration | None
    source: str


def _distribution_reference(
    cfg: MooringConfig | None, baseline: Path | None, against: str | None
) -> _Distributions:
    """``--baseline`` when given; else the training statistics of the version checked
    against (``--against``, or production), stored with it at registration, with its
    drift calibration; else the project's training statistics; else nothing."""
    if baseline is not None:
        return _Distributions(DatasetStatistics.load(baseline), None, f"--baseline {baseline}")
    if cfg is None:
        return _Distributions(
            None,
            None,
            "not compared: no project and no --baseline; pass --baseline STATS.json "
            "(`mooring stats TRAIN --out STATS.json` writes one)",
        )
    from mooring.monitoring._baselines import calibration_for
    from mooring.pipeline._contracts import open_registry, production_of

    registry = open_registry(cfg)
    if registry is not None:
        with registry:
            name = cfg.project.name
            which = against if against is not None else production_of(registry, name)
            if which is not None:
                text = str(which).removeprefix("v")
                mv = (
                    registry.get(name, version=int(text))
                    if text.isdigit()
                    else registry.get(name, alias=str(which))
                )
                if mv.statistics is not None:
                    calibration, _ = calibration_for(cfg, mv)
                    role = "production " if against is None else ""
                    return _Distributions(
                        DatasetStatistics.from_dict(mv.statistics),
                        calibration,
                        f"{role}v{mv.version}'s training statistics (stored with it)",
                    )
    stored = cfg.home / "statistics" / "train.json"
    if stored.is_file():
        return _Distributions(
            DatasetStatistics.load(stored),
            None,
            f"the project's training statistics ({_shown(stored, cfg)})",
        )
    return _Distributions(
        None,
        None,
        "not compared: no production version and no training statistics yet "
        "(`mooring run` registers them); pass --baseline STATS.json to compare",
    )


def _shown(path: Path, cfg: MooringConfig) -> str:
    try:
        return path.relative_to(cfg.path(".")).as_posix()
    except ValueError:
        return str(path)


def _judge_distributions(
    result: ValidationResult,
    reference: _Distributions,
    schema: Schema,
    cfg: MooringConfig | None,
    reads: frozenset[str] | None = None,
) -> DriftReport | None:
    """Replace the result's distribution anomalies by the drift check's verdict against
    ``reference`` (:func:`~mooring.pipeline._steps.validate.judge_distributions`: floors
    over each feature's sampling noise and the reference's natural variation, never the
    time columns, the label or columns the model does not read, "too few rows" where the
    file cannot tell a shift of the floors' size from noise)."""
    from mooring.pipeline._steps.validate import judge_distributions

    report = judge_distributions(
        result,
        reference.statistics,
        schema,
        cfg,
        source=reference.source,
        calibration=reference.calibration,
        reads=reads,
        remedy="investigate the source",
    )
    if report is not None:
        result.baseline_source = reference.source
    return report


def _distributions_dict(reference: _Distributions, report: DriftReport | None) -> dict[str, Any]:
    from mooring.pipeline._steps.validate import distributions_dict

    if report is None:
        return {"reference": None, "status": "not_compared", "note": reference.source}
    return distributions_dict(report, reference.source)


def _print_distributions(reference: _Distributions, report: DriftReport | None) -> None:
    from mooring.pipeline._steps.validate import distributions_verdict, too_few_rows

    if report is None:
        shown = reference.source if reference.statistics is None else "not compared"
        console.print(f"distributions {shown}", markup=False)
        return
    head = distributions_verdict(report)
    console.print(f"distributions against {reference.source}: {head}", markup=False)
    for reason, names in too_few_rows(report).items():
        console.print(f"  {', '.join(names)}: {reason}", markup=False, soft_wrap=True)
    for note in report.notes:
        if not note.startswith("drift thresholds are not calibrated"):
            console.print(f"  {note}", markup=False, soft_wrap=True)


def _reference(cfg: MooringConfig | None, schema: Path | None, against: str | None) -> Reference:
    from mooring.pipeline._contracts import Reference, reference

    if schema is not None:
        contract = cfg.contract if cfg is not None else ContractConfig()
        return Reference(Schema.load(schema).with_overrides(contract), str(schema))
    if cfg is None:
        raise UsageError(
            "no contract to check against: run inside a project (a mooring.toml here, or "
            "-c path/to/mooring.toml), or pass --schema schema.yaml (`mooring schema infer` "
            "writes one)"
        )
    return reference(cfg, against=against)


def _side(spec: str, cfg: MooringConfig | None, options: ReadOptions) -> Reference:
    """One side of a diff: a schema file, a statistics JSON, a data file, or a version."""
    from mooring.pipeline._contracts import Reference, open_registry, version_contract

    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        return Reference(Schema.load(path), spec)
    contract = cfg.contract if cfg is not None else ContractConfig()
    label = cfg.data.label if cfg is not None else None
    timestamp = cfg.data.timestamp if cfg is not None else None
    if path.suffix == ".json" and path.is_file():
        stats = DatasetStatistics.load(path)
        return Reference(
            infer_schema(stats, label=label, timestamp=timestamp, contract=contract), spec
        )
    if path.exists() or any(ch in spec for ch in "*?/") or "://" in spec:
        stats = compute_statistics(spec, options)
        inferred = infer_schema(stats, label=label, timestamp=timestamp, contract=contract)
        return Reference(inferred, f"{spec} (inferred)")
    if cfg is None:
        raise UsageError(
            f"{spec!r} is not a file; to name a registered version, run inside a project "
            "(or pass -c mooring.toml)"
        )
    registry = open_registry(cfg)
    if registry is None:
        raise UsageError(
            f"{spec!r} is not a file, and the project has no registry yet to hold a "
            "version of that name; pass a schema, statistics or data file"
        )
    with registry:
        text = spec.removeprefix("v")
        try:
            mv = (
                registry.get(cfg.project.name, version=int(text))
                if text.isdigit()
                else registry.get(cfg.project.name, alias=spec)
            )
        except NotFoundError as exc:
            raise UsageError(
                f"{spec!r} is neither a file nor a version of {cfg.project.name} ({exc})"
            ) from None
        found = version_contract(mv)
        if text.isdigit():
            return found
        return Reference(found.schema, f"{spec} {found.source}", found.reads)


def _diff_table(diff: SchemaDiff) -> Table:
    table = Table(title=f"{diff.before} → {diff.after}", title_justify="left")
    for header in ("change", "column", "before", "after", "breaking"):
        table.add_column(header, overflow="fold")
    for change in diff.changes:
        before, after = change.before, change.after
        if change.kind == "domain":
            # The values that left and the ones that came, not both whole domains.
            before = [f"-{v}" for v in sorted(set(before or ()) - set(after or ()))]
            after = [f"+{v}" for v in sorted(set(after or ()) - set(change.before or ()))]
        table.add_row(
            change.kind,
            change.column or "-",
            _short(before),
            _short(after),
            "[red]yes[/]" if change.breaking else "no",
        )
    return table


def _short(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list) and len(value) > 6:
        return escape(", ".join(map(str, value[:6])) + f", … ({len(value)})")
    if isinstance(value, list):
        return escape(", ".join("-" if v is None else str(v) for v in value))
    return escape(str(value))


def _print_diff(diff: SchemaDiff) -> None:
    if diff.empty:
        console.print(diff.summary(), markup=False)
        return
    console.print(_diff_table(diff))
    style = "red" if diff.breaking else "green"
    console.print(f"[{style}]{escape(diff.summary())}[/]")


@schema_app.command(
    "diff",
    epilog="Examples: mooring schema diff production new.csv   |   "
    "mooring schema diff 3 contract/schema.yaml --json",
)
def schema_diff_command(
    before: Annotated[
        str,
        typer.Argument(
            help="A registered version (3, v3, production, canary), a schema YAML, a "
            "statistics JSON or a data file."
        ),
    ],
    after: Annotated[str, typer.Argument(help="The same kinds as BEFORE.")],
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed between two contracts: columns added, removed, renamed, retyped, domains,
    ranges and null policies; breaking changes marked."""
    from mooring.contract._diff import diff_schemas

    if config is None and Path("mooring.toml").is_file():
        config = Path("mooring.toml")
    cfg = load_config(config) if config else None
    options = _options(config, delimiter, na_value)
    a, b = _side(before, cfg, options), _side(after, cfg, options)
    diff = diff_schemas(
        a.schema, b.schema, before_name=a.source, after_name=b.source, reads=a.reads
    )
    if as_json:
        print_json(diff.to_dict())
    else:
        _print_diff(diff)


@schema_app.command(
    "accept",
    epilog="Example: mooring schema accept new-contract.yaml -r 'workclass dropped upstream'",
)
def schema_accept_command(
    source: Annotated[
        str,
        typer.Argument(
            help="The new contract: a schema YAML (e.g. an edited copy of "
            "contract/schema.yaml), or a data file to infer it from."
        ),
    ],
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason", "-r", help="Why the contract changes (recorded in the audit log)."
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who accepts (default: $MOORING_ACTOR or the login name)."),
    ] = None,
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a new contract the project's: the diff, the reason and the actor go to the audit
    log, and the next `mooring run` trains under it."""
    from mooring.pipeline._contracts import accept, contract_path
    from mooring.registry import Registry

    if config is None:
        if not Path("mooring.toml").is_file():
            raise UsageError(
                "accept changes a project's contract: run it inside the project, or pass "
                "-c path/to/mooring.toml"
            )
        config = Path("mooring.toml")
    cfg = load_config(config)
    if not (reason or "").strip():
        raise UsageError(
            "accepting a new data contract needs a reason: pass -r/--reason TEXT, e.g. "
            "-r 'workclass dropped upstream (ticket 123)'"
        )
    new = _side(source, cfg, _options(config, delimiter, na_value)).schema
    with Registry.from_config(cfg) as registry:
        diff = accept(cfg, registry, new, reason=reason or "", actor=actor)
    path = contract_path(cfg)
    if as_json:
        print_json({**diff.to_dict(), "written": str(path), "reason": reason})
        return
    _print_diff(diff)
    console.print(
        f"{path} written and the change recorded in the audit log; the next `mooring run` "
        "trains under it",
        markup=False,
    )
