"""``mooring models …``: the registry's versions from the command line.

Every command finds the registry as :mod:`mooring.cli._registry` says (``--registry``,
``--artifacts``, else the project file); the audit log's commands are
:mod:`mooring.cli._audit`'s. Tables for people, ``--json`` for programs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console, print_gate, print_json, seconds_option
from mooring.cli._registry import (
    ActorOpt,
    ArtifactsOpt,
    ConfigOpt,
    JsonOpt,
    NameArg,
    ReasonOpt,
    RegistryOpt,
    VersionArg,
    open_or_say_none,
    open_registry,
)
from mooring.config import MooringConfig, load_config
from mooring.errors import UsageError
from mooring.formats._gate import UNGATED
from mooring.formats._model import SIGNATURE
from mooring.registry import Deployment, ModelVersion
from mooring.registry._signing import SignatureState

models_app = typer.Typer(
    help="Registered model versions: import, list, inspect, promote, roll back, demote, archive.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


def _blessed(mv: ModelVersion, *, long: bool = False) -> str:
    """``yes``, ``no`` or ``ungated`` (no gate judged it: not blessed either)."""
    if mv.blessed:
        return "yes"
    if mv.ungated:
        return UNGATED if long else "ungated"
    return "no"


def _version_table(title: str, rows: list[ModelVersion]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("version", "status", "blessed", "aliases", "created", "by", "files", "size"):
        table.add_column(header)
    for mv in rows:
        table.add_row(
            str(mv.version),
            mv.status,
            _blessed(mv),
            ", ".join(mv.aliases),
            mv.created_at[:19].replace("T", " "),
            mv.created_by,
            str(mv.file_count),
            f"{mv.size_bytes / 1024:.1f} KiB",
        )
    return table


def _print_deployment(dep: Deployment, as_json: bool) -> None:
    if as_json:
        print_json(dep.to_dict())
        return
    canary = f"{dep.canary} at {dep.canary_weight}%" if dep.canary is not None else "none"
    shadow = f", shadow {dep.shadow} at {dep.shadow_rate:.0%}" if dep.shadow is not None else ""
    console.print(
        f"{dep.name}: production {dep.production}, canary {canary}{shadow} "
        f"(revision {dep.revision})"
    )


@models_app.command("list", epilog="Example: mooring models list income --json")
def list_command(
    name: Annotated[str | None, typer.Argument(help="List this model's versions.")] = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List models, or the versions of one model."""
    opened = (
        open_registry(registry, artifacts, config)
        if name is not None
        else open_or_say_none(registry, artifacts, config, as_json, "no models yet")
    )
    if opened is None:
        return
    with opened as reg:
        if name is None:
            summaries = reg.models()
            if as_json:
                print_json([s.to_dict() for s in summaries])
                return
            # Above the table, not its title: a table folds a long registry URL.
            console.print(escape(f"models in {reg.store.url}"))
            table = Table()
            for header in ("model", "versions", "latest", "production", "canary"):
                table.add_column(header)
            for s in summaries:
                canary = f"{s.canary} ({s.canary_weight}%)" if s.canary is not None else ""
                table.add_row(
                    s.name,
                    str(s.versions),
                    str(s.latest_version or ""),
                    str(s.production or ""),
                    canary,
                )
            console.print(table)
            return
        versions = reg.versions(name)
        if as_json:
            print_json([mv.to_dict() for mv in versions])
        else:
            console.print(_version_table(f"{name}: {len(versions)} versions", versions))


