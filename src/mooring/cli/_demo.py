"""``mooring demo``: the whole loop on the UCI Adult data the package ships, from an empty
folder.

1. ``mooring run``: validate → train → evaluate → gate → register → replay → deploy; the
   first version becomes production.
2. Serve it on 127.0.0.1 and send requests built from ``adult.test`` rows through TF
   Serving's REST API (every request lands in the prediction log).
3. Train a second version (another seed and architecture) with the same pipeline: it is
   replayed against the logged production traffic and deployed as a canary.
4. Send traffic to both and show the rollout monitor's decision.

The project (``mooring.toml``, ``contract/schema.yaml`` and the data, from the package's
``_demo`` folder) is copied into the folder named, which then holds everything the demo
made; each later ``mooring demo`` of that folder starts again from an empty ``.mooring``.
Every process the demo starts is stopped before it ends.
"""

from __future__ import annotations

import csv
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console
from mooring.cli._run import _ConsoleObserver
from mooring.errors import UsageError
from mooring.formats._gate import DecisionRecord

if TYPE_CHECKING:
    from mooring._project import Project
    from mooring.monitoring._rollout_state import RolloutDecision
    from mooring.pipeline import RunResult

#: The file that marks a folder as one ``mooring demo`` made (so it may start it again).
MARKER = ".mooring-demo"
#: The project's files, in the package's ``_demo`` folder.
PROJECT_FILES = ("mooring.toml", "adult.data.csv.gz", "adult.test.csv.gz", "contract/schema.yaml")
NUMERIC = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}


@app.command(
    "demo",
    epilog="Example: mooring demo mooring-demo, then cd mooring-demo && mooring status",
)
def demo(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Where the demo project is written (created; a folder an earlier "
            "mooring demo made is started again).",
        ),
    ] = Path("mooring-demo"),
    no_run: Annotated[
        bool,
        typer.Option(
            "--no-run",
            help="Only write the project (mooring.toml, its contract and the data), to "
            "take it step by step as the tutorial does.",
        ),
    ] = False,
) -> None:
    """Run the whole loop on the bundled UCI Adult data: train, gate, register, serve,
    a second version as a canary, and the rollout monitor's decision."""
    toml = prepare(folder)
    if no_run:
        console.print(f"the demo project is in {toml.parent}: cd {toml.parent} && mooring run")
        return
    code = run_demo(toml)
    if code:
        raise typer.Exit(code)


def prepare(folder: Path) -> Path:
    """Write the demo project into ``folder`` (new or empty), or keep the one an earlier
    demo wrote there; returns its ``mooring.toml``.

    Raises:
        UsageError: ``folder`` is a file, or a folder with other files in it.

    >>> prepare(Path("mooring-demo"))  # doctest: +SKIP
    PosixPath('mooring-demo/mooring.toml')
    """
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; name a folder for the demo project")
    if folder.is_dir() and any(folder.iterdir()):
        if (folder / MARKER).is_file() and (folder / "mooring.toml").is_file():
            return folder / "mooring.toml"
        raise UsageError(
            f"{folder} is not empty and no mooring demo made it; name a new folder "
            "(e.g. mooring demo mooring-demo)"
        )
    source = files("mooring") / "_demo"
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    for name in PROJECT_FILES:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with as_file(source.joinpath(*name.split("/"))) as path:
            shutil.copyfile(path, target)
    (staging / MARKER).write_text(
        "Made by mooring demo; it starts again from an empty .mooring when run here again.\n"
    )
    if folder.is_dir():
        folder.rmdir()  # empty: the finished project takes its place in one rename
    staging.rename(folder)
    return folder / "mooring.toml"


def _step(number: int, title: str) -> None:
    heading = f"{number}. {title}"
    if len(heading) + 4 <= console.width:
        console.rule(f"[bold]{escape(heading)}", align="left")
    else:  # a rule cuts its title short ("depl…"): the rule, then the title whole
        console.rule()
        console.print(f"[bold]{escape(heading)}[/]")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _test_rows(project: Project, count: int) -> list[dict[str, Any]]:
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


