"""Alert sinks and deduplication, with a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from mooring.errors import ConfigError
from mooring.monitoring._alerts import ALERT_LOG, Alert, AlertManager, LogSink, WebhookSink
from tests._support.rollout import Clock, project
from tests.monitoring._webhook import Receiver


def alert(kind: str = "rollback", version: int | None = 3) -> Alert:
    return Alert("income", version, kind, "page", f"{kind} happened", {"numbers": [1, 2]})


def no_sleep(seconds: float) -> None:
    return None


def test_webhook_receives_the_alert_as_json() -> None:
    with Receiver() as hook:
        assert WebhookSink(hook.url, timeout_s=5).send(alert())
    [body] = hook.bodies
    assert body["source"] == "mooring" and body["kind"] == "rollback" and body["version"] == 3
    assert body["details"] == {"numbers": [1, 2]} and body["summary"] == "rollback happened"


def test_webhook_retries_server_errors_with_backoff() -> None:
    waits: list[float] = []
    with Receiver(statuses=[500, 503]) as hook:
        sink = WebhookSink(hook.url, retries=3, backoff_s=0.25, sleep=waits.append)
        assert sink.send(alert())
    assert hook.attempts == 3 and len(hook.bodies) == 1
    assert waits == [0.25, 0.5]


def test_webhook_gives_up_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    with Receiver(statuses=[500] * 10) as hook:
        sink = WebhookSink(hook.url, retries=2, sleep=no_sleep)
        with caplog.at_level(logging.ERROR, logger="mooring.monitoring.alerts"):
            assert not sink.send(alert())
    assert hook.attempts == 3 and sink.last_error == "HTTP 500"
    assert "not delivered" in caplog.text


def test_webhook_does_not_retry_a_client_error() -> None:
    with Receiver(statuses=[404]) as hook:
        assert not WebhookSink(hook.url, retries=3, sleep=no_sleep).send(alert())
    assert hook.attempts == 1


def test_unreachable_webhook_is_survived() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/x", timeout_s=1, retries=1, sleep=no_sleep)
    assert not sink.send(alert())
    assert sink.last_error is not None


def test_duplicates_are_suppressed_during_the_cooldown_and_across_restarts(
    tmp_path: Path,
) -> None:
    clock = Clock(start=1000.0)
    state = tmp_path / "alerts.json"
    with Receiver() as hook:
        manager = AlertManager(
            [WebhookSink(hook.url)], cooldown_s=600, state_path=state, clock=clock
        )
        assert manager.send(alert())
        assert not manager.send(alert())  # same model, version, kind
        assert manager.send(alert(version=4))  # another version
        assert manager.send(alert(kind="drift"))  # another kind
        restarted = AlertManager(
            [WebhookSink(hook.url)], cooldown_s=600, state_path=state, clock=clock
        )
        assert not restarted.send(alert())
        clock.advance(601)
        assert restarted.send(alert())
    assert [(b["kind"], b["version"]) for b in hook.bodies] == [
        ("rollback", 3),
        ("rollback", 4),
        ("drift", 3),
        ("rollback", 3),
    ]
    # What went out is remembered (suppressed duplicates are not).
    assert len(restarted.recent) == 4 and restarted.recent[-1]["delivered"] == {"webhook": True}


def test_an_undelivered_alert_is_tried_again(tmp_path: Path) -> None:
    with Receiver(statuses=[500]) as hook:
        manager = AlertManager([WebhookSink(hook.url, retries=0)], cooldown_s=600)
        assert not manager.send(alert())
        assert manager.send(alert())
    assert len(hook.bodies) == 1


def test_log_sink_says_one_short_line_and_writes_the_record_to_its_file(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    path = tmp_path / "monitoring" / "alerts.jsonl"
    long = Alert("income", 3, "drift", "ticket", "age drifted " + "and more " * 100, {"n": [1]})
    with caplog.at_level(logging.INFO, logger="mooring.monitoring.alerts"):
        assert LogSink(path).send(alert())
        assert LogSink(path).send(long)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "alert rollback income@3 (page): rollback happened"
    assert lines[1].startswith("alert drift income@3 (ticket): age drifted and more")
    assert lines[1].endswith("…") and len(lines[1]) < 250
    assert all("{" not in line for line in lines)  # no JSON on the console
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["rollback", "drift"]
    assert records[0]["details"] == {"numbers": [1, 2]} and records[1]["summary"] == long.summary


def test_log_sink_without_a_file_keeps_the_record_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="mooring.monitoring.alerts"):
        assert LogSink().send(alert())
    short, record = caplog.records
    assert short.levelno == logging.WARNING and short.getMessage().startswith("alert rollback")
    assert record.levelno == logging.DEBUG and '"kind":"rollback"' in record.getMessage()


def test_the_configured_log_sink_writes_under_the_model_s_monitoring_folder(
    tmp_path: Path,
) -> None:
    cfg = project(tmp_path)
    [sink] = AlertManager.from_config(cfg).sinks
    assert isinstance(sink, LogSink)
    assert sink.path == cfg.home / "monitoring" / cfg.project.name / ALERT_LOG


def test_from_config_builds_the_sinks(tmp_path: Path) -> None:
    cfg = project(
        tmp_path,
        monitoring={"alerts": {"webhook_url": "http://127.0.0.1:1/h", "cooldown": "5m"}},
    )
    manager = AlertManager.from_config(cfg)
    assert [s.name for s in manager.sinks] == ["log", "webhook"]
    assert manager.cooldown_s == 300.0
    assert manager.state_path == tmp_path / "monitoring" / "income" / "alerts.json"
    with pytest.raises(ConfigError, match="webhook_url"):
        project(tmp_path, monitoring={"alerts": {"webhook_url": "ftp://x"}})
