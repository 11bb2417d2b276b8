"""The mooring demo on the bundled UCI Adult data (run with `make demo`).

validate → train → evaluate → gate → register → serve → real requests through
TF Serving's REST API. Every process it starts is stopped before it ends.
"""

from __future__ import annotations

import csv
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mooring.errors import MooringError
from mooring.project import Project
from mooring.registry import Registry

HERE = Path(__file__).resolve().parent
console = Console(highlight=False)


def step(number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}", align="left")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rows(project: Project, count: int) -> list[dict[str, Any]]:
    """Rows of adult.test as a client would send them: numbers as numbers, '?' as null."""
    numeric = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}
    with gzip.open(project.data_path("eval"), "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = []
        for raw in reader:
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "class":
                    row[key] = value
                elif value == "?":
                    row[key] = None
                else:
                    row[key] = float(value) if key in numeric else value
            rows.append(row)
            if len(rows) == count:
                return rows
    return rows


def main() -> int:
    started = time.perf_counter()
    project = Project.load(HERE / "mooring.toml")
    console.print(f"[bold]mooring demo[/] — project '{project.name}', home {project.home}")

    step(1, "Data contract: statistics → schema → validation")
    validation = project.validate()
    for result in validation.results:
        style = "green" if result.ok else "red"
        console.print(f"[{style}]{result.render_text().splitlines()[0]}[/]", soft_wrap=True)
    if not validation.ok:
        console.print("[red]the data contract failed: stopping before training[/]")
        return 1

    step(2, "Train: preprocessing from the statistics inside one SavedModel")
    training = project.train()
    last = training.epochs[-1] if training.epochs else {}
    shown = ("loss", "auc", "val_loss", "val_auc")
    console.print(
        f"{len(training.epochs)} epochs in {training.timings.get('fit_seconds', 0.0):.1f} s; "
        "last epoch: " + ", ".join(f"{k} {last[k]:.4f}" for k in shown if k in last)
    )
    if training.parity is not None:
        parity = training.parity
        console.print(
            f"train/serve parity: {parity.records} raw records through tf.saved_model.load, "
            f"max difference {parity.max_abs_diff:.1e} (tolerance {parity.tolerance:g})"
        )
    console.print(f"model: {training.model_dir}")

    step(3, "Evaluate and gate")
    registry = Registry.from_config(project.config)
    production_dir = None
    deployment = registry.deployment(project.name) if registry.models() else None
    if deployment is not None and deployment.production is not None:
        production_dir = registry.load(project.name, alias="production")
    run = project.evaluate(model_dir=training.model_dir, baseline_dir=production_dir)
    metrics = run.result.metrics
    console.print(
        "  ".join(
            f"{k} {metrics[k]:.4f}"
            for k in ("auc", "log_loss", "ece", "accuracy")
            if metrics.get(k) is not None
        )
    )
    table = Table("gate", "value", "bound", "result")
    for gate in run.decision.to_dict()["gates"]:
        table.add_row(
            str(gate.get("name")),
            f"{gate.get('value')}",
            f"{gate.get('bound')}",
            "[green]pass[/]" if gate.get("passed") else "[red]FAIL[/]",
        )
    console.print(table)
    for warning in run.decision.to_dict().get("warnings", []):
        console.print(f"[yellow]note:[/] {warning}", soft_wrap=True)
    console.print(f"report: {run.folder / 'report.html'}")
    if not run.decision.blessed:
        console.print("[red]not blessed: the model is registered but not deployed[/]")

    step(4, "Register (immutable version, lineage, model card) and deploy")
    from mooring.evaluation import record_threshold

    record_threshold(training.model_dir, run.result)
    version = registry.register(
        name=project.name,
        artifact_dir=training.model_dir,
        lineage={
            "data_fingerprint": project.data_fingerprint("train"),
            "statistics_hash": training.statistics_hash,
            "schema_hash": training.schema_hash,
            "feature_spec_hash": training.feature_spec_hash,
        },
        metrics={k: v for k, v in metrics.items() if v is not None},
        gate=run.decision.to_dict(),
        statistics=validation.statistics.to_dict(),
        params=project.config.model.model_dump(mode="json"),
        run_record=training.record,
        reason="make demo",
    )
    console.print(f"registered {project.name} version {version.version}")
    if run.decision.blessed:
        registry.promote(project.name, version=version.version, reason="make demo")
        console.print(f"version {version.version} is production")
    elif deployment is None or deployment.production is None:
        console.print("[red]no blessed version to serve; stopping[/]")
        return 1

    step(5, "Serve on 127.0.0.1 and send real requests (TF Serving REST API)")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mooring",
            "serve",
            "--config",
            str(HERE / "mooring.toml"),
            "--port",
            str(port),
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30.0) as client:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    console.print(
                        f"[red]server exited:[/] {server.stderr.read() if server.stderr else ''}"
                    )
                    return 1
                try:
                    if client.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    console.print("[red]server did not become ready in 120 s[/]")
                    return 1
                time.sleep(0.3)
            rows = test_rows(project, 8)
            instances = [{k: v for k, v in r.items() if k != "class"} for r in rows]
            response = client.post(
                f"/v1/models/{project.name}:predict", json={"instances": instances}
            )
            body = response.json()
            answers = Table(
                "age",
                "education",
                "occupation",
                "hours",
                "P(>50K)",
                "predicted",
                "actual",
                title=f"POST /v1/models/{project.name}:predict → "
                f"{response.status_code}, version {response.headers.get('x-model-version')}",
            )
            for row, prediction in zip(rows, body.get("predictions", []), strict=False):
                probability = prediction["probabilities"][1]
                answers.add_row(
                    f"{row['age']:.0f}",
                    str(row["education"]),
                    str(row["occupation"]),
                    f"{row['hours-per-week']:.0f}",
                    f"{probability:.3f}",
                    str(prediction["classes"]),
                    row["class"],
                )
            console.print(answers)
            bad = client.post(
                f"/v1/models/{project.name}:predict", json={"instances": [{"age": "old"}]}
            )
            console.print(
                f"a bad request is answered {bad.status_code}: {bad.json()}", soft_wrap=True
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    console.print(f"report:      {run.folder / 'report.html'}")
    toml = HERE / "mooring.toml"
    console.print(f"registry:    {project.home / 'registry.db'} (mooring models list -c {toml})")
    console.print(
        f"model card:  mooring models show {project.name} --card -c {HERE / 'mooring.toml'}"
    )
    console.print(
        "by hand:     mooring validate | train | evaluate --model DIR | serve  (-c mooring.toml)"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.exit(main())
    except MooringError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
