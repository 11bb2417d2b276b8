"""Every page of the dashboard over HTTP (Starlette's test client): content, links, escaping."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from mooring.dashboard._app import create_ui, standalone_app
from mooring.dashboard._card import render_model_card
from mooring.formats._version_record import RunRecord, VersionRecord
from tests.dashboard._data import NAME, TOKEN, write_drift_file
from tests.dashboard.conftest import Site

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui")]


def text(html: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(script|style|title|desc)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def without_back_link(html: str) -> str:
    """A served report as stored: the dashboard's bar on top taken out."""
    return re.sub(r"<style>\.dashboard-back.*?</nav>", "", html, count=1, flags=re.S)


def stems(site: Site) -> list[str]:
    """The drift reports' file stems as the monitoring layer named them, oldest first."""
    folder = site.home / "monitoring" / NAME / "drift"
    return sorted(p.stem for p in folder.glob("*.json") if p.name != "latest.json")


def test_root_redirects_to_the_model_list(site: Site) -> None:
    res = site.client.get("/", follow_redirects=False)
    assert res.status_code == 307 and res.headers["location"] == "/ui/"


def test_model_list_shows_deployment_gate_and_drift(site: Site) -> None:
    res = site.client.get("/ui/")
    assert res.status_code == 200
    page = text(res.text)
    assert "income" in page
    row = page[page.index("Versions") :]
    # production v1 with its AUC, canary v2 at 20%, newest gate (v3) failed, last drift check.
    auc = site.registry.get(NAME, version=1).metrics["auc"]
    assert f"v1 (auc {auc:.4f}" in row or f"v1 (auc {auc:.4g}" in row
    assert "v2 at 20%" in row
    assert "failed v3" in row
    assert "drift 2024-05-01 14:00:00 UTC" in row
    assert 'href="/ui/models/income"' in res.text
    assert 'href="/ui/models/income/drift"' in res.text


def test_pages_send_a_strict_content_security_policy(site: Site) -> None:
    res = site.client.get("/ui/")
    csp = res.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert res.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in res.text.replace('<script src="/ui/static/ui.js" defer>', "")


def test_model_page_versions_metrics_gates_lineage_card_history(site: Site) -> None:
    res = site.client.get("/ui/models/income")
    assert res.status_code == 200
    html = res.text
    page = text(html)
    for number in (1, 2, 3):
        mv = site.registry.get(NAME, version=number)
        assert f"{mv.metrics['auc']:.4g}"[:5] in page
        assert f'href="/ui/models/income/versions/{number}/report"' in html
    assert page.count("blessed") >= 2 and "failed" in page
    assert "auc in [0.7, inf]" in page  # the gate, from the recorded decision
    # The production version is selected: its lineage and model card.
    assert "Version 1" in page and "ab" * 32 in page
    assert "Model card: income version 1" in page and "test model number 1" in page
    # Deployment history from the audit log, newest first, with reasons.
    history = page[page.index("Deployment history") :]
    assert history.index("try v2 on 20%") < history.index("first production model")
    assert "production v1, no canary → production v1, canary v2 at 20%" in history
    # The metric chart: one marker per version and the gate's bound.
    chart = re.search(r'<svg[^>]*class="chart line".*?</svg>', html, re.S)
    assert chart is not None and chart.group(0).count("<circle") == 3
    assert "gate lower 0.7" in chart.group(0)
    # Each version says which evaluation data its numbers come from.
    assert "Evaluated on" in page
    # And which kind of model it is (with the candidate a run of several chose).
    kinds = re.findall(r'<td class="kind">([^<]*)</td>', html)
    assert kinds == ["linear", "gbt (trees)", "mlp"]  # newest first


def test_model_page_selects_a_version_and_shows_its_ancestry(site: Site) -> None:
    page = text(site.client.get("/ui/models/income?version=3").text)
    assert "Version 3" in page and "Ancestry: v3 ← v2 ← v1" in page
    assert "FAIL auc in [0.7, inf]" in page
    # A skipped gate is said to be skipped, with why, never "pass".
    skipped = "skipped auc change: diff >= -0.01: not judged: first model — there is no production"
    assert skipped in page and "pass auc change" not in page
    assert "skipped: auc change: diff >= -0.01 (first model" in page  # the versions table
    missing = site.client.get("/ui/models/income?version=9")
    assert missing.status_code == 404
    assert "has no version '9'; versions: 1, 2, 3" in text(missing.text)


def test_unknown_model_is_a_404_page_naming_the_registered_ones(site: Site) -> None:
    for path in ("/ui/models/nope", "/ui/models/nope/drift", "/ui/models/nope/live"):
        res = site.client.get(path)
        assert res.status_code == 404
        assert "model 'nope' is not in the registry; registered models: income" in text(res.text)


