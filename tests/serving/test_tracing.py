"""Traces of served requests: a real server exporting over OTLP/HTTP to a local receiver.

One server with ``[observability] otlp_endpoint`` set takes concurrent predictions; the
receiver decodes what the exporter posted (as a collector would). Off, no
``opentelemetry`` module is ever imported; set without the extra, ``mooring serve``
says what to install.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mooring._tracing import start_tracing
from mooring.config import MooringConfig, ServingConfig
from mooring.config._observability import ObservabilityConfig
from mooring.contract._schema import ColumnSchema, Schema
from mooring.serving import DirectorySource, build_app, create_app
from tests._support.otlp import OTLPReceiver, ReceivedSpan
from tests._support.server import NAME, ServerThread, new_registry
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVER_KIND = 2  # SPAN_KIND_SERVER in the OTLP protocol
ERROR_STATUS = 2  # STATUS_CODE_ERROR
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def project(home: Path, **observability: object) -> MooringConfig:
    return MooringConfig.from_mapping(
        {
            "project": {"name": NAME, "home": str(home)},
            "data": {"train": "train.csv", "label": "class"},
            "serving": {
                "warmup_requests": 1,
                "max_batch_size": 64,
                "batch_timeout_ms": 5.0,
                "poll_interval_s": 0.1,
                "deadline_ms": PATIENCE * 1000,  # no request may end 504
            },
            "observability": observability,
        }
    )


@dataclass
class Traffic:
    spans: list[ReceivedSpan]
    rows: dict[str, int]  # the client's request id → rows sent
    statuses: dict[str, int]  # the client's request id → HTTP status
    answered: dict[str, str]  # the client's request id → the server's (X-Request-Id)


def _predict(client: httpx.Client, index: int) -> tuple[str, int, httpx.Response]:
    rows = 1 + index % 3
    rid = f"req-{index:03d}"
    response = client.post(
        f"/v1/models/{NAME}:predict",
        json={"instances": [row(age=20.0 + index) for _ in range(rows)]},
        headers={"X-Request-Id": rid},
    )
    return rid, rows, response


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]) -> Traffic:
    """48 concurrent predictions, one v2 inference, one refused request, one with a caller's
    traceparent; every span the server exported, once it has stopped (and flushed)."""
    root = tmp_path_factory.mktemp("traced")
    registry = new_registry(root, model_dirs)
    registry.deploy(NAME, production=1)
    with OTLPReceiver() as receiver:
        cfg = project(root / "home", otlp_endpoint=receiver.url, service_name="income-api")
        app = create_app(cfg, registry=registry)
        rows: dict[str, int] = {}
        statuses: dict[str, int] = {}
        answered: dict[str, str] = {}
        with ServerThread(app) as server:
            server.wait_ready()
            with ThreadPoolExecutor(16) as pool:
                clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(16)]
                done = list(pool.map(lambda i: _predict(clients[i % 16], i), range(48)))
                for client in clients:
                    client.close()
            for rid, count, response in done:
                rows[rid], statuses[rid] = count, response.status_code
                answered[rid] = response.headers["X-Request-Id"]
            v2 = server.client.post(
                f"/v2/models/{NAME}/infer",
                json={
                    "inputs": [
                        {"name": "age", "shape": [1], "datatype": "FP32", "data": [39.0]},
                        {"name": "hours-per-week", "shape": [1], "datatype": "FP32", "data": [40]},
                        {"name": "workclass", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                        {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["Male"]},
                    ]
                },
                headers={"X-Request-Id": "v2-1"},
            )
            rows["v2-1"], statuses["v2-1"] = 1, v2.status_code
            answered["v2-1"] = v2.headers["X-Request-Id"]
            bad = server.client.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [{"age": "old"}]},
                headers={"X-Request-Id": "bad-1"},
            )
            statuses["bad-1"] = bad.status_code
            answered["bad-1"] = bad.headers["X-Request-Id"]
            caller = server.client.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [row()]},
                headers={
                    "X-Request-Id": "caller-1",
                    "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                },
            )
            rows["caller-1"], statuses["caller-1"] = 1, caller.status_code
            answered["caller-1"] = caller.headers["X-Request-Id"]
        # The app's shutdown flushed the exporter: everything is on its way.
        wait_until(
            lambda: sum(x.kind == SERVER_KIND for x in receiver.received()) >= 51,
            "the 51 requests' spans at the receiver",
            seen=lambda: len(receiver.received()),
        )
        spans = receiver.received()
    registry.close()
    return Traffic(spans, rows, statuses, answered)


def _requests(traffic: Traffic) -> dict[str, ReceivedSpan]:
    """Each request span by the client's own request id."""
    found = [s for s in traffic.spans if s.kind == SERVER_KIND]
    by_id = {s.attributes["mooring.client_request_id"]: s for s in found}
    assert len(by_id) == len(found), "one request span per request"
    return by_id