class _Client:
    """JSON over HTTP/1.1 to the demo's server, one kept-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._local = threading.local()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._local.conn = conn
        payload = None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            data = answer.read()
        except OSError:
            conn.close()  # the next request on this thread opens a new connection
            self._local.conn = None
            raise
        headers = {k.lower(): v for k, v in answer.getheaders()}
        return answer.status, headers, json.loads(data) if data else None


def _start_server(toml: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "mooring", "serve", "--config", str(toml)]
    return subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(client: _Client, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            said = server.stderr.read() if server.stderr else ""
            raise UsageError(f"the demo's server stopped: {said.strip()}")
        try:
            if client.request("GET", "/v2/health/ready")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise UsageError("the demo's server did not become ready in 120 s")
        time.sleep(0.3)


def _send(client: _Client, name: str, rows: list[dict[str, Any]]) -> Counter[str]:
    """One request per row, four at a time; how many each version answered."""

    def one(row: dict[str, Any]) -> str:
        instance = {k: v for k, v in row.items() if k != "class"}
        status, headers, body = client.request(
            "POST", f"/v1/models/{name}:predict", {"instances": [instance]}
        )
        if status != 200:
            raise UsageError(f"the demo's server answered {status}: {body}")
        return str(headers.get("x-model-version"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return Counter(pool.map(one, rows))


def _show_run(result: RunResult) -> None:
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
    decision = DecisionRecord.read(evaluate.get("decision", {}))
    for gate in decision.gates:
        value = gate.value
        bound = {k: v for k, v in (gate.bound or {}).items() if v is not None}
        outcome = (
            "[yellow]skipped[/]"
            if gate.skipped
            else "[green]pass[/]"
            if gate.passed
            else "[red]FAIL[/]"
        )
        gates.add_row(
            gate.name,
            "—" if value is None else f"{value:.4f}",
            ", ".join(f"{k} {v}" for k, v in bound.items()),
            outcome,
        )
    console.print(gates)
    console.print(
        f"run {result.run_id}: {result.status} in {result.record.get('duration_s', 0):.0f} s, "
        f"{result.record.get('cpu_seconds', 0):.0f} CPU-s"
    )
    if not result.ok:
        console.print(f"[red]rejected:[/] {escape(str(result.reason))}", soft_wrap=True)


def run_demo(toml: Path) -> int:
    """The four steps on the project ``toml`` names, from an empty ``.mooring``; the exit
    code (1 when the first version is refused)."""
    from mooring._project import Project

    started = time.perf_counter()
    project = Project.load(toml)
    if project.home.exists():
        shutil.rmtree(project.home)
    console.print(
        f"[bold]mooring demo[/] — project '{project.name}' in {toml.parent}, starting from "
        f"an empty {project.home.name}"
    )

    _step(1, "mooring run: validate → train → evaluate → gate → register → replay → deploy")
    first = project.run(observer=_ConsoleObserver())
    _show_run(first)
    if not first.ok:
        return 1

    _step(2, "Serve on 127.0.0.1 and send real requests (TF Serving REST API)")
    port = _free_port()
    client = _Client(port)
    server = _start_server(toml, port)
    try:
        _wait_ready(client, server)
        rows = _test_rows(project, 6000)
        _show_answers(client, project.name, rows[:8])
        served = _send(client, project.name, rows[8:1000])
        console.print(
            f"{sum(served.values())} more requests answered by version(s) {dict(served)}; "
            "each one is in the prediction log"
        )
        time.sleep(2.0)  # the log is written at least every second

        _step(3, "A second version (seed 7, hidden [64, 32]) through the same pipeline")
        candidate = Project.load(toml)
        candidate.config.model.seed = 7
        candidate.config.model.hidden = [64, 32]
        second = candidate.run(observer=_ConsoleObserver())
        _show_run(second)
        replay = second.step("replay").outputs
        if replay.get("status") == "compared":
            console.print(
                f"replay of {replay['rows']} logged requests: mean |Δ P(>50K)| "
                f"{replay['mean_abs_diff']:.4f}, {replay['flips']} decisions flip "
                f"({replay['flip_rate']:.2%})"
            )
        if second.ok and second.deployed_as == "canary":
            _step(4, f"Traffic on the canary ({second.canary_weight}%) and the monitor")
            _watch_canary(toml, project, client, rows[1000:], second)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    _summary(toml, project, started)
    return 0


def _show_answers(client: _Client, name: str, sample: list[dict[str, Any]]) -> None:
    instances = [{k: v for k, v in r.items() if k != "class"} for r in sample]
    status, headers, body = client.request(
        "POST", f"/v1/models/{name}:predict", {"instances": instances}
    )
    answers = Table(
        "age",
        "education",
        "occupation",
        "hours",
        "P(>50K)",
        "predicted",
        "actual",
        title=f"POST /v1/models/{name}:predict → {status}, "
        f"version {headers.get('x-model-version')}",
    )
    for row, prediction in zip(sample, (body or {}).get("predictions", []), strict=False):
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
    status, _, refused = client.request(
        "POST", f"/v1/models/{name}:predict", {"instances": [{"age": "old"}]}
    )
    console.print(f"a bad request is answered {status}: {escape(str(refused))}", soft_wrap=True)


def _watch_canary(
    toml: Path, project: Project, client: _Client, rows: list[dict[str, Any]], second: RunResult
) -> None:
    from mooring._project import Project
    from mooring.monitoring import RolloutController
    from mooring.registry import Registry

    version = str(second.version)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the server polls the deployment record every second
        if version in _send(client, project.name, rows[:40]):
            break
    cfg = Project.load(toml).config
    # Demo pace: the defaults wait for 200 canary requests and 5 minutes per step.
    cfg.rollout.min_requests = 100
    cfg.rollout.min_step_duration = 5.0
    console.print(
        f"rollout steps {cfg.rollout.steps}; this demo judges a step after "
        f"{cfg.rollout.min_requests} canary requests and {cfg.rollout.min_step_duration:g} s"
    )
    with Registry.from_config(cfg) as registry:
        controller = RolloutController(cfg, registry, metrics=[f"{client.base}/metrics"])
        first = controller.tick()  # the monitor starts counting here
        console.print(f"monitor: {escape(_decision(first))}")
        began = time.monotonic()
        # About 250 for the canary at 5%: its outputs are judged from 200 logged rows.
        served = _send(client, project.name, rows[40:5000])
        console.print(f"{sum(served.values())} requests answered by version {dict(served)}")
        time.sleep(max(0.0, 5.5 - (time.monotonic() - began)) + 1.5)
        decision = controller.tick()
    table = Table("guardrail", "status", title=f"monitor decision: {decision.action}")
    table.add_column("detail", overflow="fold")  # a path too long for the cell, whole
    for guard in decision.guardrails:
        table.add_row(guard.name, guard.status, escape(guard.message))
    console.print(table)
    console.print(escape(_decision(decision)))


def _decision(decision: RolloutDecision) -> str:
    """The decision in one line, the numbers left to its guardrails' (a reason repeats them)."""
    from mooring.monitoring._rollout_view import GuardrailView, decision_line, reasons_beyond

    views = [GuardrailView.from_result(g) for g in decision.guardrails]
    d = decision
    line = decision_line(d.action, d.canary, d.from_weight, d.to_weight, views, d.numbers)
    return "; ".join([line, *reasons_beyond(d.reasons, views)])