def test_evaluation_report_is_served_sandboxed(site: Site) -> None:
    res = site.client.get("/ui/models/income/versions/2/report")
    assert res.status_code == 200
    expected = (site.home / "reports" / "evaluation-v2" / "report.html").read_text()
    # The stored report, with a bar on top linking back to the version on the dashboard.
    assert without_back_link(res.text) == expected
    assert 'href="/ui/models/income?version=2#version-h"' in res.text
    assert res.headers["content-security-policy"].startswith("sandbox")


def test_report_outside_the_home_folder_is_refused(site: Site, tmp_path: Path) -> None:
    outside = tmp_path / "report.html"
    outside.write_text("<p>secret</p>")
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "x").write_text("x")
    registry = site.registry
    mv = registry.register(
        name="elsewhere",
        artifact_dir=folder,
        record=VersionRecord(
            lineage={"data_fingerprint": "0" * 64},
            run=RunRecord.read({"evaluation_report": str(outside)}),
        ),
    )
    traversal = registry.register(
        name="elsewhere",
        artifact_dir=folder,
        record=VersionRecord(
            lineage={"data_fingerprint": "0" * 64},
            run=RunRecord.read({"evaluation_report": "../../../../../../etc/passwd"}),
        ),
    )
    for version in (mv.version, traversal.version):
        res = site.client.get(f"/ui/models/elsewhere/versions/{version}/report")
        assert res.status_code == 404
        assert "missing or outside the project home" in text(res.text)
        assert "secret" not in res.text and "root:" not in res.text


def test_drift_page_bars_history_and_histograms(site: Site) -> None:
    res = site.client.get("/ui/models/income/drift")
    assert res.status_code == 200
    html, page = res.text, text(res.text)
    assert "Report of 2024-05-01 14:00:00 UTC" in page
    assert "Drifted features age, sex" in page
    bars = re.search(r'<svg[^>]*class="chart bars".*?</svg>', html, re.S)
    assert bars is not None
    over = re.findall(r'<rect class="bar over"[^>]*>\s*<title>([^<]+)</title>', bars.group(0))
    assert sorted(t.split(":")[0] for t in over) == ["age", "sex"]
    assert bars.group(0).count('class="threshold"') == 4  # one tick per feature
    # Each feature: its psi over the three reports, the threshold, and two histograms.
    age = html[html.index('id="feature-age"') :]
    age = age[: age.index("</article>")]
    line = re.search(r'<polyline class="series"[^>]*points="([^"]+)"', age)
    assert line is not None and len(line.group(1).split()) == 3
    assert "threshold 0.2" in age
    assert age.count('class="baseline"') == age.count('class="current"') > 5
    # The three reports, newest first, each selectable.
    runs = re.findall(r'href="\?run=([^&"]+)&amp;metric=psi"', html)
    assert runs == stems(site)[::-1] and len(runs) == 3


def test_drift_page_switches_metric_and_report(site: Site) -> None:
    page = text(site.client.get("/ui/models/income/drift?metric=jensen_shannon").text)
    assert "jensen_shannon per feature" in page
    older = text(site.client.get(f"/ui/models/income/drift?run={stems(site)[0]}").text)
    assert "Report of 2024-05-01 12:00:00 UTC" in older and "Drifted features none" in older
    fallback = text(site.client.get("/ui/models/income/drift?metric=nonsense&run=x").text)
    assert "psi per feature" in fallback and "Report of 2024-05-01 14:00:00 UTC" in fallback


def test_drift_html_report_is_linked_and_served(site: Site) -> None:
    html = site.client.get("/ui/models/income/drift").text
    newest = stems(site)[-1]
    assert newest.endswith("-drift")  # a report that found drift is named so
    assert f'href="/ui/models/income/drift/reports/{newest}"' in html
    res = site.client.get(f"/ui/models/income/drift/reports/{newest}")
    assert res.status_code == 200 and res.headers["content-security-policy"].startswith("sandbox")
    stored = (site.home / f"monitoring/income/drift/{newest}.html").read_text()
    assert without_back_link(res.text) == stored
    assert 'href="/ui/models/income/drift"' in res.text
    for bad in ("..%2F..%2Fregistry", "nope"):
        assert site.client.get(f"/ui/models/income/drift/reports/{bad}").status_code == 404


def test_a_report_link_out_of_home_is_not_followed(site: Site, tmp_path: Path) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("<p>outside the project home</p>")
    link = site.home / "monitoring" / "income" / "drift" / "20991231T000000Z.html"
    link.symlink_to(secret)
    try:
        res = site.client.get("/ui/models/income/drift/reports/20991231T000000Z")
    finally:
        link.unlink()
    assert res.status_code == 404 and "outside the project home" not in res.text


