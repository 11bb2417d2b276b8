"""What a new user reads on the dashboard says what happened: a real browser checks each page.

A project whose first hour went the usual way: v1 in production, v2 canaried and rolled
back by the rollout controller, v4 (an imported SavedModel with no recorded kind) promoted
and rolled back by hand, v3 archived; an evaluation report with a wide candidates table;
drift reports on a continuous feature; live traffic over a minute. Headless Chromium
(Playwright, as in ``test_served``) opens each page, takes a screenshot under the test's
``tmp_path`` and checks the rendered DOM. The facts the pages are built from are checked
without a browser too.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mooring.dashboard._app import create_ui, standalone_app
from mooring.dashboard._bin_labels import compact_bins
from mooring.dashboard._charts import histogram_chart, seconds_ago, time_ticks
from mooring.dashboard._drift_report import render_drift_html
from mooring.dashboard._evaluation_report import render_evaluation_html
from mooring.dashboard._live import LiveMetrics
from mooring.dashboard._live_view import live_view
from mooring.dashboard._report_pages import with_back_link
from mooring.dashboard._version_facts import NOT_RECORDED, kind_of, recorded_kind, version_marks
from mooring.formats._candidate import CandidateRecord
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Deployment, Registry
from mooring.registry._judged import register_judged
from mooring.serving._metrics import ServingMetrics
from tests._support.server import ServerThread
from tests._support.waiting import PATIENCE
from tests.dashboard._data import LINEAGE, NAME, TOKEN, evaluation, plain_folders, populate

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui-first-hour")]

CHROMIUM = Path(os.environ.get("MOORING_CHROMIUM", "/usr/bin/chromium"))
MONITOR_REASON = "canary income@2 rolled back at 20%: latency_p99 [fail]: p99 412 ms above 250 ms"
MANUAL_REASON = "v4 answers 3x slower than v1 for <batch> clients & their retries"
ARCHIVE_REASON = "superseded: v3 failed the AUC gate and will not be deployed"


class Clock:
    """Wall-clock seconds that move on 5 s at each reading (a minute of snapshots at once)."""

    def __init__(self) -> None:
        self.now = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC

    def __call__(self) -> float:
        self.now += 5.0
        return self.now


def _candidates_report(home: Path, version: int) -> None:
    """A real evaluation report whose run compared three candidates (a wide table)."""
    from mooring.config._evaluation import GateConfig
    from mooring.evaluation._evaluate import evaluate
    from mooring.evaluation._gates import decide

    rng = np.random.default_rng(version)
    labels = rng.integers(0, 2, 1500)
    scores = np.clip(labels * 0.4 + rng.random(1500) * 0.6, 0.0, 1.0)
    result = evaluate(task="binary", labels=labels, scores=scores)
    decision = decide(result, gates=[GateConfig(metric="auc", lower=0.7)])
    interval = {"lower": 0.81234567, "upper": 0.83456789}
    result.candidates = [
        CandidateRecord.read(
            {
                "name": name,
                "kind": kind,
                "metrics": {m: 0.82345678 for m in ("auc", "accuracy", "f1", "log_loss", "brier")},
                "intervals": {m: interval for m in ("auc", "accuracy", "f1", "log_loss", "brier")},
                "calibration_ece": 0.0123456,
                "decision_cost_per_1000": 123.456,
                "seconds_per_1000": 0.0456,
                "cost_per_1000": 0.000123,
                "size_bytes": 12_345_678,
                "blessed": chosen,
                "chosen": chosen,
                "reason": (
                    "highest auc among the candidates that pass every gate"
                    if chosen
                    else "fails no-worse-than-production: auc below production's by 0.0123"
                ),
            }
        )
        for name, kind, chosen in (
            ("wide-and-deep-network", "mlp", False),
            ("gradient-boosted-trees", "gbt", True),
            ("logistic-regression", "linear", False),
        )
    ]
    result.save(home / "reports" / f"evaluation-v{version}", decision, html=render_evaluation_html)


def _drift_reports(home: Path) -> None:
    """Two drift reports on a continuous feature (``ratio``) and a category (``plan``)."""
    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._drift import compute_drift

    rng = np.random.default_rng(7)

    def table(rows: int, shift: float) -> pa.Table:
        return pa.table(
            {
                "ratio": rng.gamma(2.0, 0.0935464, rows) + shift,
                "plan": rng.choice(["basic", "standard", "premium-annual"], rows).tolist(),
            }
        )

    baseline = compute_statistics(table(4000, 0.0))
    folder = home / "monitoring" / NAME / "drift"
    for hour, shift in enumerate((0.0, 0.05)):
        report = compute_drift(
            baseline, table(800, shift), MonitoringConfig(min_samples=200), model=NAME, version=1
        )
        report.created_at = f"2024-05-01T1{2 + hour}:00:00+00:00"
        report.save(folder, html=render_drift_html)


class FirstHour:
    """The registry, home and dashboard of a project after its first hour, on a real server."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.registry = Registry.open(
            f"sqlite:///{self.home / 'registry.db'}", artifacts=self.home / "artifacts"
        )
        folders = plain_folders(root / "artifacts-in", 4)
        populate(self.registry, self.home, folders[:3])
        # v4: a SavedModel registered by hand, recording no kind, with a candidates report.
        metrics, gate = evaluation(self.home, 4, 0.4)
        _candidates_report(self.home, 4)
        register_judged(
            self.registry,
            name=NAME,
            artifact_dir=folders[3],
            record=VersionRecord(
                lineage=LINEAGE,
                metrics=metrics,
                gate=gate,
                run=RunRecord.read({"evaluation_report": "reports/evaluation-v4"}),
            ),
            reason="imported from the old platform",
        )
        reg = self.registry
        reg.promote(NAME, version=1, reason="first production model")
        reg.deploy(NAME, production=1, canary=2, weight=20, reason="try v2 on 20%")
        reg.deploy(
            NAME,
            production=1,
            canary=None,
            weight=0,
            actor="mooring-monitor",
            reason=MONITOR_REASON,
        )
        reg.promote(NAME, version=4, reason="the imported model")
        reg.rollback(NAME, actor="ana", reason=MANUAL_REASON)
        reg.archive(NAME, version=3, actor="ana", reason=ARCHIVE_REASON)
        _drift_reports(self.home)
        self.metrics = ServingMetrics()
        ui = create_ui(
            registry=self.registry, home=self.home, admin_token=TOKEN, metrics=self.metrics.render
        )
        # A minute of snapshots, 5 s apart, taken before the page opens.
        routes: list[Any] = list(ui.routes)
        self.live: LiveMetrics = next(r.endpoint.__self__.live for r in routes if r.path == "/")
        self.live.clock = Clock()
        asyncio.run(self._minute())
        self.server = ServerThread(standalone_app(ui))

    def traffic(self) -> None:
        for version, ok in (("1", 40), ("2", 6)):
            self.metrics.requests.labels(NAME, version, "tfserving", "200").inc(ok)
            for _ in range(ok):
                self.metrics.latency.labels(NAME, version, "tfserving").observe(0.004)

    async def _minute(self) -> None:
        for _ in range(14):  # 13 intervals: 65 s
            self.traffic()
            await self.live.sample()


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstHour]:
    built = FirstHour(tmp_path_factory.mktemp("first-hour"))
    with built.server:
        yield built
    built.registry.close()


