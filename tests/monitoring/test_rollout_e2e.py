"""End to end: a real server on 127.0.0.1, a real SQLite registry, real SavedModels, real traffic.

(a) a clearly worse canary (constant output) is rolled back by the monitor while clients
keep calling, and not one request fails; (b) a healthy canary is promoted through every
step by a monitor hosted as a server hosts it, and client errors sent to a canary never
count against it; (c) drifted traffic is detected by ``mooring monitor``, an alert
reaches a webhook receiver on 127.0.0.1 and the retraining trigger runs its command. The
decisions themselves (a latency regression, a skewed split) are tested alone in
test_decide.py and on the server's metrics in process in test_rollout.py and
test_rollout_policy.py.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mooring.cli import main
from mooring.config import MooringConfig
from mooring.contract._statistics import compute_statistics
from mooring.formats._version_record import VersionRecord
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._monitor import Monitor, MonitorReport
from mooring.monitoring._rollout import ACTOR, RolloutController
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.alerts import Collect
from tests._support.rollout import BLESSED, LINEAGE, LOGGED_SERVING, NAME, Clock, project
from tests._support.server import ServerThread, following
from tests._support.traffic import Traffic, logged_rows, tick_until
from tests._support.waiting import wait_until
from tests.monitoring._models import build_constant_model_dir, build_model_dir, rows
from tests.monitoring._webhook import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.decisions, pytest.mark.xdist_group("rollout-e2e")]

PREDICT = f"/v1/models/{NAME}:predict"
SERVING = LOGGED_SERVING


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rollout-models")
    return {
        "good": build_model_dir(root / "good", seed=0),
        "retrained": build_model_dir(root / "retrained", seed=0),
        "constant": build_constant_model_dir(root / "constant"),
        # A retrained model as real ones differ: half a millisecond slower a batch (within
        # the absolute margin, 2 ms), without production's slow path on rare inputs.
        "slightly-slower": build_model_dir(root / "slightly-slower", seed=0, delay_ms=0.5),
        "heavy-tail": build_model_dir(root / "heavy-tail", seed=0, tail_ms=15.0, tail_age=65.0),
    }


@contextmanager
def stack(
    home: Path, exported: dict[str, Path], **sections: Any
) -> Iterator[tuple[MooringConfig, Registry, ServerThread]]:
    """Project, registry (v1 good, v2 good retrained, v3 constant, v4 slightly slower, v5
    good with a heavy tail), server following it."""
    cfg = project(home, serving=SERVING, **sections)
    registry = Registry.from_config(cfg)
    baseline = compute_statistics(pa.Table.from_pylist(rows(4000, np.random.default_rng(0))))
    for key in ("good", "retrained", "constant", "slightly-slower", "heavy-tail"):
        register_judged(
            registry,
            name=NAME,
            artifact_dir=exported[key],
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED, statistics=baseline.to_dict()),
        )
    registry.deploy(NAME, production=1)
    with following(cfg, registry, NAME) as server:
        yield cfg, registry, server


# Requests between two ticks: the decisions are reached in ticks and requests, whatever
# the machine's speed.
PER_TICK = 100


def send_traffic(server: ServerThread, home: Path, *, seed: int = 1) -> Traffic:
    """Four-row requests like the training rows (see ``rows``), without labels."""
    rng = np.random.default_rng(seed)
    requests = ((rows(4, rng), None) for _ in itertools.count())
    return Traffic(server.url, PREDICT, requests, log=home / "predictions")


def served(server: ServerThread) -> set[int]:
    document = server.client.get(f"/v1/models/{NAME}").json()
    return {int(v["version"]) for v in document["model_version_status"]}


def serves_alone(server: ServerThread, version: int) -> None:
    wait_until(
        lambda: served(server) == {version},
        f"the server to serve v{version} alone",
        seen=lambda: served(server),
    )


class Hosted:
    """A monitor ticking in its own thread, seen one whole tick at a time.

    ``tick()`` returns the report of the first tick that began after the call (the one
    under way may have scraped before the last round of traffic ended).
    """

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def _next(self) -> MonitorReport:
        before = self.monitor.last_report
        wait_until(lambda: self.monitor.last_report is not before, "the hosted monitor's next tick")
        assert self.monitor.last_report is not None
        return self.monitor.last_report

    def tick(self) -> MonitorReport:
        self._next()
        return self._next()


def test_worse_canary_is_rolled_back_and_no_request_fails(
    tmp_path: Path, exported: dict[str, Path]
) -> None:
    rollout = {
        "steps": [50, 100],
        "min_requests": 20,
        "min_step_duration": "1h",  # it must never get to advance
        # The latency guardrail stays on with room for a loaded machine.
        "guardrails": {"min_prediction_rows": 100, "latency_margin_ms": 1000},
    }
    with stack(tmp_path / "home", exported, rollout=rollout) as (cfg, registry, server):
        sink = Collect()
        controller = RolloutController(
            cfg, registry, metrics=[server.url + "/metrics"], alerts=AlertManager([sink])
        )
        with send_traffic(server, cfg.home) as traffic:
            registry.deploy(NAME, production=1, canary=3, weight=50, reason="test canary")
            wait_until(lambda: 3 in served(server), "the canary v3 to load")
            decisions = tick_until(controller, traffic, per_tick=PER_TICK, done=lambda d: d.changed)
            serves_alone(server, 1)
            traffic.send(PER_TICK)  # clients keep calling after the rollback
        final = decisions[-1]
        assert final.action == "rollback", final.to_dict()
        assert traffic.failures == []
        assert traffic.seen["3"] > 0 and traffic.seen["1"] > 0
        broken = next(g for g in final.guardrails if g.name == "broken")
        assert broken.status == "breach" and "constant model" in broken.message
        # How far it is from production is reported beside, not what decided.
        divergence = next(g for g in final.guardrails if g.name == "divergence")
        assert divergence.status == "ok" and (divergence.value or 0) > 0.5
        dep = registry.deployment(NAME)
        assert (dep.production, dep.canary, dep.canary_weight) == (1, None, 0)
        event = registry.history(NAME)[-1]
        assert event.actor == ACTOR and "constant model" in (event.reason or "")
        assert [a.kind for a in sink.alerts] == ["rollback"]


def _hostile(server: ServerThread, version: int) -> None:
    """100 malformed requests pinned to ``version``, an unknown version, a disconnect."""
    path = f"/v1/models/{NAME}/versions/{version}:predict"
    bodies = [
        b"{",
        b"[]",
        b'{"instances": []}',
        b'{"instances": [{"age": "forty"}]}',
        b'{"instances": [{"age": 1e999}]}',
        b'{"inputs": {"age": [[[[1]]]]}}',
        b'{"instances": [{"age": 39, "age": 40}]}',
        b"\xff\xfe",
        b'{"instances": [null]}',
        b'{"signature_name": 3, "instances": [{}]}',
    ]
    for i in range(100):
        res = server.client.post(path, content=bodies[i % len(bodies)])
        assert 400 <= res.status_code < 500, (res.status_code, res.text)
    unknown = server.client.post(f"/v1/models/{NAME}/versions/99:predict", content=b"{}")
    assert unknown.status_code == 404, unknown.text
    assert server.client.get(f"/v2/models/{NAME}/versions/99/ready").status_code == 404
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{".encode())


def test_client_errors_sent_to_a_canary_never_count_against_it(
    tmp_path: Path, exported: dict[str, Path]
) -> None:
    rollout = {
        "steps": [50, 100],
        "min_requests": 20,
        "min_step_duration": "1h",  # it must hold, whatever the traffic
        # A few counted errors against production's none would fail the canary.
        "guardrails": {"prediction_js": False, "latency_margin_ms": 1000},
    }
    with stack(tmp_path / "home", exported, rollout=rollout) as (cfg, registry, server):
        controller = RolloutController(
            cfg, registry, metrics=[server.url + "/metrics"], alerts=AlertManager([])
        )
        with send_traffic(server, cfg.home) as traffic:
            registry.deploy(NAME, production=1, canary=2, weight=50, reason="test canary")
            wait_until(lambda: 2 in served(server), "the canary v2 to load")
            before = tick_until(
                controller,
                traffic,
                per_tick=PER_TICK,
                done=lambda d: d.action != "insufficient_data",
            )[-1]
            _hostile(server, 2)
            _hostile(server, 1)
            traffic.send(PER_TICK)
            after = controller.tick()
        assert traffic.failures == []
        assert before.action == after.action == "hold", (before.to_dict(), after.to_dict())
        errors = next(g for g in after.guardrails if g.name == "errors")
        assert errors.status == "ok" and errors.numbers["canary_errors"] == 0, errors
        assert errors.numbers["production_errors"] == 0, errors
        dep = registry.deployment(NAME)
        assert (dep.production, dep.canary, dep.canary_weight) == (1, 2, 50)


def test_healthy_canary_is_promoted_through_every_step_by_a_hosted_monitor(
    tmp_path: Path, exported: dict[str, Path]
) -> None:
    # The default steps (5, 25, 50, 100%), guardrails and latency margins; every guardrail
    # must pass before a step advances. The canary is half a millisecond slower a batch:
    # within the absolute margin (2 ms), so it must not hold the rollout.
    rollout = {"guardrails": {"min_prediction_rows": 200}}
    with stack(tmp_path / "home", exported, rollout=rollout) as (cfg, registry, server):
        # Hosted as a server would host it: a thread reading the app's metrics in process.
        clock = Clock()
        monitor = Monitor(
            cfg,
            registry,
            metrics=server.app.state.mooring.metrics.render,
            drift_interval_s=None,
            alerts=AlertManager([]),
            clock=clock,
        )
        with send_traffic(server, cfg.home) as traffic:
            # Production with a slow path on rare inputs; the canary half a millisecond
            # slower at the median, faster at the tail.
            registry.deploy(NAME, production=5, reason="a model with a heavy tail")
            serves_alone(server, 5)
            registry.deploy(NAME, production=5, canary=4, weight=5, reason="test canary")
            monitor.start(interval_s=0.2)
            try:
                rounds = tick_until(
                    Hosted(monitor),
                    traffic,
                    per_tick=4 * PER_TICK,
                    # The promotion may come in either of the two ticks a round waits for.
                    done=lambda _: registry.deployment(NAME).production == 4,
                    advance=lambda: clock.advance(1.0),
                )
            finally:
                monitor.stop()
            serves_alone(server, 4)
            traffic.send(PER_TICK)
        assert traffic.failures == []
        assert traffic.seen["5"] > 0 and traffic.seen["4"] > 0
        dep = registry.deployment(NAME)
        assert (dep.production, dep.canary) == (4, None)
        ours = [e for e in registry.history(NAME) if e.actor == ACTOR]
        steps = [(e.action, (e.after or {}).get("weight")) for e in ours]
        assert steps == [("deploy", 25), ("deploy", 50), ("deploy", 100), ("promote", 0)]
        assert all("requests" in (e.reason or "") for e in ours)
        assert all("every guardrail passes" in (e.reason or "") for e in ours)
        # Latency let the 5% step go (passed, or its tail leaning within the margin) on a
        # median slower than production's and a faster tail.
        first = ours[0].reason or ""
        p99 = re.search(r"latency \[\w+\]: .*?p99 ([\d.]+) vs ([\d.]+) ms", first)
        assert p99 is not None, first
        assert float(p99[1]) < float(p99[2]), first
        # Decided on evidence, not on a fixed sample: well within the 60 rounds allowed (a
        # p90 within its margin is shown so from a few hundred canary batches).
        assert len(rounds) <= 40, len(rounds)
        assert monitor.last_report is not None and monitor.last_report.slo is not None


def test_drifted_traffic_alerts_a_webhook_and_triggers_retraining(
    tmp_path: Path, exported: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    marker = home / "retrained.json"
    write = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    with Receiver() as hook:
        monitoring = {
            "window_rows": 800,
            "min_samples": 300,
            "prediction": False,
            "alerts": {"webhook_url": hook.url, "webhook_backoff": 0.05},
            "retrain": {
                "enabled": True,
                "data": "fresh.csv",
                "command": [sys.executable, "-c", write, str(marker), "{data}", "{version}"],
            },
        }
        with stack(home, exported, monitoring=monitoring) as (cfg, _registry, server):
            config_file = home / "mooring.toml"
            config_file.write_text(
                _toml(cfg, hook.url, [sys.executable, "-c", write, str(marker)]),
                encoding="utf-8",
            )
            rng = np.random.default_rng(7)
            for _ in range(200):  # 800 rows: age +15 years, the sex mix flipped
                body = orjson.dumps({"instances": rows(4, rng, age_shift=15.0, female=0.67)})
                assert server.client.post(PREDICT, content=body).status_code == 200
            wait_until(
                lambda: logged_rows(home / "predictions") >= 800,
                "the prediction log to hold the 800 drifted rows",
                seen=lambda: logged_rows(home / "predictions"),
            )
            code = main(
                [
                    "monitor",
                    "--config",
                    str(config_file),
                    "--metrics-url",
                    server.url + "/metrics",
                    "--drift-every",
                    "0s",
                ]
            )
        assert code == 0
        wait_until(lambda: len(hook.bodies) >= 2, "two webhook calls", seen=lambda: hook.bodies)
    kinds = {body["kind"]: body for body in hook.bodies}
    assert set(kinds) >= {"drift", "retrain"}
    assert kinds["drift"]["version"] == 1 and "age" in kinds["drift"]["summary"]
    assert json.loads(marker.read_text()) == [str(home / "fresh.csv"), "1"]
    [record] = [
        json.loads(p.read_text()) for p in (home / "monitoring" / NAME / "retrain").glob("2*.json")
    ]
    assert record["trigger"] == "drift" and record["exit_code"] == 0 and record["version"] == 1
    drift = json.loads((home / "monitoring" / NAME / "drift" / "latest.json").read_text())
    assert drift["status"] == "drift" and {"age", "sex"} <= set(drift["drifted"])
    state = json.loads((home / "monitoring" / NAME / "slo.json").read_text())
    assert len(state["samples"]) == 1


def _toml(cfg: MooringConfig, hook: str, command: list[str]) -> str:
    """The same project as a mooring.toml file, for the command line."""
    quoted = ", ".join(json.dumps(c) for c in [*command, "{data}", "{version}"])
    serving = "\n".join(f"{k} = {json.dumps(v)}" for k, v in SERVING.items())
    return f"""
[project]
name = "{NAME}"
home = {json.dumps(str(cfg.home))}

[data]
train = "train.csv"
label = "class"

[serving]
{serving}

[monitoring]
window_rows = 800
min_samples = 300
prediction = false

[monitoring.alerts]
webhook_url = "{hook}"
webhook_backoff = 0.05

[monitoring.retrain]
enabled = true
data = "fresh.csv"
command = [{quoted}]
"""
