"""``mooring live`` says which labels its window leaves out and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.config import load_config
from tests._support.labelled_log import log_requests, send_labels
from tests._support.rollout import registry_with_versions
from tests._support.rollout_evidence import write_config


def test_live_tells_labels_outside_the_window_from_unknown_request_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    registry_with_versions(cfg, 1).close()
    old, new = [f"o{i}" for i in range(300)], [f"n{i}" for i in range(100)]
    log_requests(cfg.home / "predictions", old)
    log_requests(cfg.home / "predictions", new)
    send_labels(cfg, [*old, *new, "never-seen"])

    assert main(["live", "--config", str(toml), "--last", "100"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "income: 100 labelled predictions in 100 logged rows (401 labels; not matched: 300 "
        "for requests logged outside this window (--last, --since), 1 with a request id the "
        "log does not hold)"
    ) in said
    assert "not in the log" not in said

    assert main(["live", "--config", str(toml), "--last", "100", "--json"]) == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert (labels["outside_window"], labels["not_logged"], labels["unmatched"]) == (300, 1, 301)

    assert main(["live", "--config", str(toml), "--last", "1000"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "(401 labels; not matched: 1 with a request id the log does not hold)" in said