@models_app.command("show", epilog="Example: mooring models show income --alias production")
def show_command(
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Version number.")] = None,
    alias: Annotated[str | None, typer.Option("--alias", "-a", help="Alias name.")] = None,
    card: Annotated[bool, typer.Option("--card", help="Print the Markdown model card.")] = False,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one version (default: the latest): lineage, metrics, gate, aliases."""
    with open_registry(registry, artifacts, config) as reg:
        mv = reg.get(name, version=version, alias=alias)
        if card:
            text = mv.model_card or ""
            if as_json:
                print_json({"name": mv.name, "version": mv.version, "model_card": text})
            else:
                console.print(Markdown(text))
            return
        attached = reg.version_artifacts(name, version=mv.version)
        if as_json:
            data: dict[str, Any] = mv.to_dict()
            data["deployment"] = reg.deployment(name).to_dict()
            data["artifacts"] = [a.to_dict() for a in attached]
            print_json(data)
            return
        from mooring.dashboard._card import describe_threshold
        from mooring.evaluation._gates import describe_bound

        table = Table(title=mv.ref, title_justify="left", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        rows: list[tuple[str, Any]] = [
            ("status", mv.status),
            ("blessed", _blessed(mv, long=True)),
            ("aliases", ", ".join(mv.aliases) or "—"),
            ("created", mv.created_at),
            ("by", mv.created_by),
            ("parent", mv.parent_version),
            ("files", f"{mv.file_count} ({mv.size_bytes:,} bytes)"),
            ("manifest sha256", mv.manifest_sha256),
            (
                "operating threshold",
                describe_threshold(mv.operating_threshold, mv.record.run.threshold_source),
            ),
        ]
        rows += [(f"lineage.{k}", v) for k, v in sorted(mv.lineage.to_dict().items())]
        overall = mv.metrics.get("overall", mv.metrics)
        if isinstance(overall, dict):
            rows += [
                (f"metric.{k}", v)
                for k, v in sorted(overall.items())
                if isinstance(v, int | float | str)
            ]
        for gate in mv.decision.gates if mv.decision else ():
            default = " (default gate)" if gate.default else ""
            if gate.skipped:  # not judged: why, not a value it was never held to
                why = gate.message.removeprefix("skipped:").strip()
                rows.append((f"gate.{gate.name}", f"skipped{default}: {why}"))
                continue
            verdict = ("pass" if gate.passed else "FAIL") + default
            rows.append(
                (f"gate.{gate.name}", f"{verdict}: {gate.value} vs {describe_bound(gate.bound)}")
            )
        for item in attached:
            for rel, sha in item.files.items():
                rows.append(
                    (
                        f"artifact.{item.artifact}",
                        f"{rel} ({item.size_bytes:,} bytes) sha256 {sha}, "
                        f"{item.created_at[:19].replace('T', ' ')} by {item.created_by}",
                    )
                )
        for key, value in rows:
            table.add_row(key, "—" if value is None else str(value))
        console.print(table)


@models_app.command("promote", epilog="Example: mooring models promote income 4 -r 'AUC +0.01'")
def promote_command(
    name: NameArg,
    version: VersionArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Promote even if not blessed (a gate failed), rolled back by the monitor or "
            "`models rollback`, its artifact fails verification, or the server would answer "
            "production's clients 400 from it (needs -r REASON, which the audit log keeps).",
        ),
    ] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a version the production version (refuses, without --force -r REASON, a version
    that failed a gate, was rolled back and not deployed since, or that the server would
    answer production's clients 400 from, as deploy checks a canary)."""
    with open_registry(registry, artifacts, config) as reg:
        dep = reg.promote(name, version=version, force=force, reason=reason, actor=actor)
        _print_deployment(dep, as_json)


@models_app.command(
    "approve", epilog="Example: mooring models approve income 4 -r 'report reviewed' --actor bob"
)
def approve_command(
    name: NameArg,
    version: VersionArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why it may be released (audited).")
    ],
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a version for production, as someone other than its registrant (needed when
    the registry section sets production_requires = "approval"; recorded in the audit log)."""
    with open_registry(registry, artifacts, config) as reg:
        event = reg.approve(name, version=version, reason=reason, actor=actor)
    if as_json:
        print_json(event.to_dict())
    else:
        console.print(
            f"{name}@{version}: approved by {escape(event.actor)} (audit event {event.seq}); "
            f"promote it with `mooring models promote {name} {version}`"
        )


@models_app.command(
    "import",
    epilog="Examples: mooring models import income exported/ -r 'research model' | "
    "mooring models import churn churn.keras --task binary | "
    "mooring models import ranker saved/ --signature predict --input-shape ids=16",
)
def import_command(
    name: NameArg,
    path: Annotated[
        Path, typer.Argument(help="A SavedModel folder or a .keras file.", show_default=False)
    ],
    signature: Annotated[
        str, typer.Option("--signature", help="The signature to serve (a SavedModel's).")
    ] = SIGNATURE,
    task: Annotated[
        str | None,
        typer.Option("--task", help="What it predicts, recorded: binary, multiclass, regression."),
    ] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            help="NAME=d1,d2,...: an input's inner dimensions (no batch dimension) where the "
            "signature leaves them unknown; they shape the batch it is tried on. Repeatable.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Labelled CSV/Parquet rows to evaluate it on, as a trained model is: metrics, "
            "slices, the gates (against production), the report; blessed when they pass.",
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="The label column of --data (default: \\[data] label)."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            help="The classes in the order of the model's probability columns, comma-separated "
            "(default: the labels sorted; binary: NEGATIVE,POSITIVE).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", help="The output holding the scores, where the model has several."
        ),
    ] = None,
    no_eval: Annotated[
        bool,
        typer.Option(
            "--no-eval",
            help="Register it unevaluated (the default without --data): not blessed, so "
            "promoting it needs --force and a reason.",
        ),
    ] = False,
    allow_op: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-op",
            help="OP: admit a TensorFlow op the import refuses (one not on the allow-list, "
            "e.g. PrintV2, ReadFile: the refusal names it), deliberately; needs -r REASON, "
            "recorded with the version and in the audit log. Repeatable.",
        ),
    ] = None,
    allows_missing: Annotated[
        list[str] | None,
        typer.Option(
            "--allows-missing",
            help="INPUT: a float input the model handles NaN in (as a missing value); the "
            "server then passes null/NaN to it, where it answers 400 for the other float "
            "inputs. Repeatable.",
        ),
    ] = None,
    probe_memory: Annotated[
        float | None,
        typer.Option(
            "--probe-memory",
            help="GiB the first load and call of the model may use (default 4); past it the "
            "import stops.",
        ),
    ] = None,
    probe_timeout: Annotated[
        float | None,
        typer.Option(
            "--probe-timeout",
            help="Seconds the first load and call of the model may take (default 300).",
        ),
    ] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model built elsewhere (a SavedModel folder, a .keras file or a YDF model
    folder) as a new version: its signature checked and tried on 3 rows, then evaluated on
    --data and gated as a trained model, or registered unevaluated. Its ops are vetted
    and its first call runs in a child process held to --probe-memory and
    --probe-timeout."""
    from mooring.formats._vetting import parse_allowed_ops
    from mooring.pipeline._import import import_version
    from mooring.training._import import Limits, parse_input_shapes

    shapes = parse_input_shapes(input_shape or [])
    allowed = parse_allowed_ops(allow_op or [], reason)
    limits = Limits.of(probe_memory, probe_timeout)
    if data is not None and no_eval:
        raise UsageError("--data evaluates the model and --no-eval does not: pass one of them")
    project = _import_settings(name, data, label, config)
    with open_registry(registry, artifacts, config, create=True) as reg:
        mv = import_version(
            reg,
            name,
            path,
            signature=signature,
            task=task,
            input_shapes=shapes,
            reason=reason,
            actor=actor,
            output=output,
            data=data,
            config=project,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            allowed_ops=allowed,
            limits=limits,
            allows_missing=allows_missing or (),
        )
    if as_json:
        print_json(mv.to_dict())
        return
    if data is not None:
        verdict = mv.verdict
        report = mv.record.run.evaluation_report
        how = (
            f"`mooring models promote {name} {mv.version}`"
            if verdict == "blessed"
            else f"`mooring models promote {name} {mv.version} --force -r REASON`"
        )
        console.print(
            f"{mv.ref}: imported and evaluated on {escape(str(data))}: {verdict} "
            f"(report: {escape(str(report))}); promote it with {how}",
            soft_wrap=True,
        )
        for entry in mv.decision.gates if mv.decision else ():
            print_gate(
                skipped=entry.skipped,
                passed=entry.passed,
                message=entry.message,
                default=entry.default,
            )
        return
    lineage = mv.lineage
    console.print(
        f"{mv.ref}: imported from {escape(str(lineage.source_path))} "
        f"({lineage.source_format}, signature {lineage.signature!r}, sha256 "
        f"{str(lineage.source_sha256)[:12]}…), unevaluated: promoting it needs "
        f"`mooring models promote {name} {mv.version} --force -r REASON`",
        soft_wrap=True,
    )


def _import_settings(
    name: str, data: Path | None, label: str | None, config: Path | None
) -> MooringConfig | None:
    """The project's settings (gates, reading, monitoring) for an evaluated import, with
    ``data`` as its eval data and ``label`` its label; defaults outside a project."""
    if data is None:
        return None
    from mooring.pipeline._import import default_config

    path = config or Path("mooring.toml")
    if config is None and not path.is_file():
        return default_config(name, data, label)
    project = load_config(path)
    updates: dict[str, Any] = {"eval": str(data)}
    if label is not None:
        updates["label"] = label
    return project.model_copy(update={"data": project.data.model_copy(update=updates)})


@models_app.command("rollback", epilog="Example: mooring models rollback income -r 'p99 up'")
def rollback_command(
    name: NameArg,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore the previous production version and drop the canary, in one step."""
    with open_registry(registry, artifacts, config) as reg:
        _print_deployment(reg.rollback(name, reason=reason, actor=actor), as_json)


@models_app.command("deploy", epilog="Example: mooring models deploy income -p 3 --canary 4 -w 10")
def deploy_command(
    name: NameArg,
    production: Annotated[int, typer.Option("--production", "-p", help="Production version.")],
    canary: Annotated[int | None, typer.Option("--canary", help="Canary version.")] = None,
    weight: Annotated[int, typer.Option("--weight", "-w", help="Canary traffic, 0-100.")] = 0,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow unblessed versions, artifacts that fail verification, or a version "
            "the server would answer production's clients 400 from (needs --reason).",
        ),
    ] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the production version and an optional canary with its traffic weight."""
    with open_registry(registry, artifacts, config) as reg:
        dep = reg.deploy(
            name,
            production=production,
            canary=canary,
            weight=weight,
            force=force,
            reason=reason,
            actor=actor,
        )
        _print_deployment(dep, as_json)


@models_app.command("shadow", epilog="Example: mooring models shadow income --version 4 --rate 0.1")
def shadow_command(
    name: NameArg,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="The version that gets the copies.")
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", help="Share of production's requests copied, in (0, 1].")
    ] = 0.1,
    off: Annotated[bool, typer.Option("--off", help="Stop the shadow traffic.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow a version whose inputs differ from production's (needs --reason).",
        ),
    ] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a share of the requests production answers to a version that answers no client.

    Its outputs go to the prediction log marked shadow; `mooring monitor` compares them
    with production's answers.
    """
    if off == (version is not None):
        raise UsageError(
            f"pass --version VERSION (with --rate) to start shadow traffic for '{name}', or "
            f"--off to stop it; got {'both' if off else 'neither'}"
        )
    with open_registry(registry, artifacts, config) as reg:
        dep = reg.set_shadow(
            name, version=version, rate=rate, reason=reason, actor=actor, force=force
        )
        _print_deployment(dep, as_json)


@models_app.command("alias", epilog="Example: mooring models alias income champion 4")
def alias_command(
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="Alias name (not production/canary/latest).")],
    version: VersionArg,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point a user-defined alias at a version."""
    with open_registry(registry, artifacts, config) as reg:
        reg.set_alias(name, alias, version=version, reason=reason, actor=actor)
        if as_json:
            print_json({"name": name, "alias": alias, "version": version})
        else:
            console.print(f"{name}: alias {alias} → version {version}")


ToOpt = Annotated[
    int | None,
    typer.Option(
        "--to",
        help="The version that serves instead (default: the previous production version "
        "still ready; with none, nothing serves).",
    ),
]


def _print_demoted(name: str, version: int, dep: Deployment, archived: bool) -> None:
    """What serves now that ``name@version`` is out of production, in one line."""
    done = "demoted and archived" if archived else "demoted"
    if dep.production is None:
        console.print(
            f"{name}@{version}: {done}; [bold]nothing serves {name} now[/] (no earlier "
            "production version is ready): servers answer 503 until one is deployed, e.g. "
            f"`mooring models deploy {name} --production VERSION`"
        )
        return
    canary = f", canary {dep.canary} at {dep.canary_weight}%" if dep.canary is not None else ""
    console.print(f"{name}@{version}: {done}; production is now {dep.production}{canary}")


@models_app.command(
    "demote", epilog="Example: mooring models demote income 3 -r 'reads a leaking column'"
)
def demote_command(
    name: NameArg,
    version: VersionArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why it leaves production (audited).")
    ],
    to: ToOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take the production version out of service: --to VERSION, else the previous
    production version still ready, serves instead; with neither, nothing serves. The
    demoted version stays registered, leaves the rollback history and can be promoted again."""
    with open_registry(registry, artifacts, config) as reg:
        dep = reg.demote(name, version=version, reason=reason, to=to, actor=actor)
    if as_json:
        print_json(dep.to_dict())
    else:
        _print_demoted(name, version, dep, archived=False)


@models_app.command("archive", epilog="Example: mooring models archive income 2 -r 'superseded'")
def archive_command(
    name: NameArg,
    version: VersionArg,
    reason: ReasonOpt = None,
    to: ToOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Archive a version: kept and loadable, no longer deployable. The production version
    is demoted first, in the same write (needs -r REASON; see `models demote`); a canary or
    shadow is refused."""
    with open_registry(registry, artifacts, config) as reg:
        serving = reg.deployment(name).production == version
        mv = reg.archive(name, version=version, reason=reason, actor=actor, to=to)
        dep = reg.deployment(name) if serving else None
    if as_json:
        print_json({**mv.to_dict(), **({"deployment": dep.to_dict()} if dep else {})})
    elif dep is not None:
        _print_demoted(name, version, dep, archived=True)
    else:
        console.print(f"{mv.ref}: archived")


def _print_signature(found: SignatureState, refused: Exception | None, as_json: bool) -> None:
    if as_json:
        print_json({**found.to_dict(), "refused": None if refused is None else str(refused)})
    else:
        when = f", signed {found.signed_at[:19]} by {found.signed_by}" if found.signed_at else ""
        console.print(f"{found.ref}: {found.state}: {escape(found.detail)}{escape(when)}")
        if refused is not None:
            console.print(f"[bold red]refused[/]: {escape(str(refused))}", soft_wrap=True)
    if refused is not None:
        raise typer.Exit(1)


@models_app.command("verify", epilog="Example: mooring models verify income 4 --json")
def verify_signature_command(
    name: NameArg,
    version: VersionArg,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a version's signature against the trusted keys (\\[registry] signing_key,
    trusted_keys) or, signed with a certificate, trusted_roots: verified, unsigned,
    untrusted or invalid; exit 1 when promote, deploy and the server would refuse it."""
    with open_registry(registry, artifacts, config) as reg:
        found = reg.signatures.state(reg, reg.get(name, version=version))
        _print_signature(found, reg.signatures.refusal(found, "promote"), as_json)


@models_app.command("sign", epilog="Example: mooring models sign income 3 -r 'before signing'")
def sign_command(
    name: NameArg,
    version: VersionArg,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Sign an already signed version again (a new key)."),
    ] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a version registered before \\[registry] signing_key was set, once its stored
    files still match the manifest recorded at registration (audited)."""
    with open_registry(registry, artifacts, config) as reg:
        found = reg.signatures.sign_existing(
            reg, name, version, actor=actor, reason=reason, replace=replace
        )
        _print_signature(found, reg.signatures.refusal(found, "promote"), as_json)


@models_app.command("gc", epilog="Example: mooring models gc --older-than 2h")
def gc_command(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Leave uploads written more recently alone.")
    ] = "1h",
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove stored files no version references (uploads of registrations that died)."""
    seconds = seconds_option(older_than, "--older-than")
    with open_registry(registry, artifacts, config) as reg:
        removed = reg.collect_garbage(older_than=seconds)
    if as_json:
        print_json({"removed": removed})
    else:
        console.print(f"removed {len(removed)} unreferenced upload(s)")
        for key in removed:
            console.print(f"  {key}")