def test_one_trace_per_request_with_its_attributes(traffic: Traffic) -> None:
    requests = _requests(traffic)
    assert set(requests) == set(traffic.statuses)
    assert set(traffic.statuses.values()) == {200, 400}
    plain = [s for rid, s in requests.items() if rid != "caller-1"]
    assert len({s.trace_id for s in plain}) == len(plain)
    assert all(s.parent_id == "" for s in plain)
    for rid, span in requests.items():
        # The server's id (the X-Request-Id it answered) beside the client's own.
        assert span.attributes["mooring.request_id"] == traffic.answered[rid] != rid
        assert span.service == "income-api"
        assert span.attributes["mooring.model"] == NAME
        assert span.attributes["http.response.status_code"] == traffic.statuses[rid]
        assert span.attributes["mooring.protocol"] == ("v2" if rid == "v2-1" else "tfserving")
        if traffic.statuses[rid] == 200:
            assert span.attributes["mooring.model.version"] == "1"
        assert span.end_ns >= span.start_ns
    assert requests["req-000"].name == "POST /v1/models/{name}:predict"
    assert requests["v2-1"].name == "POST /v2/models/{name}/infer"


def test_each_request_has_its_phases_as_children(traffic: Traffic) -> None:
    children: dict[str, list[str]] = {}
    for span in traffic.spans:
        children.setdefault(span.parent_id, []).append(span.name)
    for rid, span in _requests(traffic).items():
        names = children.get(span.span_id, [])
        if traffic.statuses[rid] == 200:
            assert {"parse", "queue", "format"} <= set(names), (rid, names)
            assert Counter(names)["queue"] == 1
        else:
            # Refused while parsing: the phase ends with the request, nothing queued.
            assert names == ["parse"], (rid, names)
        inner = [s for s in traffic.spans if s.parent_id == span.span_id]
        assert all(s.trace_id == span.trace_id for s in inner)
        assert all(span.start_ns <= s.start_ns and s.end_ns <= span.end_ns for s in inner)


def test_every_request_is_linked_with_the_batch_that_ran_it(traffic: Traffic) -> None:
    batches = {s.span_id: s for s in traffic.spans if s.name == "batch"}
    requests = _requests(traffic)
    by_span = {s.span_id: rid for rid, s in requests.items()}
    served = [rid for rid, status in traffic.statuses.items() if status == 200]
    for rid in served:
        span = requests[rid]
        linked = [b for _, b in span.links if b in batches]
        assert len(linked) == 1, (rid, span.links)
        assert (span.trace_id, span.span_id) in batches[linked[0]].links
    for batch in batches.values():
        members = [by_span[span_id] for _, span_id in batch.links]
        assert batch.parent_id == ""
        assert batch.attributes["mooring.batch.requests"] == len(members)
        assert batch.attributes["mooring.batch.rows"] == sum(traffic.rows[m] for m in members)
        assert batch.attributes["mooring.model"] == NAME
        assert batch.attributes["mooring.model.version"] == "1"
    assert sum(len(b.links) for b in batches.values()) == len(served)
    assert max(len(b.links) for b in batches.values()) > 1, "concurrent requests were batched"


def test_the_model_call_runs_in_the_batch_context_in_its_worker_thread(traffic: Traffic) -> None:
    batches = {s.span_id: s for s in traffic.spans if s.name == "batch"}
    predicts = [s for s in traffic.spans if s.name == "predict"]
    assert len(predicts) == len(batches)
    for span in predicts:
        batch = batches[span.parent_id]
        assert span.trace_id == batch.trace_id
        assert batch.start_ns <= span.start_ns and span.end_ns <= batch.end_ns


def test_a_callers_traceparent_makes_the_request_its_child(traffic: Traffic) -> None:
    span = _requests(traffic)["caller-1"]
    assert (span.trace_id, span.parent_id) == (CALLER_TRACE, CALLER_SPAN)


def _json_line(record: logging.LogRecord) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(record.getMessage())
    return line


def test_the_access_log_names_each_requests_trace(
    model_dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing = start_tracing(ObservabilityConfig(), exporter=exporter)
    app = build_app([DirectorySource(model_dirs["a"], NAME)], ServingConfig(), tracing=tracing)
    caplog.set_level(logging.INFO, logger="mooring.serving.access")
    answered: dict[str, str] = {}  # the client's id → the server's
    with ServerThread(app) as server:
        server.wait_ready()
        for i in range(3):
            answer = server.client.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [row()]},
                headers={"X-Request-Id": f"log-{i}"},
            )
            assert answer.status_code == 200
            answered[f"log-{i}"] = answer.headers["X-Request-Id"]
    records = [r for r in caplog.records if r.name == "mooring.serving.access"]
    lines = list(map(_json_line, records))
    logged = {line["request_id"]: line["trace_id"] for line in lines}
    exported = {
        dict(s.attributes or {})["mooring.request_id"]: f"{s.context.trace_id:032x}"
        for s in exporter.get_finished_spans()
        if s.name == "POST /v1/models/{name}:predict"
    }
    assert {k: logged[k] for k in exported} == exported
    assert set(exported) == set(answered.values())
    # Each line names the server's id and, beside it, the client's own.
    mine = {line["client_request_id"]: line["request_id"] for line in lines}
    assert {k: v for k, v in mine.items() if k is not None} == answered


