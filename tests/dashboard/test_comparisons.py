"""Versions compared side by side name their evaluation data; outputs are labelled as such."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mooring.dashboard._app import create_ui, standalone_app
from mooring.dashboard._card import render_model_card
from mooring.dashboard._drift_report import render_drift_html
from mooring.formats._drift import DriftReport, drift_folder
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests.dashboard._data import NAME, plain_folders

ADULT = "1a2b3c4d5e6f" + "0" * 52
FRESH = "9f8e7d6c5b4a" + "1" * 52
GATES = {
    "blessed": True,
    "gates": [
        {
            "name": "auc in [0.7, inf]",
            "metric": "auc",
            "kind": "value",
            "value": 0.8,
            "bound": {"lower": 0.7, "upper": None},
            "passed": True,
        },
        {
            "name": "auc change",
            "metric": "auc",
            "kind": "change",
            "value": -0.01,
            "bound": {"direction": "lower", "absolute": None, "relative": 0.02},
            "passed": True,
        },
    ],
}


def text(html: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(script|style|title|desc)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """v1 and v2 evaluated on adult.test.csv.gz, v3 on another file, v4 on unknown data."""
    home = tmp_path / "home"
    home.mkdir()
    evaluated = [
        ("/data/adult.test.csv.gz", ADULT),
        ("/data/adult.test.csv.gz", ADULT),
        ("/data/fresh-eval.csv", FRESH),
        (None, None),
    ]
    with Registry.open(f"sqlite:///{home / 'registry.db'}", artifacts=home / "art") as registry:
        for i, folder in enumerate(plain_folders(tmp_path / "in", 4)):
            data, fingerprint = evaluated[i]
            lineage = {"data_fingerprint": "ab" * 32}
            if data is not None and fingerprint is not None:
                lineage |= {"eval_data": data, "eval_fingerprint": fingerprint}
            register_judged(
                registry,
                name=NAME,
                artifact_dir=folder,
                record=VersionRecord(lineage=lineage, metrics={"auc": 0.8 + i / 100}, gate=GATES),
                render_card=render_model_card,
            )
        registry.deploy(NAME, production=1, canary=3, weight=10, reason="compare")
        app = standalone_app(create_ui(registry=registry, home=home))
        with TestClient(app) as test_client:
            yield test_client


def test_each_version_names_its_evaluation_data_and_the_chart_says_they_differ(
    client: TestClient,
) -> None:
    page = text(client.get(f"/ui/models/{NAME}?version=3").text)
    table = page[page.index("Evaluated on") :]
    assert table.count("adult.test.csv.gz 1a2b3c4d5e6f") == 2
    assert "fresh-eval.csv 9f8e7d6c5b4a" in table and "evaluation data unknown" in table
    assert (
        "Note: auc of v1–v4 come from different evaluation data (v1 and v2: adult.test.csv.gz "
        "1a2b3c4d5e6f; v3: fresh-eval.csv 9f8e7d6c5b4a; v4: evaluation data unknown): "
        "not comparable."
    ) in page
    # The gates and the model card show the bounds that are set, never a None.
    assert "lower 0.7" in page and "direction lower, relative 0.02" in page
    assert "None" not in page


def test_outputs_are_compared_with_their_evaluation_time_distribution(
    client: TestClient, tmp_path: Path
) -> None:
    histogram = {"bins": ["0–0.5", "0.5–1"], "counts": [70, 30]}
    output = {
        "name": "output.score",
        "kind": "numeric",
        "status": "ok",
        "metrics": {"psi": 0.01},
        "thresholds": {"psi": 0.2},
        "baseline": histogram,
        "current": histogram,
    }
    report = DriftReport.from_dict(
        {
            "model": NAME,
            "version": 1,
            "status": "ok",
            "created_at": "2026-01-01T00:00:00+00:00",
            "window": {"rows": 100},
            "features": [{**output, "name": "age"}],
            "prediction": {"status": "ok", "source": "v1 on its eval data", "features": [output]},
        }
    )
    report.save(drift_folder(tmp_path / "home", NAME), html=render_drift_html)
    page = client.get(f"/ui/models/{NAME}/drift").text
    predictions = page[page.index('id="prediction-h"') :]
    assert "baseline (evaluation-time outputs)" in predictions
    assert "output.score: evaluation-time outputs vs current" in predictions
    assert "training" not in predictions[: predictions.index("</section>")]
    full = Path(report.files["html"]).read_text(encoding="utf-8")
    outputs = full[full.index("Prediction drift") :]
    assert "baseline (evaluation-time outputs)" in outputs and "(training)" not in outputs
