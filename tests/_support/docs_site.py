"""The served documentation site, checked in a real browser, offline.

:func:`check_served_site` drives Debian's Chromium (``/usr/bin/chromium``, or
``$MOORING_CHROMIUM``) through Playwright against a running ``mooring docs``: the
diagrams of the concepts page are drawn, and large enough to read; the search box
answers; a navigation link leads to a page, not a directory listing; and no request of
the pages leaves 127.0.0.1. It needs only the standard library and Playwright (no
fixture of the suite), so the wheel's test calls it too, on the site a fresh install
serves::

    check_served_site("http://127.0.0.1:8000/")
"""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

CHROMIUM = Path(os.environ.get("MOORING_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The page with the most diagrams (the lifecycle, a request, a rollout, a retrain).
DIAGRAM_PAGE = "concepts/"
#: The query typed into the search box, a word many pages use.
QUERY = "canary"
#: The smallest size a diagram's text (Mermaid's 16 px, scaled to fit) may be drawn at.
MIN_TEXT_PX = 11.0
WAIT_MS = 20_000
#: How many times the query is typed before the search counts as not answering.
SEARCH_TRIES = 4

# Material draws each diagram into a closed shadow root; opened, the page can be asked
# what is inside (the drawing is the same).
_OPEN_SHADOWS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, Object.assign({}, init, { mode: "open" }));
};
"""

# Each drawn diagram: its text's size on screen (Mermaid's 16 px times the scale the
# page draws its svg at) and whether Mermaid drew an error instead.
_DIAGRAMS = """
() => [...document.querySelectorAll("div.mermaid")].map((box) => {
  const svg = box.shadowRoot && box.shadowRoot.querySelector("svg");
  if (!svg) return null;
  const drawn = svg.getBoundingClientRect().width;
  const own = svg.viewBox.baseVal ? svg.viewBox.baseVal.width : drawn;
  return {
    text_px: own ? (16 * drawn) / own : 0,
    error: /Syntax error|Parse error/.test(svg.textContent || ""),
  };
})
"""


def check_served_site(url: str, screenshot_dir: Path | None = None) -> None:
    """Check the documentation served at ``url`` (its root) in a headless Chromium.

    Raises AssertionError naming what failed: a diagram not drawn, drawn as an error or
    too small to read; no search result; a navigation link that lands on something other
    than a page; any request to an address other than 127.0.0.1.
    """
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (set MOORING_CHROMIUM)"
    root = url if url.endswith("/") else url + "/"
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(_OPEN_SHADOWS)
            page.on("request", lambda request: requested.append(request.url))
            # Refused, whether this machine has a network or not: the site must not need it.
            page.route(_elsewhere, lambda route: route.abort("blockedbyclient"))
            _diagrams_are_drawn(page, root, screenshot_dir)
            _search_answers(page, root)
            _navigation_leads_to_pages(page, root)
        except Exception as exc:
            # A diagram waiting on a CDN fails first: the request is the reason.
            _nothing_left_127(requested, cause=exc)
            raise
        finally:
            browser.close()
    assert requested, "the browser made no request"
    _nothing_left_127(requested)


def _elsewhere(url: str) -> bool:
    return urlsplit(url).hostname != "127.0.0.1"


def _nothing_left_127(requested: list[str], cause: BaseException | None = None) -> None:
    outside = sorted({url for url in requested if _elsewhere(url)})
    if outside:
        raise AssertionError(f"requests left 127.0.0.1: {outside}") from cause


def _diagrams_are_drawn(page: Any, root: str, screenshot_dir: Path | None) -> None:
    address = urljoin(root, DIAGRAM_PAGE)
    with urllib.request.urlopen(address, timeout=30) as answer:
        expected = len(re.findall(r'<pre class="mermaid"', answer.read().decode()))
    assert expected >= 1, f"{address} has no Mermaid diagram to check"
    page.goto(address, wait_until="load")
    page.wait_for_function(
        f"""() => document.querySelectorAll("pre.mermaid").length === 0
                && [...document.querySelectorAll("div.mermaid")].filter(
                     (d) => d.shadowRoot && d.shadowRoot.querySelector("svg")).length
                   === {expected}""",
        timeout=WAIT_MS,
    )
    drawn = page.evaluate(_DIAGRAMS)
    if screenshot_dir is not None:
        screenshot_dir.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot_dir / "concepts.png"), full_page=True)
    assert len(drawn) == expected, f"{len(drawn)} of {expected} diagrams drawn on {address}"
    for number, diagram in enumerate(drawn, 1):
        assert diagram is not None, f"diagram {number} of {address} has no svg"
        assert not diagram["error"], f"diagram {number} of {address} is drawn as an error"
        assert diagram["text_px"] >= MIN_TEXT_PX, (
            f"diagram {number} of {address} is drawn with {diagram['text_px']:.1f} px text "
            f"(at least {MIN_TEXT_PX} px to be read)"
        )


def _search_answers(page: Any, root: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(root, wait_until="load")
    box = page.locator("input.md-search__input")
    box.click()
    results = page.locator(".md-search-result__item")
    # Typed key by key, as a reader does: Material reads the query on key events, so a
    # value set at once (fill) is seen only if the search worker starts after it. The
    # worker builds its index after the page loads (seconds on a busy machine); a query
    # typed before it is ready is typed again, up to SEARCH_TRIES times.
    for attempt in range(SEARCH_TRIES):
        box.fill("")
        box.press_sequentially(QUERY, delay=20)
        try:
            results.first.wait_for(state="visible", timeout=WAIT_MS)
            break
        except PlaywrightTimeout:
            if attempt == SEARCH_TRIES - 1:
                raise
    assert results.count() >= 1, f"searching for {QUERY!r} found nothing"
    link = results.first.locator("a").first.get_attribute("href") or ""
    assert urlsplit(urljoin(root, link)).hostname == "127.0.0.1", link


def _navigation_leads_to_pages(page: Any, root: str) -> None:
    page.goto(root, wait_until="load")
    links = page.locator("nav.md-nav--primary a.md-nav__link[href]")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    pages = [h for h in hrefs if h.endswith("/") and h not in ("./", ".", "/")]
    assert pages, f"no navigation link to a page on {root}"
    target = pages[len(pages) // 2]
    page.locator(f'nav.md-nav--primary a.md-nav__link[href="{target}"]').first.click()
    page.wait_for_load_state("load")
    expected = urljoin(root, target)
    assert page.url == expected, f"the link {target!r} led to {page.url}, not {expected}"
    assert "Directory listing" not in page.title(), f"{page.url} is a directory listing"
    heading = page.locator("article h1")
    assert heading.count() == 1, f"{page.url} is not a page of the site (no heading)"
