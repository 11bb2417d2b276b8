"""``mooring stats``, ``mooring schema infer``, ``mooring validate``: the data contract."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.cli._engine import EngineOpt, RayAddressOpt, WorkersOpt, engine_from
from mooring.config import ContractConfig, load_config
from mooring.contract import DatasetStatistics, ReadOptions, compute_statistics
from mooring.contract.schema import Schema, infer_schema
from mooring.contract.validation import ValidationResult
from mooring.errors import UsageError
from mooring.project import Project
from mooring.scale import sharded_validate

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


def _stats_table(stats: DatasetStatistics) -> Table:
    table = Table(title=f"{stats.source} — {stats.num_rows:,} rows", title_justify="left")
    for header in ("column", "type", "missing", "min", "mean", "max", "distinct / top values"):
        table.add_column(header, overflow="fold")
    for name, col in stats.columns.items():
        missing = f"{col.missing:,} ({100 * col.null_fraction:.1f}%)"
        if col.numeric is not None and col.numeric.count:
            n = col.numeric
            table.add_row(
                name,
                col.type,
                missing,
                f"{n.min:g}",
                f"{n.mean:.4g}",
                f"{n.max:g}",
                f"p50={n.quantiles([0.5])[0]:g}",
            )
        elif col.strings is not None:
            top = ", ".join(f"{v} ({c:,})" for v, c in col.strings.top(3))
            table.add_row(name, col.type, missing, "", "", "", f"{col.strings.distinct:,}: {top}")
        else:
            table.add_row(name, col.type, missing, "", "", "", "")
    return table


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
    from mooring.scale import sharded_statistics

    project = load_config(config).project if config else None
    chosen = engine_from(project, engine, workers, ray_address)
    source = data[0] if len(data) == 1 else data
    stats = sharded_statistics(source, _options(config, delimiter, na_value), engine=chosen)
    if out is not None:
        stats.save(out)
    if as_json:
        print_json(stats.to_dict())
    else:
        console.print(_stats_table(stats))
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


@app.command(
    "validate",
    epilog=(
        "Examples: mooring validate --config mooring.toml   |   "
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
    schema: Annotated[Path | None, typer.Option("--schema", help="Schema YAML.")] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Statistics JSON to compare with (skew).")
    ] = None,
    config: ConfigOpt = None,
    delimiter: DelimOpt = None,
    na_value: NaOpt = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check data against its contract. Exit 0: no errors; 1: error-level anomalies; 2: usage."""
    if data is None:
        if config is None:
            if not Path("mooring.toml").is_file():
                raise UsageError(
                    "give a data file, or --config mooring.toml to validate the project's data"
                )
            config = Path("mooring.toml")
        project = Project.load(config)
        if engine is not None or workers is not None or ray_address is not None:
            project = project.with_engine(engine_from(None, engine, workers, ray_address))
        project_result = project.validate()
        if as_json:
            print_json(project_result.to_dict())
        else:
            for result in project_result.results:
                _print_result(result)
        raise typer.Exit(0 if project_result.ok else 1)
    contract = load_config(config).contract if config else ContractConfig()
    options = _options(config, delimiter, na_value)
    if schema is None:
        raise UsageError("give --schema schema.yaml (create one with `mooring schema infer`)")
    loaded = Schema.load(schema).with_overrides(contract)
    base = DatasetStatistics.load(baseline) if baseline is not None else None
    cfg_project = load_config(config).project if config else None
    result = sharded_validate(
        data[0] if len(data) == 1 else data,
        loaded,
        options=options,
        engine=engine_from(cfg_project, engine, workers, ray_address),
        baseline=base,
        contract=contract,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(result)
    raise typer.Exit(0 if result.ok else 1)