# -- the facts, without a browser -------------------------------------------------------------
def test_marks_say_which_versions_were_rolled_back_or_archived_when_and_why(
    hour: FirstHour,
) -> None:
    versions = hour.registry.versions(NAME)
    marks = version_marks(versions, hour.registry.history(NAME))
    assert sorted(marks) == [2, 3, 4]
    (canary,) = marks[2]
    assert (canary.label, canary.actor, canary.reason) == (
        "rolled back",
        "mooring-monitor",
        MONITOR_REASON,
    )
    assert canary.change == "canary v2 at 20% removed" and canary.at.startswith("20")
    (manual,) = marks[4]
    assert (manual.label, manual.actor, manual.reason) == ("rolled back", "ana", MANUAL_REASON)
    assert manual.change == "production v4 → v1"
    (archived,) = marks[3]
    assert (archived.label, archived.reason) == ("archived", ARCHIVE_REASON)


def test_a_version_deployed_again_is_no_longer_marked_rolled_back(hour: FirstHour) -> None:
    versions = hour.registry.versions(NAME)
    events = hour.registry.history(NAME)
    # Later, v2 goes back on the canary: the earlier rollback no longer describes it.
    again = replace(
        events[-1],
        seq=99,
        action="deploy",
        before=events[-1].after,
        after={"production": 1, "canary": 2, "weight": 5},
    )
    assert 2 in version_marks(versions, events)
    assert 2 not in version_marks(versions, [*events, again])


def test_the_kind_is_the_registered_one_never_a_default(hour: FirstHour) -> None:
    kinds = {mv.version: kind_of(mv) for mv in hour.registry.versions(NAME)}
    assert kinds == {1: "mlp", 2: "gbt (trees)", 3: "linear", 4: NOT_RECORDED}
    assert recorded_kind({}, {"kind": "gbt", "chosen_candidate": "trees"}) == "gbt (trees)"
    assert recorded_kind(None, {"builder": "pkg.mod:body"}) == NOT_RECORDED


