"""The on-call sheet as a dashboard page: the same sheet as ``mooring ops runbook``."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mooring.config import load_config
from mooring.dashboard._app import create_ui, standalone_app
from mooring.formats._version_record import VersionRecord
from mooring.ops._runbook import runbook
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests.dashboard._data import NAME, plain_folders

pytestmark = pytest.mark.xdist_group("ui")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def test_the_page_shows_the_sheet_with_its_commands_as_code(tmp_path: Path) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "state"\n[data]\ntrain = "t.csv"\nlabel = "y"\n',
        encoding="utf-8",
    )
    cfg = load_config(config)
    with Registry.from_config(cfg) as registry:
        for folder in plain_folders(tmp_path / "in", 2):
            register_judged(
                registry,
                name=NAME,
                artifact_dir=folder,
                record=VersionRecord(lineage={}, gate={"blessed": True}),
            )
        registry.deploy(NAME, production=1, canary=2, weight=5, reason="try <v2>")
        app = standalone_app(create_ui(cfg, registry=registry))
        with TestClient(app, base_url="http://127.0.0.1:8501") as client:
            page = client.get(f"/ui/models/{NAME}/runbook")
            other = client.get("/ui/models/nope/runbook")
        sheet = runbook(cfg, registry, config_path=str(config), url="http://127.0.0.1:8501")
    assert page.status_code == 200
    assert 'aria-current="page">On call</a>' in page.text
    assert f"<h1>On call: {NAME}</h1>" in page.text
    text = _text(page.text)
    assert "production : version 1" in text and "canary : version 2 at 5% of traffic" in text
    # Every command of the sheet is on the page, inside a code block, escaped.
    blocks = unescape(" ".join(re.findall(r"<pre><code>(.*?)</code></pre>", page.text, re.S)))
    for command in sheet.commands:
        assert command in blocks
    assert "<script" not in page.text.replace('<script src="/ui/static/ui.js" defer>', "")
    assert other.status_code == 404


def test_without_the_projects_config_the_page_says_how_to_open_it(tmp_path: Path) -> None:
    with Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts"
    ) as registry:
        [folder] = plain_folders(tmp_path / "in", 1)
        register_judged(
            registry,
            name=NAME,
            artifact_dir=folder,
            record=VersionRecord(lineage={}, gate={"blessed": True}),
        )
        app = standalone_app(create_ui(registry=registry, home=tmp_path))
        with TestClient(app, base_url="http://127.0.0.1") as client:
            page = client.get(f"/ui/models/{NAME}/runbook")
    assert page.status_code == 404
    assert "mooring ui -c mooring.toml" in _text(page.text)