def test_sampling_follows_the_caller_and_keeps_the_batches_of_kept_requests(
    model_dirs: dict[str, Path],
) -> None:
    """``sample_ratio = 0``: a request without a caller is not traced, one whose caller
    sampled it is, with its batch; the contract phase shows when a contract is checked."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing = start_tracing(ObservabilityConfig(sample_ratio=0.0), exporter=exporter)
    schema = Schema(columns={"age": ColumnSchema("age", "integer", min=17, max=90)})
    source = DirectorySource(model_dirs["a"], NAME, schema=schema)
    serving = ServingConfig(warmup_requests=1, out_of_range="reject")
    app = build_app([source], serving, tracing=tracing)
    kept = {"ok": "1" * 32, "refused": "2" * 32}
    with ServerThread(app) as server:
        server.wait_ready()
        for _ in range(5):
            answer = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
            assert answer.status_code == 200
        for name, age in (("ok", 39.0), ("refused", 200.0)):
            server.client.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [row(age=age)]},
                headers={"traceparent": f"00-{kept[name]}-{CALLER_SPAN}-01"},
            )
    spans = exporter.get_finished_spans()
    names: dict[str, list[str]] = {}
    for span in spans:
        names.setdefault(f"{span.context.trace_id:032x}", []).append(span.name)
    route = "POST /v1/models/{name}:predict"
    assert sorted(names.pop(kept["ok"])) == sorted(["parse", "contract", "queue", "format", route])
    assert sorted(names.pop(kept["refused"])) == sorted(["parse", "contract", route])
    # The kept request's batch is a trace of its own, linked to it; nothing else was kept.
    assert [sorted(v) for v in names.values()] == [["batch", "predict"]]
    (refused,) = [
        s for s in spans if s.name == route and f"{s.context.trace_id:032x}" == kept["refused"]
    ]
    assert dict(refused.attributes or {})["http.response.status_code"] == 400
    assert refused.parent is not None and f"{refused.parent.span_id:016x}" == CALLER_SPAN


OFF_PROBE = """
import json, sys
from pathlib import Path
from typing import Any
from mooring.config import MooringConfig
from mooring.formats._version_record import VersionRecord
from mooring.serving import create_app
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.server import BLESSED, LINEAGE, NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

root = Path(sys.argv[1])
registry = Registry.open(f"sqlite:///{root / 'registry.db'}", artifacts=root / "artifacts")
register_judged(registry, name=NAME, artifact_dir=Path(sys.argv[2]),
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED))
registry.deploy(NAME, production=1)
cfg = MooringConfig.from_mapping({"project": {"name": NAME, "home": str(root / "home")},
                                  "data": {"train": "t.csv", "label": "class"},
                                  "serving": {"warmup_requests": 1}})
with ServerThread(create_app(cfg, registry=registry)) as server:
    server.wait_ready()
    for _ in range(3):
        answer = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
        assert answer.status_code == 200, answer.text
registry.close()
print(json.dumps({"tracing": "mooring._tracing" in sys.modules,
                  "otel": sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")}))
"""


def _python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_off_by_default_no_opentelemetry_module_is_imported(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    import importlib.util

    assert importlib.util.find_spec("opentelemetry") is not None, "installed, just not imported"
    done = _python(OFF_PROBE, str(tmp_path), str(model_dirs["a"]))
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"tracing": True, "otel": []}


MISSING_EXTRA = """
import sys
sys.modules["opentelemetry"] = None  # as if mooring-ml[otel] were not installed
from mooring.cli import main
from mooring.registry._judged import register_judged
sys.exit(main([sys.argv[2], "-c", sys.argv[1]]))
"""


@pytest.mark.parametrize("command", ["serve", "run"])
def test_endpoint_without_the_extra_is_a_clear_configuration_error(
    tmp_path: Path, command: str
) -> None:
    toml = tmp_path / "mooring.toml"
    toml.write_text(
        '[project]\nname = "income"\n[data]\ntrain = "train.csv"\nlabel = "class"\n'
        '[observability]\notlp_endpoint = "http://127.0.0.1:4318"\n',
        encoding="utf-8",
    )
    (tmp_path / "train.csv").write_text("age,class\n39,<=50K\n", encoding="utf-8")
    done = _python(MISSING_EXTRA, str(toml), command, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "[observability] otlp_endpoint" in done.stderr
    assert "pip install 'mooring-ml[otel]'" in done.stderr