def _summary(toml: Path, project: Project, started: float) -> None:
    from mooring.registry import Registry

    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    folder = toml.parent
    shown = os.path.relpath(folder) if folder.resolve().is_relative_to(Path.cwd()) else folder
    with Registry.from_config(project.config) as registry:
        dep = registry.deployment(project.name)
    canary = f", canary {dep.canary} at {dep.canary_weight}%" if dep.canary is not None else ""
    console.print(f"serving:     production {dep.production}{canary}")
    console.print(f"project:     {shown}/mooring.toml; its state in {shown}/.mooring")
    console.print(f"next, in {shown}:")
    # Commands whole in their column, what they do wrapped beside them.
    steps = Table.grid(padding=(0, 2))
    steps.add_column(no_wrap=True)
    steps.add_column()
    for command, what in (
        ("mooring status", "production, canary, last run, last drift check"),
        ("mooring serve --port 8501", "then http://127.0.0.1:8501/ui/ (the dashboard)"),
        (f"mooring models show {project.name} --card", "the model card"),
        ("mooring monitor --watch", "judge the canary until it is promoted or rolled back"),
        ("mooring run", "all of it again, cached: a re-run retrains nothing"),
    ):
        steps.add_row(f"  {escape(command)}", escape(what))
    console.print(steps)
