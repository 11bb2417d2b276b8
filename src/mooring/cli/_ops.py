"""``mooring ops``: operations files generated from the project (Prometheus rules and tests,
Grafana dashboards, the on-call sheet) or from the package (the server's image and
Kubernetes manifests)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.config import load_config
from mooring.errors import ChecksFailedError, UsageError, import_extra

ops_app = typer.Typer(
    help="Operations files: Prometheus rules, Grafana dashboards and the on-call sheet from "
    "mooring.toml; the server's image and Kubernetes manifests.",
    no_args_is_help=True,
)
app.add_typer(ops_app, name="ops")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="mooring.toml of the project.")]


@ops_app.command(
    "prometheus",
    epilog="Example: mooring ops prometheus -c mooring.toml --out ops/prometheus",
)
def prometheus_command(
    config: ConfigOpt = Path("mooring.toml"),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for the rule files; default <home>/ops/prometheus."
        ),
    ] = None,
    runbook_url: Annotated[
        str | None,
        typer.Option("--runbook-url", help="Link put in every alert's runbook_url annotation."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the files written and promtool's verdicts as JSON."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Run promtool check rules and promtool test rules on the files (when on PATH).",
        ),
    ] = True,
) -> None:
    """Write recording and alerting rules from \\[monitoring.slo] and the drift thresholds,
    with promtool unit tests in which every burn alert fires exactly when mooring's monitor
    does."""
    from mooring.ops._rule_tests import write_prometheus

    cfg = load_config(config)
    folder = out if out is not None else cfg.home / "ops" / "prometheus"
    rules, tests, ruleset = write_prometheus(
        cfg, folder, config_path=str(config.resolve()), runbook_url=runbook_url
    )
    alerts = sum(1 for g in ruleset.rules["groups"] for r in g["rules"] if "alert" in r)
    records = sum(1 for g in ruleset.rules["groups"] for r in g["rules"] if "record" in r)
    said: dict[str, str] = {}
    promtool = shutil.which("promtool") if check else None
    if promtool is not None:
        for args in (["check", "rules", rules.name], ["test", "rules", tests.name]):
            step = " ".join(args)
            done = subprocess.run(
                [promtool, *args], cwd=folder, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise ChecksFailedError(
                    f"promtool {step} failed:\n{(done.stdout + done.stderr).strip()}"
                )
            said[step] = "ok"
    if as_json:
        print_json(
            {
                "rules": str(rules),
                "tests": str(tests),
                "recording_rules": records,
                "alerts": alerts,
                "promtool_tests": len(ruleset.tests["tests"]),
                "promtool": said or None,
            }
        )
        return
    console.print(
        f"wrote {escape(str(rules))} ({records} recording rules, {alerts} alerts)", soft_wrap=True
    )
    console.print(
        f"wrote {escape(str(tests))} ({len(ruleset.tests['tests'])} promtool tests)",
        soft_wrap=True,
    )
    for step, verdict in said.items():
        console.print(f"promtool {escape(step)}: {verdict}", soft_wrap=True)
    if check and promtool is None:
        console.print(
            "promtool is not on PATH: check them with `promtool check rules` and "
            "`promtool test rules` where Prometheus is installed",
            soft_wrap=True,
        )


@ops_app.command(
    "runbook",
    epilog="Example: mooring ops runbook income -c mooring.toml --url http://10.0.0.5:8501",
)
def runbook_command(
    name: Annotated[str, typer.Argument(help="The model (this project's \\[project] name).")],
    config: ConfigOpt = Path("mooring.toml"),
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Base URL of the server, written into the sheet's curl commands; "
            "default http://127.0.0.1:8501.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for <NAME>.md; default <home>/ops/runbook."),
    ] = None,
    show: Annotated[
        bool, typer.Option("--print", help="Also print the sheet (Markdown) to stdout.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the file written and the sheet's commands.")
    ] = False,
) -> None:
    """Write the on-call sheet of a model: what is deployed, SLO burn, each alert with its
    first three commands, rollback and canary commands, where things are, last incidents."""
    from mooring.ops._runbook import write_runbook
    from mooring.registry import Registry

    cfg = load_config(config)
    folder = out if out is not None else cfg.home / "ops" / "runbook"
    with Registry.from_config(cfg) as registry:
        path, sheet = write_runbook(
            cfg, registry, folder, name=name, config_path=str(config.resolve()), url=url
        )
    if as_json:
        print_json({"runbook": str(path), "model": sheet.model, "commands": sheet.commands})
        return
    if show:
        print(sheet.markdown)
        return
    console.print(f"wrote {escape(str(path))} ({len(sheet.commands)} commands)", soft_wrap=True)


@ops_app.command(
    "grafana",
    epilog="Example: mooring ops grafana -c mooring.toml --out ops/grafana",
)
def grafana_command(
    config: ConfigOpt = Path("mooring.toml"),
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the dashboards; default <home>/ops/grafana."),
    ] = None,
    dashboards_path: Annotated[
        str | None,
        typer.Option(
            "--dashboards-path",
            help="The folder as Grafana sees it, written into the provisioning file "
            "(default: --out, absolute).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files written as JSON.")
    ] = False,
) -> None:
    """Write executive, on-call and debug Grafana dashboards for the project's model, and a
    provisioning file that loads their folder."""
    import_extra("grafana_foundation_sdk", extra="grafana", needed_for="mooring ops grafana")
    from mooring.ops._grafana import write_grafana

    cfg = load_config(config)
    folder = out if out is not None else cfg.home / "ops" / "grafana"
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"--out {folder} is a file, not a folder; pass a folder for the dashboards"
        )
    files = write_grafana(cfg, folder, dashboards_path=dashboards_path)
    if as_json:
        print_json(
            {
                "dashboards": {kind: str(path) for kind, path in files.dashboards.items()},
                "provisioning": str(files.provisioning),
                "panels": files.panels,
            }
        )
        return
    for kind, path in files.dashboards.items():
        console.print(f"wrote {escape(str(path))} ({kind})", soft_wrap=True)
    console.print(
        f"wrote {escape(str(files.provisioning))} (copy into Grafana's provisioning/dashboards/)",
        soft_wrap=True,
    )


@ops_app.command("k8s", epilog="Example: mooring ops k8s deploy")
def k8s_command(
    out: Annotated[
        Path,
        typer.Argument(help="Folder for the Dockerfile and kubernetes/ (made if missing)."),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files of an earlier run in OUT.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files written and the next commands.")
    ] = False,
) -> None:
    """Write the server's Dockerfile (installs this mooring-ml version from the package
    index, or a wheel put in OUT/wheels/) and Kubernetes manifests: the server and its
    autoscaler, PostgreSQL, the monitor, batch-scoring and training Jobs."""
    from mooring import __version__
    from mooring.ops._k8s import write_k8s

    written = write_k8s(out, version=__version__, force=force)
    image = f"registry.example.com/mooring:{__version__}"
    folder = shlex.quote(str(out))
    manifests = shlex.quote(str(out / "kubernetes"))
    steps = [
        f"docker build -t {image} {folder}",
        f"docker push {image}",
        f"kubectl apply -k {manifests} -n NAMESPACE",
    ]
    edits = (
        f"before the apply: your image in {out / 'kubernetes' / 'kustomization.yaml'} "
        "(images:), your buckets and [data] paths in configmap.yaml, every REPLACE-ME in "
        f"the three secret-*.yaml; {out / 'README.md'} has the details"
    )
    if as_json:
        print_json(
            {
                "files": [str(p) for p in written],
                "version": __version__,
                "commands": steps,
                "edit": edits,
            }
        )
        return
    for path in written:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)
    console.print(
        f"the image installs mooring-ml=={__version__} from the package index, or the "
        f"mooring_ml-*.whl you put in {escape(str(out / 'wheels'))}",
        soft_wrap=True,
    )
    console.print(f"next: {escape(steps[0])}", soft_wrap=True)
    console.print(f"      {escape(steps[1])} (your registry's name for this one)", soft_wrap=True)
    console.print(f"      {escape(edits)}", soft_wrap=True)
    console.print(f"      {escape(steps[2])}", soft_wrap=True)
