"""``mooring ops grafana``: three dashboards on the ``${datasource}`` variable, written by the
CLI, and every panel's PromQL answered by a real Prometheus scraping a real ``mooring serve``.

The slow test runs Debian's ``/usr/bin/prometheus`` against ``mooring serve`` (a real
SQLite registry: a production version with a contract and training statistics, and a
broken canary that fails to load) and ``mooring drift --metrics-port`` (drift of the
logged traffic, live metrics from labels sent with ``mooring feedback``). Without
Prometheus it is skipped, unless ``MOORING_REQUIRE_PROMTOOL=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions
from mooring.contract._schema import ColumnSchema, Schema
from mooring.contract._statistics import compute_statistics
from mooring.formats._metrics import REQUESTS_REFUSED, total
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.ops._grafana import KINDS, grafana_dashboards, prometheus_queries, uid
from mooring.ops._rule_tests import write_prometheus
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.cli import run_mooring
from tests._support.serve_process import ServeProcess
from tests._support.server import BLESSED, LINEAGE, NAME, free_port
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until


def _config(name: str = "income") -> MooringConfig:
    return MooringConfig.model_validate(
        {"project": {"name": name}, "data": {"train": "train.csv", "label": "class"}}
    )


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_three_dashboards_every_panel_on_the_datasource_variable() -> None:
    boards = grafana_dashboards(_config())
    assert list(boards) == ["executive", "oncall", "debug"]
    text = json.dumps(boards)
    assert "${DS_" not in text
    for kind, board in boards.items():
        panels = _panels(board)
        assert len(panels) >= 5, kind
        for panel in panels:
            expected = (
                "${traces}" if panel["title"].startswith("Slow requests") else "${datasource}"
            )
            assert panel["datasource"]["uid"] == expected, (kind, panel["title"])
            assert panel["targets"], (kind, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == expected, (kind, panel["title"])
                assert target["refId"], (kind, panel["title"])
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)
    titles = {k: " | ".join(p["title"] for p in _panels(b)) for k, b in boards.items()}
    assert (
        "Live quality" in titles["executive"] and "CPU seconds per request" in titles["executive"]
    )
    assert "p95 / p99" in titles["oncall"] and "Canary weight" in titles["oncall"]
    assert "Contract violations" in titles["debug"] and "Slow requests" in titles["debug"]


def test_variables_datasource_model_and_version() -> None:
    for kind, board in grafana_dashboards(_config()).items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name in ("model", "version"):
            assert variables[name]["type"] == "query"
            assert variables[name]["query"].startswith("label_values(")
            assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables["model"]["current"]["value"] == "income"
        assert variables["version"]["allValue"] == ".*"
        assert ("traces" in variables) == (kind == "debug")
        # Every query is scoped to the chosen model, but the door's refusals (they come
        # before a model is chosen, so that counter has no model label).
        unscoped = [e for e in prometheus_queries(board) if 'model=~"$model"' not in e]
        assert all(total(REQUESTS_REFUSED) in e for e in unscoped), unscoped


def test_uids_stable_and_distinct() -> None:
    first, second = grafana_dashboards(_config()), grafana_dashboards(_config())
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert [b["uid"] for b in first.values()] == [f"mooring-income-{k}" for k in KINDS]
    other = grafana_dashboards(_config("churn"))
    assert {b["uid"] for b in other.values()}.isdisjoint(b["uid"] for b in first.values())
    long = _config("a" * 120)
    uids = {uid(long, kind) for kind in KINDS}
    assert len(uids) == 3 and all(len(u) <= 40 for u in uids)
    assert uid(long, "debug") == uid(_config("a" * 120), "debug")


def _project(tmp_path: Path) -> Path:
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "income"\nhome = "state"\n[data]\ntrain = "t.csv"\nlabel = "y"\n'
    )
    return config


def test_cli_writes_the_dashboards_and_the_provisioning_file(tmp_path: Path) -> None:
    config = _project(tmp_path)
    done = run_mooring("ops", "grafana", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "state/ops/grafana"
    for kind in KINDS:
        path = folder / f"mooring-income-{kind}.json"
        # Under the project's home, wherever the command runs from.
        assert f"wrote {path.resolve()}" in done.stdout
        assert json.loads(path.read_text())["uid"] == f"mooring-income-{kind}"
    provider = yaml.safe_load((folder / "mooring-income.provisioning.yml").read_text())
    (entry,) = provider["providers"]
    assert provider["apiVersion"] == 1 and entry["type"] == "file"
    assert entry["options"]["path"] == str(folder.resolve())

    out = tmp_path / "elsewhere"
    done = run_mooring(
        "ops", "grafana", "-c", str(config), "--out", str(out), "--json",
        "--dashboards-path", "/var/lib/grafana/dashboards/mooring",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert sorted(said["dashboards"]) == sorted(KINDS) and said["panels"] >= 15
    provider = yaml.safe_load(Path(said["provisioning"]).read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/mooring"


def test_cli_names_a_bad_config_and_a_bad_out(tmp_path: Path) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "income"\n[data]\ntrain = "t.csv"\nlabel = "y"\n'
        "[monitoring.slo]\nlatency_ms = -5\n"
    )
    done = run_mooring("ops", "grafana", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "latency_ms" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    file = tmp_path / "a-file"
    file.write_text("")
    done = run_mooring("ops", "grafana", "-c", str(_project(tmp_path)), "--out", str(file))
    assert done.returncode == 2
    assert "--out" in done.stderr and "is a file" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- A real Prometheus, a real server, the real drift exporter -------------------------


def _prometheus() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None
    )
    if found is None:
        if os.environ.get("MOORING_REQUIRE_PROMTOOL") == "1":
            pytest.fail(
                "prometheus is required (MOORING_REQUIRE_PROMTOOL=1): apt install prometheus"
            )
        pytest.skip("prometheus is not installed (Debian: apt install prometheus)")
    return found


class _Process:
    """A subprocess stopped (SIGTERM, then SIGKILL) on the way out."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )

    def alive(self) -> None:
        if self.proc.poll() is not None:
            out = self.proc.stdout.read() if self.proc.stdout else ""
            raise AssertionError(f"{self.proc.args[:3]} exited {self.proc.returncode}: {out}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def _until(what: str, check: Callable[[], Any], *procs: _Process, **options: Any) -> Any:
    """:func:`wait_until` ``check``, failing at once when one of ``procs`` has exited."""

    def alive_and_checked() -> Any:
        for proc in procs:
            proc.alive()
        return check()

    return wait_until(alive_and_checked, what, interval=0.25, ignoring=(httpx.TransportError,),
                      **options)  # fmt: skip


def _query(base: str, expr: str) -> dict[str, Any]:
    # verify=False on plain http: httpx otherwise builds a TLS context for each call (some
    # 25 ms of CPU), and the panels' queries are asked every quarter second until answered.
    params = {"query": expr}
    answer = httpx.get(f"{base}/api/v1/query", params=params, timeout=PATIENCE, verify=False)
    assert answer.status_code in (200, 400, 422), (expr, answer.status_code, answer.text)
    data: dict[str, Any] = answer.json()
    return data


def _registry(home: Path, model_dirs: dict[str, Path], folder: Path) -> None:
    """Version 1 with a contract and training statistics; a broken version 2 as canary."""
    with (folder / "train.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["age", "hours-per-week", "workclass", "sex", "class"])
        for i in range(300):
            writer.writerow(
                [17 + (i * 7) % 74, 1 + (i * 13) % 99, ("Private", "Self-emp")[i % 2],
                 ("Male", "Female")[i % 3 % 2], ("<=50K", ">50K")[i % 2]]
            )  # fmt: skip
    stats = compute_statistics(folder / "train.csv", ReadOptions())
    schema = Schema(
        columns={
            "age": ColumnSchema("age", "integer", min=17, max=90),
            "hours-per-week": ColumnSchema("hours-per-week", "float", min=1, max=99),
            "workclass": ColumnSchema("workclass", "string", domain=["Private", "Self-emp"]),
            "sex": ColumnSchema("sex", "string"),
        }
    )
    with Registry.open(f"sqlite:///{home / 'registry.db'}", artifacts=home / "artifacts") as reg:
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dirs["a"],
            record=VersionRecord(
                lineage=LINEAGE,
                gate=BLESSED,
                statistics=stats.to_dict(),
                run=RunRecord.read({"schema": schema.to_dict()}),
            ),
        )
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dirs["broken"],
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
        reg.deploy(NAME, production=1, canary=2, weight=20)


def _traffic(url: str, labels: Path) -> None:
    """200s (two with contract violations), 400s, a 404 and a refusal at the door."""
    with (
        httpx.Client(base_url=url, timeout=PATIENCE) as client,
        labels.open("w", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(["request_id", "label"])
        for i in range(60):
            body = row(age=18 + i, hours=20 + i % 40, workclass=("Private", "Self-emp")[i % 2])
            if i == 3:
                body["age"] = 200.0  # out of range
            if i == 4:
                body["workclass"] = "Never-worked"  # unseen category
            answer = client.post(
                f"/v1/models/{NAME}:predict", json={"instances": [body]},
                headers={"x-request-id": f"req-{i}"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            # Labels join on the id the server answered, not the client's own.
            writer.writerow([answer.headers["x-request-id"], (">50K", "<=50K")[i % 3 % 2]])
        for _ in range(5):
            answer = client.post(f"/v1/models/{NAME}:predict", json={"instances": [{"age": 1}]})
            assert 400 <= answer.status_code < 500, answer.text
        assert (
            client.post("/v1/models/nope:predict", json={"instances": [row()]}).status_code == 404
        )
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        sock.sendall(b"POST /v1/models/income:predict HTTP/1.1\r\nHost: x\r\n")  # never ends
        assert sock.recv(4096).startswith(b"HTTP/1.1 408"), "no read timeout at the door"


@contextlib.contextmanager
def _trickle(url: str) -> Iterator[None]:
    """Keep answering a request every 50 ms, so every rate has something to show."""
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
                stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


MONITORING = "[monitoring]\nmin_samples = 20\nlive_min_labels = 20\n"


@pytest.mark.slow
def test_every_panel_query_answers_from_a_real_prometheus(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    prometheus_bin = _prometheus()
    home = tmp_path / ".mooring"
    home.mkdir()
    _registry(home, model_dirs, tmp_path)
    serving = {"poll_interval_s": 0.5, "header_timeout_s": 0.5, "log_sample_rate": 1.0}
    serving |= {"log_flush_s": 0.2, "log_flush_rows": 20, "deadline_ms": PATIENCE * 1000}
    processes: list[_Process] = []
    try:
        with ServeProcess(tmp_path, None, toml=MONITORING, **serving) as server:
            cfg = load_config(server.config)
            rules, _, ruleset = write_prometheus(cfg, tmp_path / "rules")
            _traffic(server.url, tmp_path / "labels.csv")
            fed = run_mooring(
                "feedback", str(tmp_path / "labels.csv"), "-c", str(server.config), cwd=tmp_path
            )
            assert fed.returncode == 0, fed.stderr
            drift_port = free_port()
            drift = _Process(
                *(sys.executable, "-m", "mooring", "drift", "-c", str(server.config)),
                *("--metrics-port", str(drift_port), "--interval", "1"),
                cwd=tmp_path,
            )
            processes.append(drift)
            exported = _until(
                "drift and live gauges from mooring drift --metrics-port",
                lambda: _gauges(f"http://127.0.0.1:{drift_port}/metrics"),
                drift,
            )
            assert 'mooring_live_labels{model="income",version="1"}' in exported
            web = free_port()
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                    for job, port in (("mooring", server.port), ("mooring-drift", drift_port))
                ],
            }
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
            prometheus = _Process(
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            )
            processes.append(prometheus)
            base = f"http://127.0.0.1:{web}"
            # Until its storage is open, Prometheus answers 503 in plain text.
            _until(
                "prometheus ready",
                lambda: (
                    httpx.get(f"{base}/-/ready", timeout=PATIENCE, verify=False).status_code == 200
                ),
                prometheus,
            )
            with _trickle(server.url):
                _until(
                    "both targets scraped",
                    lambda: (
                        len(_query(base, "up == 1")["data"]["result"]) == 2
                        and _query(base, "mooring_live_metric")["data"]["result"]
                        and _query(base, "mooring_requests_refused_total")["data"]["result"]
                    ),
                    prometheus,
                )
                # Rates need two samples after what they count: scrapes go on meanwhile.
                boards = grafana_dashboards(cfg)
                _until(
                    "every panel's query to return data",
                    lambda: not _empty_panels(base, boards),
                    prometheus,
                    seen=lambda: _empty_panels(base, boards),
                )
                _check_panels(base, boards)
                _check_variables(base)
                _check_recording_rules(base, ruleset.rules, prometheus)
    finally:
        for proc in reversed(processes):
            proc.stop()


def _gauges(url: str) -> str | None:
    text = httpx.get(url, timeout=5, verify=False).text
    return text if "mooring_live_metric{" in text and "mooring_drift_status{" in text else None


def _substitute(expr: str) -> str:
    return (
        expr.replace("$model", NAME)
        .replace("$version", ".*")
        .replace("$__rate_interval", "15s")
        .replace("$__interval", "1m")
    )


def _answer_panels(base: str, boards: dict[str, dict[str, Any]]) -> tuple[int, list[str]]:
    """How many panel queries were answered, and the panels whose answer is empty."""
    empty = []
    checked = 0
    for kind, board in boards.items():
        for panel in _panels(board):
            for target in panel["targets"]:
                if "expr" not in target:
                    assert panel["datasource"]["type"] == "tempo", panel["title"]
                    continue
                answer = _query(base, _substitute(target["expr"]))
                assert answer["status"] == "success", (kind, panel["title"], answer)
                checked += 1
                if not answer["data"]["result"]:
                    empty.append(f"{kind}: {panel['title']} [{target['refId']}]")
    return checked, empty


def _empty_panels(base: str, boards: dict[str, dict[str, Any]]) -> list[str]:
    return _answer_panels(base, boards)[1]


def _check_panels(base: str, boards: dict[str, dict[str, Any]]) -> None:
    checked, empty = _answer_panels(base, boards)
    assert checked >= 25
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def _check_variables(base: str) -> None:
    for label, match, expected in (
        ("model", "mooring_requests_total", NAME),
        ("version", 'mooring_requests_total{model=~"income"}', "1"),
    ):
        answer = httpx.get(
            f"{base}/api/v1/label/{label}/values",
            params={"match[]": match},
            timeout=PATIENCE,
            verify=False,
        ).json()
        assert answer["status"] == "success" and expected in answer["data"], answer


def _check_recording_rules(base: str, rules: dict[str, Any], prometheus: _Process) -> None:
    """The rules of ``mooring ops prometheus``, loaded by this Prometheus, record series."""
    records = sorted({r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r})
    assert len(records) >= 8

    def missing() -> list[str]:
        return [r for r in records if not _query(base, r)["data"]["result"]]

    _until("every recording rule to record a series", lambda: not missing(), prometheus,
           seen=missing)  # fmt: skip
    availability = _query(base, f'slo:sli_error:ratio_rate5m{{model="{NAME}",slo="availability"}}')
    (sample,) = availability["data"]["result"]
    assert float(sample["value"][1]) == 0.0  # 4xx, 404 and refusals are not server errors