def test_time_axis_labels_are_distinct_whole_steps() -> None:
    for span in (1.0, 3.0, 10.0, 47.0, 60.0, 299.0, 600.0, 3000.0):
        labels = [seconds_ago(t) for t in time_ticks(span)]
        assert labels[-1] == "now" and len(set(labels)) == len(labels) >= 2, (span, labels)
        assert all(re.fullmatch(r"now|−\d+ (s|min|h)", x) for x in labels), labels


def test_live_view_axis_and_caption_from_the_samples(hour: FirstHour) -> None:
    view = live_view(hour.live.series(NAME), Deployment(name=NAME, production=1))
    axis = re.findall(r'<text class="tick-x"[^>]*>([^<]*)</text>', view["charts"]["rate"])
    assert axis == ["−60 s", "−50 s", "−40 s", "−30 s", "−20 s", "−10 s", "now"]
    assert "seconds before 12:01:10 UTC" in view["charts"]["rate"]
    assert view["caption"] == (
        "Per version: requests counted since the server started; "
        "rate, 5xx, 4xx and latency over the last 60 s."
    )


def test_bin_edges_are_short_and_stay_distinct() -> None:
    labels = ["< 0.0935464", "[0.0935464, 0.187093)", "[0.187093, 0.28064)", ">= 0.28064"]
    assert compact_bins(labels) == ["< 0.0935", "[0.0935, 0.187)", "[0.187, 0.281)", ">= 0.281"]
    # Edges that three digits would merge get as many as keep them apart.
    close = ["[0.187093, 0.187101)", ">= 0.187101"]
    assert compact_bins(close) == ["[0.18709, 0.1871)", ">= 0.1871"]
    assert compact_bins(["[17, 22)", "premium-annual", "[1234567.891, 2e9)"]) == [
        "[17, 22)",
        "premium-annual",
        "[1234568, 2000000000)",
    ]
    svg = histogram_chart(compact_bins(labels), [1, 2, 3, 4], [4, 3, 2, 1], title="t")
    shown = [unescape(x) for x in re.findall(r'<text class="bin"[^>]*>([^<]*)</text>', svg)]
    assert shown == compact_bins(labels) and not any("…" in x for x in shown)


def test_report_pages_link_back_and_keep_the_report(hour: FirstHour) -> None:
    html = "<!DOCTYPE html><html><body class='x'><main>report</main></body></html>"
    linked = with_back_link(html, href='/ui/models/a"b', label="<v2>")
    assert 'href="/ui/models/a&quot;b"' in linked and "&lt;v2&gt;" in linked
    assert re.sub(r"<style>\.dashboard-back.*?</nav>", "", linked, flags=re.S) == html
    # Reasons are text: escaped in the page (Jinja's autoescape), shown as typed.
    model = hour.server.client.get(f"/ui/models/{NAME}").text
    assert "for &lt;batch&gt; clients &amp; their retries" in model and "<batch>" not in model
    res = hour.server.client.get(f"/ui/models/{NAME}/versions/4/report")
    assert res.status_code == 200 and res.headers["content-security-policy"].startswith("sandbox")
    assert f'href="/ui/models/{NAME}?version=4#version-h"' in res.text


# -- in a real browser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(hour: FirstHour) -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("MOORING_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests need Chromium at {CHROMIUM} (MOORING_REQUIRE_BROWSER=1)")
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PATIENCE * 1000)
    opened = context.new_page()
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":  # with the resource's address, to tell which failed
            errors.append(f"{message.text} ({message.location.get('url')})")

    opened.on("console", console)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def shot(page: Any, path: Path) -> None:
    """A full-page screenshot at ``path``: a real PNG at least as wide as the viewport."""
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1280 and height >= 400, (width, height)
    assert len(data) > 20_000  # a drawn page, not a blank one


# Every table's right edge within the viewport, or inside a box that scrolls sideways.
TABLES_FIT = """() => {
  const view = document.documentElement.clientWidth;
  const bad = [];
  for (const t of document.querySelectorAll("table")) {
    let box = t;
    while (box && box !== document.body && getComputedStyle(box).overflowX !== "auto") {
      box = box.parentElement;
    }
    const right = (box && box !== document.body ? box : t).getBoundingClientRect().right;
    if (right > view + 1) bad.push(t.className || t.id || "table");
  }
  return {bad, overflow: document.documentElement.scrollWidth - view, count: bad.length};
}"""


