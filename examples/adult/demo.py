"""The mooring demo on the bundled UCI Adult data (run with `make demo`).

1. ``Project.run()``: validate → train → evaluate → gate → register → replay → deploy;
   the first version becomes production.
2. Serve it on 127.0.0.1 and send real requests built from adult.test rows through
   TF Serving's REST API (every request lands in the prediction log).
3. Train a second version (another seed and architecture) with the same pipeline:
   it is replayed against the logged production traffic and deployed as a canary.
4. Send traffic to both and show the rollout monitor's decision.

It starts from an empty ``.mooring`` next to mooring.toml and stops every process
it starts before it ends.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.console import Console
from rich.table import Table

from mooring import Project
from mooring.errors import MooringError
from mooring.pipeline import RunObserver, RunResult, StepRecord
from mooring.registry import Registry

HERE = Path(__file__).resolve().parent
TOML = HERE / "mooring.toml"
NUMERIC = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}
console = Console(highlight=False)


def step(number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}", align="left")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rows(project: Project, count: int) -> list[dict[str, Any]]:
    """Rows of adult.test as a client would send them: numbers as numbers, '?' as null."""
    with gzip.open(project.data_path("eval"), "rt", newline="") as fh:
        rows = []
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "class":
                    row[key] = value
                elif value == "?":
                    row[key] = None
                else:
                    row[key] = float(value) if key in NUMERIC else value
            rows.append(row)
            if len(rows) == count:
                break
    return rows


class Steps(RunObserver):
    """Prints each step as it finishes, and each training epoch."""

    MARKS: ClassVar[dict[str, str]] = {
        "done": "[green]✓[/]",
        "cached": "[cyan]↺[/]",
        "skipped": "[dim]–[/]",
    }

    def step_finished(self, record: StepRecord) -> None:
        mark = self.MARKS.get(record.status, "[red]✗[/]")
        console.print(
            f"{mark} {record.name:<9} {record.duration_s:6.1f}s  {record.message}", soft_wrap=True
        )

    def training_callbacks(self, epochs: int, steps_per_epoch: int) -> Sequence[Any]:
        import keras

        class Epochs(keras.callbacks.Callback):  # type: ignore[misc]
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = logs or {}
                shown = ", ".join(
                    f"{k} {float(logs[k]):.4f}" for k in ("loss", "val_auc") if k in logs
                )
                console.print(f"  [dim]epoch {epoch + 1}/{epochs}: {shown}[/]")

        return [Epochs()]


def show_run(result: RunResult) -> None:
    evaluate = result.step("evaluate").outputs
    metrics = evaluate.get("metrics", {})
    console.print(
        "  ".join(
            f"{k} {metrics[k]:.4f}"
            for k in ("auc", "log_loss", "ece", "accuracy")
            if metrics.get(k) is not None
        )
    )
    gates = Table("gate", "value", "bound", "result")
    for gate in evaluate.get("decision", {}).get("gates", []):
        value = gate.get("value")
        bound = {k: v for k, v in (gate.get("bound") or {}).items() if v is not None}
        gates.add_row(
            str(gate.get("name")),
            "—" if value is None else f"{value:.4f}",
            ", ".join(f"{k} {v}" for k, v in bound.items()),
            "[yellow]skipped[/]"
            if gate.get("skipped")
            else "[green]pass[/]"
            if gate.get("passed")
            else "[red]FAIL[/]",
        )
    console.print(gates)
    cost = result.record.get("cost", {})
    console.print(
        f"run {result.run_id}: {result.status} in {result.record.get('duration_s', 0):.0f} s, "
        f"{result.record.get('cpu_seconds', 0):.0f} CPU-s"
        + (
            f" ≈ {cost['run_cost']:.5f} at {cost['cpu_hour_price']} per CPU-hour"
            if cost.get("run_cost") is not None
            else ""
        )
    )
    if not result.ok:
        console.print(f"[red]rejected:[/] {result.reason}", soft_wrap=True)


def start_server(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mooring",
            "serve",
            "--config",
            str(TOML),
            "--port",
            str(port),
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(client: httpx.Client, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if client.get("/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server did not become ready in 120 s")
        time.sleep(0.3)


def send(client: httpx.Client, name: str, rows: list[dict[str, Any]]) -> Counter[str]:
    """One request per row, four at a time; how many each version answered."""

    def one(row: dict[str, Any]) -> str:
        instance = {k: v for k, v in row.items() if k != "class"}
        response = client.post(f"/v1/models/{name}:predict", json={"instances": [instance]})
        response.raise_for_status()
        return str(response.headers.get("x-model-version"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return Counter(pool.map(one, rows))


def main() -> int:
    started = time.perf_counter()
    project = Project.load(TOML)
    if project.home.exists():
        shutil.rmtree(project.home)
    console.print(
        f"[bold]mooring demo[/] — project '{project.name}', starting from an empty home "
        f"{project.home}"
    )

    step(1, "mooring run: validate → train → evaluate → gate → register → replay → deploy")
    first = project.run(observer=Steps())
    show_run(first)
    if not first.ok:
        return 1

    step(2, "Serve on 127.0.0.1 and send real requests (TF Serving REST API)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port)
    second: RunResult | None = None
    decision: Any = None
    try:
        with httpx.Client(base_url=base, timeout=30.0) as client:
            wait_ready(client, server)
            rows = test_rows(project, 4000)
            sample = rows[:8]
            instances = [{k: v for k, v in r.items() if k != "class"} for r in sample]
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
            for row, prediction in zip(sample, body.get("predictions", []), strict=False):
                answers.add_row(
                    f"{row['age']:.0f}",
                    str(row["education"]),
                    str(row["occupation"]),
                    f"{row['hours-per-week']:.0f}",
                    f"{prediction['probabilities'][1]:.3f}",
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
            served = send(client, project.name, rows[8:1000])
            console.print(
                f"{sum(served.values())} more requests answered by version(s) {dict(served)}; "
                "each one is in the prediction log"
            )
            time.sleep(2.0)  # the log is written at least every second

            step(3, "A second version (seed 7, hidden [64, 32]) through the same pipeline")
            candidate = Project.load(TOML)
            candidate.config.model.seed = 7
            candidate.config.model.hidden = [64, 32]
            second = candidate.run(observer=Steps())
            show_run(second)
            replay = second.step("replay").outputs
            if replay.get("status") == "compared":
                console.print(
                    f"replay of {replay['rows']} logged requests: mean |Δ P(>50K)| "
                    f"{replay['mean_abs_diff']:.4f}, {replay['flips']} decisions flip "
                    f"({replay['flip_rate']:.2%}), p95 latency candidate "
                    f"{replay['latency_ms']['candidate']['p95']:.2f} ms vs production "
                    f"{replay['latency_ms']['production']['p95']:.2f} ms"
                )
            if second.ok and second.deployed_as == "canary":
                step(4, f"Traffic on the canary ({second.canary_weight}%) and the monitor")
                decision = watch_canary(project, client, rows[1000:], second)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    summary(project, first, second, decision, port, started)
    return 0


def watch_canary(
    project: Project, client: httpx.Client, rows: list[dict[str, Any]], second: RunResult
) -> Any:
    from mooring.monitoring import RolloutController

    version = str(second.version)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the server polls the deployment record every second
        if version in send(client, project.name, rows[:40]):
            break
    cfg = Project.load(TOML).config
    # Demo pace: the defaults wait for 200 canary requests and 5 minutes per step.
    cfg.rollout.min_requests = 100
    cfg.rollout.min_step_duration = 5.0
    console.print(
        f"rollout steps {cfg.rollout.steps}; this demo judges a step after "
        f"{cfg.rollout.min_requests} canary requests and {cfg.rollout.min_step_duration:g} s"
    )
    with Registry.from_config(cfg) as registry:
        metrics = [f"{str(client.base_url).rstrip('/')}/metrics"]
        controller = RolloutController(cfg, registry, metrics=metrics)
        first = controller.tick()  # the monitor starts counting here
        console.print(f"monitor: {first.action} — {'; '.join(first.reasons)}", soft_wrap=True)
        began = time.monotonic()
        served = send(client, project.name, rows[40:3000])
        console.print(f"{sum(served.values())} requests answered by version {dict(served)}")
        time.sleep(max(0.0, 5.5 - (time.monotonic() - began)) + 1.5)
        decision = controller.tick()
    table = Table("guardrail", "status", "detail", title=f"monitor decision: {decision.action}")
    for guard in decision.guardrails:
        table.add_row(guard.name, guard.status, guard.message)
    console.print(table)
    console.print(
        f"[bold]{decision.action}[/]: canary {decision.canary} {decision.from_weight}% → "
        f"{decision.to_weight}% ({'; '.join(decision.reasons)})",
        soft_wrap=True,
    )
    return decision


def summary(
    project: Project,
    first: RunResult,
    second: RunResult | None,
    decision: Any,
    port: int,
    started: float,
) -> None:
    import importlib.util

    console.rule(f"done in {time.perf_counter() - started:.0f} s")

    def short(path: Path | str) -> str:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else str(path)

    toml = short(TOML)
    home = short(project.home)
    with Registry.from_config(project.config) as registry:
        dep = registry.deployment(project.name)
    canary = f", canary {dep.canary} at {dep.canary_weight}%" if dep.canary is not None else ""
    console.print(f"serving:     production {dep.production}{canary} (mooring status -c {toml})")
    for label, result in (("version 1", first), ("version 2", second)):
        if result is not None and result.step("evaluate").outputs.get("report"):
            console.print(
                f"report v{label[-1]}:   {short(result.step('evaluate').outputs['report'])}"
            )
    console.print(f"run records: {home}/runs/<run-id>/run.json")
    console.print(f"registry:    {home}/registry.db (mooring models list -c {toml})")
    console.print(f"model card:  mooring models show {project.name} --card -c {toml}")
    if importlib.util.find_spec("mooring.dashboard") is not None:
        console.print(f"dashboard:   mooring serve -c {toml}, then http://127.0.0.1:8501/ui/")
    console.print("by hand, each step:")
    for line in (
        f"mooring validate -c {toml}",
        f"mooring train -c {toml}",
        f"mooring evaluate -c {toml} --model {home}/runs/<run-id>/train/model",
        f"mooring models promote {project.name} N -c {toml}   (or models deploy --canary N -w 5)",
        f"mooring serve -c {toml} --port 8501",
        f"mooring monitor -c {toml} --watch",
        f"mooring run -c {toml}   (all of it, cached: a re-run retrains nothing)",
    ):
        console.print(f"  {line}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.exit(main())
    except MooringError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
