"""Labels the window leaves out are told apart: requests logged outside the window, and
request ids the log never held (not sampled, a shadow's copy, another model's, unknown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.config import MooringConfig
from mooring.formats._predictions import find_request_ids
from mooring.monitoring._feedback import live_metrics
from tests._support.labelled_log import log_requests, send_labels
from tests._support.rollout import NAME, project, registry_with_versions

OLD = [f"o{i}" for i in range(200)]
NEW = [f"n{i}" for i in range(100)]
SHADOW = [f"s{i}" for i in range(10)]
OTHER = [f"x{i}" for i in range(5)]
UNKNOWN = ["unknown-1", "unknown-2"]


@pytest.fixture
def cfg(tmp_path: Path) -> MooringConfig:
    cfg = project(tmp_path / "home")
    registry_with_versions(cfg, 2).close()
    log = cfg.home / "predictions"
    log_requests(log, OLD)
    log_requests(log, SHADOW, version=2, shadow=True)
    log_requests(log, OTHER, model="another-model")
    log_requests(log, NEW)
    send_labels(cfg, OLD + NEW + SHADOW + OTHER + UNKNOWN)
    return cfg


def test_labels_outside_the_window_are_not_called_missing_from_the_log(cfg: MooringConfig) -> None:
    live = live_metrics(cfg, last=100, locate_unmatched=True)
    assert live.window["rows"] == 100
    assert live.labels == {
        "received": 317,
        "matched": 100,
        "ambiguous": 0,
        "unmatched": 217,
        "outside_window": 200,
        "not_logged": 17,  # 10 shadow copies, 5 of another model, 2 unknown ids
    }
    # The whole log in the window: nothing outside it, the same ids never logged.
    wide = live_metrics(cfg, last=10_000, locate_unmatched=True)
    assert (wide.labels["matched"], wide.labels["outside_window"]) == (300, 0)
    assert wide.labels["not_logged"] == 17


def test_the_monitor_does_not_read_the_whole_log(cfg: MooringConfig) -> None:
    live = live_metrics(cfg, last=100)
    assert "outside_window" not in live.labels and live.labels["unmatched"] == 217


def test_find_request_ids_reads_answers_of_the_model_only(
    cfg: MooringConfig, tmp_path: Path
) -> None:
    url = str(cfg.home / "predictions")
    wanted = ["o0", "n99", *SHADOW, *OTHER, *UNKNOWN]
    assert find_request_ids(url, NAME, wanted) == {"o0", "n99"}
    assert find_request_ids(url, "another-model", wanted) == set(OTHER)
    assert find_request_ids(url, NAME, []) == set()
    assert find_request_ids(str(tmp_path / "no-log"), NAME, ["o0"]) == set()