def test_drift_page_without_reports_says_how_to_get_them(site: Site, tmp_path: Path) -> None:
    app = standalone_app(create_ui(registry=site.registry, home=tmp_path))
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        page = text(client.get("/ui/models/income/drift").text)
    assert "No drift report yet" in page and "mooring monitor" in page


def test_drift_files_in_other_shapes_and_broken_files(site: Site, tmp_path: Path) -> None:
    """The interface's first sketch (edges/values histograms), a missing field, junk files."""
    folder = tmp_path / "monitoring" / NAME / "drift"
    write_drift_file(folder, "20240101T000000Z.json", "{not json")
    write_drift_file(folder, "20240102T000000Z.json", [1, 2, 3])
    write_drift_file(
        folder,
        "20240103T000000Z.json",
        {
            "model": NAME,
            "version": 2,
            "created_at": "2024-01-03T00:00:00Z",
            "window": {"rows": 5000},
            "status": "drift",
            "drifted": ["hours-per-week"],
            "features": [
                {
                    "name": "hours-per-week",
                    "kind": "numeric",
                    "status": "drift",
                    "metrics": {"psi": 0.5, "ks": "n/a"},
                    "thresholds": {"psi": 0.25},
                    "baseline": {"edges": [0, 20, 40, 60], "counts": [10, 70, 20]},
                    "current": {"edges": [0, 20, 40, 60], "counts": [5, 40, 55]},
                },
                {
                    "name": "<b>workclass</b>",
                    "kind": "categorical",
                    "metrics": {"psi": 0.01},
                    "thresholds": {"psi": 0.25},
                    "baseline": {"values": ["Private", None], "counts": [90, 10]},
                    "current": {"values": ["Private", "Never-seen"], "counts": [80, 20]},
                },
                "junk",
            ],
        },
    )
    app = standalone_app(create_ui(registry=site.registry, home=tmp_path))
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        res = client.get("/ui/models/income/drift")
        listing = text(client.get("/ui/").text)
    assert res.status_code == 200
    page = text(res.text)
    assert "Report of 2024-01-03 00:00:00 UTC" in page and "Rows in the window 5000" in page
    assert "20240101T000000Z.json: not readable as JSON" in page
    assert "20240102T000000Z.json: expected a JSON object" in page
    assert "0–20" in page and "Never-seen" in page and "(missing)" in page
    assert "<b>workclass</b>" not in res.text and "&lt;b&gt;workclass&lt;/b&gt;" in res.text
    assert "drift 2024-01-03 00:00:00 UTC" in listing


def test_live_page_without_a_metrics_source_explains(site: Site) -> None:
    page = text(site.client.get("/ui/models/income/live").text)
    assert "Live metrics are not available" in page and "--metrics-url" in page
    res = site.client.get("/ui/api/models/income/live")
    assert res.status_code == 404 and "--metrics-url" in res.json()["error"]


def test_unknown_paths_and_methods(site: Site) -> None:
    assert site.client.get("/ui/nowhere").status_code == 404
    res = site.client.get("/ui/api/nowhere")
    assert res.status_code == 404 and "error" in res.json()
    assert site.client.post("/ui/models/income").status_code == 405


def test_static_files_are_served(site: Site) -> None:
    css = site.client.get("/ui/static/ui.css")
    js = site.client.get("/ui/static/ui.js")
    assert css.status_code == js.status_code == 200
    assert ":focus-visible" in css.text and "Authorization" in js.text


def test_model_card_and_reasons_are_escaped(site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "f").write_text("f")
    site.registry.register(
        name="escaped",
        artifact_dir=folder,
        record=VersionRecord(
            lineage={"data_fingerprint": "<script>alert(1)</script>"},
            description="<img src=x onerror=alert(1)>",
        ),
        reason="<script>alert(2)</script>",
        render_card=render_model_card,
    )
    html = site.client.get("/ui/models/escaped").text
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_admin_form_only_with_a_token(site: Site) -> None:
    assert 'id="admin-form"' in site.client.get("/ui/models/income").text
    app = standalone_app(create_ui(registry=site.registry, home=site.home))
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        page = client.get("/ui/models/income").text
    assert 'id="admin-form"' not in page
    assert "Admin actions are off: set [serving] admin_token or the MOORING_ADMIN_TOKEN" in text(
        page
    )
    assert TOKEN not in site.client.get("/ui/models/income").text


def test_a_bound_without_a_value_is_not_shown_as_none() -> None:
    from mooring.dashboard._views import _bound

    assert _bound({"absolute": 0.01, "relative": None}) == "absolute 0.01"
