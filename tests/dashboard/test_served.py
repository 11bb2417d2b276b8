"""The dashboard inside ``mooring serve``'s app, on a real server, in a real browser.

The browser tests drive Debian's Chromium through Playwright (headless). Without
``/usr/bin/chromium`` they are skipped with a message saying how to enable them,
unless ``MOORING_REQUIRE_BROWSER=1`` (as in CI), where a missing browser fails.
``MOORING_CHROMIUM`` names another Chromium binary. Screenshots go to
``$MOORING_TEST_ARTIFACTS/ui-screenshots`` (else a pytest temp folder).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mooring.cli._serve import dashboard
from mooring.config import MooringConfig
from mooring.registry import Registry
from mooring.serving import create_app
from mooring.serving._process import with_dashboard
from tests._support.server import ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until
from tests.dashboard._data import NAME, TOKEN, populate, write_drift_reports

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui-served")]

CHROMIUM = Path(os.environ.get("MOORING_CHROMIUM", "/usr/bin/chromium"))
ENABLE = (
    f"browser tests skipped: no Chromium at {CHROMIUM}; enable them with "
    "`sudo apt-get install -y chromium` (Playwright for Python comes with the dev extras)"
)


class Served:
    """A real server for a project whose registry holds two real SavedModels."""

    def __init__(self, root: Path, model_dirs: dict[str, Path], train: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.registry = Registry.open(
            f"sqlite:///{self.home / 'registry.db'}", artifacts=self.home / "artifacts"
        )
        populate(self.registry, self.home, [model_dirs["a"], model_dirs["b"]])
        self.registry.promote(NAME, version=1, reason="first production model")
        self.registry.deploy(NAME, production=1, canary=2, weight=30, reason="canary v2 at 30%")
        write_drift_reports(self.home, train)
        cfg = MooringConfig.from_mapping(
            {
                "project": {"name": NAME, "home": str(self.home)},
                "data": {"train": "train.csv"},
                "serving": {
                    "poll_interval_s": 0.2,
                    "warmup_requests": 1,
                    "admin_token": TOKEN,
                },
            },
            root=root,
        )
        self.server = ServerThread(
            with_dashboard(create_app(cfg, registry=self.registry), cfg, dashboard)
        )

    def predict(self, count: int, key: str | None = None) -> list[str]:
        versions = []
        headers = {"X-Request-Key": key} if key else {}
        for _ in range(count):
            res = self.server.client.post(
                f"/v1/models/{NAME}:predict", json={"instances": [row()]}, headers=headers
            )
            assert res.status_code == 200, res.text
            versions.append(res.headers["X-Model-Version"])
        return versions


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path], adult_train: Path
) -> Iterator[Served]:
    site = Served(tmp_path_factory.mktemp("served"), model_dirs, adult_train)
    with site.server:
        site.server.wait_ready()
        yield site
    site.registry.close()


def test_the_server_mounts_the_dashboard(served: Served) -> None:
    client = served.server.client
    res = client.get("/ui/")
    assert res.status_code == 200 and 'href="/ui/models/income"' in res.text
    assert client.get("/ui", follow_redirects=False).status_code in (307, 308)
    assert client.get("/ui/static/ui.js").status_code == 200
    # The serving endpoints are untouched.
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/admin/status").status_code == 401


def test_live_metrics_come_from_the_servers_own_registry(served: Served) -> None:
    client = served.server.client
    api = f"/ui/api/models/{NAME}/live"
    assert client.get(api).status_code == 200
    served.predict(20)

    def second_snapshot() -> dict[str, Any] | None:
        data: dict[str, Any] = client.get(api).json()
        return data if data["points"] >= 1 else None

    # The dashboard takes at most one snapshot a second: a point once a second is taken.
    data = wait_until(second_snapshot, "a second snapshot of the live metrics")
    assert data["error"] is None
    rows = {r["series"]: r for r in data["rows"]}
    production = rows["v1 production"]
    assert int(production["requests"]) + int(rows["v2 canary"]["requests"]) >= 20
    assert production["error_rate"] == "0%"
    rate = data["charts"]["rate"]
    assert "<polyline" in rate or "<circle" in rate  # one interval is one point per version
    assert data["deployment"] == {"production": 1, "canary": 2, "canary_weight": 30}


def test_admin_changes_apply_to_the_running_server(served: Served) -> None:
    client = served.server.client
    api = f"/ui/api/models/{NAME}/canary"
    assert client.post(api, json={"version": 2, "weight": 100, "reason": "x"}).status_code == 401
    res = client.post(
        api,
        json={"version": 2, "weight": 0, "reason": "hold the canary"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert res.status_code == 200, res.text
    # Applied at once (not at the next poll): unkeyed traffic all goes to production.
    assert set(served.predict(10)) == {"1"}
    back = client.post(
        api,
        json={"version": 2, "weight": 30, "reason": "resume the canary"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert back.status_code == 200
    assert served.registry.history(NAME, limit=1)[-1].reason == "resume the canary"


# -- real browser --------------------------------------------------------------------------
# Module scope: Playwright's sync API keeps an event loop running in this thread while it
# is open, and tests that run later in the same process call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("MOORING_REQUIRE_BROWSER") == "1":
            pytest.fail(ENABLE.replace("skipped", "required (MOORING_REQUIRE_BROWSER=1)"))
        pytest.skip(ENABLE)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("MOORING_TEST_ARTIFACTS")
    folder = Path(root) / "ui-screenshots" if root else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PATIENCE * 1000)  # Playwright's waits: minutes, not 30 s
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.errors = errors
    yield opened
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def overflow(page: Any) -> int:
    """How far the page is wider than the viewport (0 when nothing scrolls sideways)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_browser_walks_the_pages_by_their_links(
    browser: Any, served: Served, page: Any, shots: Path
) -> None:
    page.goto(f"{served.server.url}/ui/")
    assert page.locator("h1").inner_text() == "Models"
    page.screenshot(path=str(shots / "models.png"), full_page=True)
    page.get_by_role("link", name=NAME, exact=True).first.click()
    page.wait_for_url("**/ui/models/income")
    assert page.locator("#production").inner_text() == "v1"
    assert page.locator("#canary").inner_text() == "v2 at 30%"
    chart = page.locator("svg.chart.line").first
    assert chart.is_visible() and chart.locator("circle").count() == 2
    page.screenshot(path=str(shots / "model.png"), full_page=True)

    page.get_by_role("link", name="report").first.click()
    page.wait_for_url("**/versions/2/report")
    assert "evaluation" in page.title().lower()
    page.go_back()

    page.get_by_role("navigation", name="Model pages").get_by_role("link", name="Drift").click()
    page.wait_for_url("**/drift")
    bars = page.locator("svg.chart.bars")
    assert bars.is_visible()
    assert bars.locator("rect.bar.over").count() == 2
    assert bars.locator("rect.bar").count() == 4
    box = bars.locator("rect.bar.over").first.bounding_box()
    assert box is not None and box["width"] > 20  # drawn, with a visible length
    page.get_by_role("link", name="age", exact=True).first.click()
    assert page.url.endswith("#feature-age")
    assert page.locator("#feature-age svg.histogram rect.current").count() > 5
    page.screenshot(path=str(shots / "drift.png"), full_page=True)

    page.get_by_role("link", name="jensen_shannon").click()
    page.wait_for_url("**metric=jensen_shannon**")
    assert "jensen_shannon per feature" in page.locator("#bars-h").inner_text()


