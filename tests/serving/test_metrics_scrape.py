"""``/metrics`` never answers 500: a collector that fails, a family that cannot be written,
or another worker's metrics file caught half-made is logged and left out of that scrape,
and every other family is answered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from mooring.serving import DirectorySource, build_app
from mooring.serving._metrics import ServingMetrics, render_multiprocess
from tests._support.server import FAST, NAME, ServerThread

REQUESTS_200 = (
    'mooring_requests_total{model="income",protocol="tfserving",status="200",version="1"} 1.0'
)


class _Broken:
    """A collector that fails as a gauge callback or a half-written file makes one fail."""

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Iterable[Metric]:
        self.calls += 1
        raise RuntimeError("dictionary changed size during iteration")


def test_a_failing_collector_is_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ServingMetrics()
    metrics.observe_request("income", "1", "tfserving", 200, 0.01)
    broken = _Broken()
    metrics.registry.register(broken)
    with caplog.at_level(logging.ERROR, logger="mooring.serving.metrics"):
        text = metrics.render().decode()
    assert broken.calls == 1
    assert REQUESTS_200 in text and "# TYPE mooring_request_latency_seconds histogram" in text
    assert "a metrics collector failed" in caplog.text
    # The registry's own collect skips it too (what an in-process reader iterates).
    assert "mooring_requests" in {m.name for m in metrics.registry.collect()}


def test_a_gauge_callback_that_raises_loses_its_family_only() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("income", "1", "tfserving", 200, 0.01)
    metrics.in_flight.set_function(lambda: 1 / 0)
    text = metrics.render().decode()
    assert "mooring_requests_in_flight" not in text and REQUESTS_200 in text


def test_a_family_that_cannot_be_written_loses_itself_only() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("income", "1", "tfserving", 200, 0.01)
    metrics.contract_violations.labels("income", "1", "\ud800", "unseen_category").inc()
    text = metrics.render().decode()
    assert "mooring_contract_violations_total{" not in text and REQUESTS_200 in text


def _worker_file(folder: Path, pid: int, value: float) -> None:
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    labels = ["model", "version", "protocol", "status"]
    key = mmap_key(
        "mooring_requests",
        "mooring_requests_total",
        labels,
        ["income", "1", "tfserving", "200"],
        "Requests.",
    )
    values.write_value(key, value, 0.0)
    values.close()


def test_a_worker_file_caught_before_it_is_sized_is_left_out(tmp_path: Path) -> None:
    _worker_file(tmp_path, 101, 2.0)
    _worker_file(tmp_path, 102, 3.0)
    # Another worker's file between its creation and its first write: empty.
    (tmp_path / "counter_103.db").touch()
    text = render_multiprocess(tmp_path).decode()
    assert (
        'mooring_requests_total{model="income",protocol="tfserving",status="200",version="1"} 5.0'
        in text
    )


def test_the_server_answers_metrics_while_children_are_added_and_a_collector_fails(
    model_dirs: dict[str, Path],
) -> None:
    app = build_app([DirectorySource(model_dirs["a"], NAME)], FAST)
    state = app.state.mooring
    broken = _Broken()
    state.metrics.registry.register(broken)
    done = threading.Event()

    def add_children() -> None:  # new label children while the scrape iterates them
        i = 0
        while not done.is_set():
            state.metrics.refused.labels(f"reason-{i % 500}").inc()
            state.metrics.observe_request(NAME, str(i % 50), "tfserving", 499, 0.001)
            i += 1

    with ServerThread(app) as server:
        server.wait_ready()
        adder = threading.Thread(target=add_children, daemon=True)
        adder.start()
        try:
            statuses = [server.client.get("/metrics").status_code for _ in range(40)]
        finally:
            done.set()
            adder.join(timeout=10)
    assert statuses == [200] * 40 and broken.calls >= 40