def fits(page: Any) -> None:
    result = page.evaluate(TABLES_FIT)
    assert result["bad"] == [] and result["overflow"] <= 0, result


def test_browser_model_page_marks_versions_and_names_their_kind(
    hour: FirstHour, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{hour.server.url}/ui/models/{NAME}")
    rows = page.locator("table.versions tbody tr:not(.mark-row)")
    kinds = {
        rows.nth(i).locator("th a").inner_text(): rows.nth(i).locator("td.kind").inner_text()
        for i in range(rows.count())
    }
    assert kinds == {"v4": "not recorded", "v3": "linear", "v2": "gbt (trees)", "v1": "mlp"}
    canary = page.locator("#v2-rolled-back")
    assert "Rolled back" in canary.inner_text() and "mooring-monitor" in canary.inner_text()
    assert MONITOR_REASON in canary.locator(".mark-reason").inner_text()
    assert "canary v2 at 20% removed" in canary.inner_text()
    manual = page.locator("#v4-rolled-back").inner_text()
    assert "by ana" in manual and MANUAL_REASON in manual and "production v4 → v1" in manual
    archived = page.locator("#v3-archived").inner_text()
    assert "Archived" in archived and ARCHIVE_REASON in archived
    badges = page.locator("table.versions .badge.mark")
    assert sorted(badges.all_inner_texts()) == ["archived", "rolled back", "rolled back"]
    assert page.locator("table.versions .badge.mark.rolled-back").first.is_visible()
    fits(page)
    shot(page, tmp_path / "model.png")
    # The selected version says it too, above its lineage.
    page.goto(f"{hour.server.url}/ui/models/{NAME}?version=4")
    assert MANUAL_REASON in page.locator(".mark-note.rolled-back").inner_text()


def test_browser_report_fits_and_links_both_ways(
    hour: FirstHour, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{hour.server.url}/ui/models/{NAME}?version=4")
    page.get_by_role("link", name="Evaluation report of v4").click()
    page.wait_for_url("**/versions/4/report")
    assert page.locator("h2", has_text="Candidates").is_visible()
    assert page.locator("div.candidates table").is_visible()
    fits(page)
    shot(page, tmp_path / "report.png")
    back = page.locator("#dashboard-back")
    assert back.inner_text() == f"← {NAME} v4 on the dashboard"
    back.click()
    page.wait_for_url(f"**/ui/models/{NAME}?version=4#version-h")
    assert page.locator("h2#version-h").inner_text() == "Version 4"


def test_browser_drift_bin_labels_are_whole_and_inside_the_chart(
    hour: FirstHour, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{hour.server.url}/ui/models/{NAME}/drift")
    labels = page.locator("#feature-ratio svg.histogram text.bin").all_text_contents()
    assert len(labels) >= 10 and not any("…" in x for x in labels), labels
    assert labels[0].startswith("< ") and labels[-1].startswith(">= ")
    assert all(re.fullmatch(r"\[[\d.]+, [\d.]+\)", x) for x in labels[1:-1]), labels
    assert max(len(re.sub(r"\D", "", x)) for x in labels) <= 12  # 3-4 digits an edge
    outside = page.evaluate(
        """() => [...document.querySelectorAll("svg.histogram")].flatMap(svg => {
          const box = svg.getBoundingClientRect();
          return [...svg.querySelectorAll("text")].filter(t => {
            const r = t.getBoundingClientRect();
            return r.left < box.left - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1;
          }).map(t => t.textContent);
        })"""
    )
    assert outside == []
    assert "premium-annual" in page.locator("#feature-plan svg.histogram").inner_html()
    shot(page, tmp_path / "drift.png")
    # The drift report links back to this page.
    page.locator("a[href*='/drift/reports/']").first.click()
    page.locator("#dashboard-back").click()
    page.wait_for_url(f"**/ui/models/{NAME}/drift")


def test_browser_live_page_time_axis_and_table_title(
    hour: FirstHour, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{hour.server.url}/ui/models/{NAME}/live")
    for chart in ("rate", "latency", "errors"):
        axis = page.locator(f"#chart-{chart} svg text.tick-x").all_text_contents()
        assert len(axis) >= 4 and len(set(axis)) == len(axis) and axis[-1] == "now", axis
        assert all(re.fullmatch(r"now|−\d+ (s|min)", x) for x in axis), axis
    caption = page.locator("#live-caption").inner_text()
    assert "since the server started" in caption and "last minute" not in caption
    assert re.search(r"over the last \d+ s\.$", caption), caption
    assert page.locator("table.live thead").inner_text().count("since start") == 1
    fits(page)
    shot(page, tmp_path / "live.png")