def test_browser_live_page_refreshes_its_charts(
    browser: Any, served: Served, page: Any, shots: Path
) -> None:
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=served.server.url, timeout=PATIENCE) as client:
            while not stop.is_set():
                client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
                time.sleep(0.02)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        page.goto(f"{served.server.url}/ui/models/{NAME}/live")
        # The page's script marks each refresh it draws; the server-drawn first paint
        # (which may already hold lines from earlier tests' traffic) does not count.
        # Polled from here, not wait_for_function: the page's CSP forbids evaluating strings.
        live = page.locator("#live")
        wait_until(
            lambda: int(live.get_attribute("data-points") or 0) >= 2,
            "the page's script to draw two intervals",
            seen=lambda: live.get_attribute("data-points"),
        )
    finally:
        stop.set()
        sender.join(timeout=PATIENCE)
    assert page.locator("#chart-latency svg polyline.series").count() >= 2
    assert page.locator("#chart-rate svg polyline.series").count() >= 1
    first = page.locator("#live-rows tr").first
    assert first.locator("th").inner_text() == "v1 production"
    assert int(first.locator("td").first.inner_text()) > 0
    assert "Updated" in page.locator("#live-status").inner_text()
    page.screenshot(path=str(shots / "live.png"), full_page=True)


def test_browser_promote_with_the_token_and_see_the_audit_entry(
    browser: Any, served: Served, page: Any, shots: Path
) -> None:
    page.goto(f"{served.server.url}/ui/models/{NAME}")
    page.get_by_label("Reason").fill("v2 held up on the canary")
    page.get_by_label("Version", exact=True).first.select_option("2")
    # A wrong token is refused and nothing changes.
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Promote").click()
    status = page.locator("#admin-status")
    status.filter(has_text="Refused").wait_for()
    assert "Bearer" in status.inner_text()
    assert served.registry.deployment(NAME).production == 1
    # The browser logs the refused request itself; that one is expected.
    assert all("401" in e for e in page.errors)
    page.errors.clear()
    # The right token: the page reloads with the new state and the audit entry on top.
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Promote").click()
    page.locator("#admin-status", has_text="Done: production v2").wait_for()
    assert page.locator("#production").inner_text() == "v2"
    top = page.locator("#history tbody tr").first
    assert "v2 held up on the canary" in top.inner_text()
    assert "promote v2" in top.inner_text() and "mooring-ui" in top.inner_text()
    event = served.registry.history(NAME, limit=1)[-1]
    assert (event.action, event.version, event.reason) == ("promote", 2, "v2 held up on the canary")
    # The token stays in this tab's session only, never in the page's HTML.
    assert page.get_by_label("Admin token").input_value() == TOKEN
    assert TOKEN not in page.content().replace(f'value="{TOKEN}"', "")
    page.screenshot(path=str(shots / "promoted.png"), full_page=True)


def test_browser_keyboard_focus_is_visible(browser: Any, served: Served, page: Any) -> None:
    page.goto(f"{served.server.url}/ui/models/{NAME}")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


@pytest.mark.parametrize("path", ["/ui/", "/ui/models/income", "/ui/models/income/drift"])
def test_browser_phone_width_has_no_sideways_scrolling(
    browser: Any, served: Served, shots: Path, path: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(PATIENCE * 1000)
    try:
        phone = context.new_page()
        phone.goto(f"{served.server.url}{path}")
        assert overflow(phone) == 0
        assert phone.locator("h1").is_visible()
        name = path.strip("/").replace("/", "-") or "ui"
        phone.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
    finally:
        context.close()
