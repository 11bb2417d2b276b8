"""Charts, Markdown and drift-file reading: the pure pieces of the pages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mooring.dashboard._charts import Bar, Line, bar_chart, histogram_chart, line_chart, ticks
from mooring.dashboard._drift_files import is_report_stem, latest_drift, read_drift_history
from mooring.dashboard._markdown import render_markdown
from tests.dashboard._data import write_drift_file

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_line_chart_draws_each_series_with_gaps_and_thresholds() -> None:
    svg = line_chart(
        [
            Line("a", [(0.0, 1.0), (1.0, 2.0), (2.0, None), (3.0, 3.0), (4.0, 2.5)]),
            Line("b <&>", [(0.0, 0.5), (4.0, 0.7)], dashed=True),
        ],
        title="t <x>",
        thresholds=[("limit", 2.75)],
    )
    root = parse(svg)  # well-formed XML, text escaped
    assert root.get("role") == "img" and root.find(f"{SVG}title").text == "t <x>"  # type: ignore[union-attr]
    lines = root.findall(f"{SVG}polyline")
    assert [len(p.get("points", "").split()) for p in lines] == [2, 2, 2]  # the gap splits "a"
    assert lines[2].get("stroke-dasharray") == "5 3"
    threshold = root.find(f"{SVG}line[@class='threshold']")
    assert threshold is not None
    y = float(threshold.get("y1", "0"))
    ys_a = [float(pt.split(",")[1]) for pt in lines[1].get("points", "").split()]
    assert min(ys_a) < y < max(ys_a)  # 2.75 lies between 3.0 and 2.5 on screen too
    assert "b &lt;&amp;&gt;" in svg


def test_line_chart_without_data_says_so() -> None:
    svg = line_chart([Line("a", [(0.0, None)])], title="t", empty_text="nothing yet")
    assert "nothing yet" in svg and "<polyline" not in svg and 'class="chart line empty"' in svg


def test_bar_chart_flags_bars_on_the_bad_side_of_their_own_threshold() -> None:
    svg = bar_chart(
        [
            Bar("psi high", 0.5, 0.2),
            Bar("psi low", 0.1, 0.2),
            Bar("auc floor", 0.6, 0.7, bad_above=False),
            Bar("no threshold", 9.0),
        ],
        title="bars",
    )
    root = parse(svg)
    rects = root.findall(f"{SVG}rect")
    over = [r.find(f"{SVG}title").text.split(":")[0] for r in rects if "over" in r.get("class", "")]  # type: ignore[union-attr]
    assert over == ["psi high", "auc floor"]
    assert len(root.findall(f"{SVG}line[@class='threshold']")) == 3
    widths = [float(r.get("width", "0")) for r in rects]
    assert widths[3] > widths[0] > widths[1]  # lengths follow the values


def test_histogram_compares_shares_not_counts() -> None:
    svg = histogram_chart(["a", "b"], [10.0, 30.0], [300.0, 100.0], title="h")
    root = parse(svg)
    base = [r for r in root.findall(f"{SVG}rect") if r.get("class") == "baseline"]
    cur = [r for r in root.findall(f"{SVG}rect") if r.get("class") == "current"]
    heights = [float(r.get("height", "0")) for r in (*base, *cur)]
    # baseline 25% / 75%, current 75% / 25%: mirrored heights.
    assert heights[0] == heights[3] and heights[1] == heights[2] and heights[1] > heights[0]
    assert "75.0%" in svg
    assert "no histogram" in histogram_chart(["a"], [1.0, 2.0], [1.0], title="bad")


@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6))
def test_ticks_cover_the_range_in_order(lo: float, span: float) -> None:
    out = ticks(lo, lo + span)
    assert out == sorted(out) and 2 <= len(out) <= 12
    step = 2 * span / 4  # a "nice" step is at most twice the raw quarter of the span
    assert out[0] >= lo - 1e-6 * span and out[0] - lo <= step * 1.0001 + 1e-9
    assert out[-1] <= lo + span + 1e-6 * max(1.0, abs(lo + span))


def test_markdown_renders_the_model_cards_constructs_and_escapes_the_rest() -> None:
    html = render_markdown(
        "# Title\n\nSome **bold** and `code` <script>x</script>.\n\n"
        "- one\n- two\n\n| k | v |\n|---|---|\n| a \\| b | <i>1</i> |\n\n## Sub"
    )
    assert html.startswith("<h2>Title</h2>")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<td>a | b</td><td>&lt;i&gt;1&lt;/i&gt;</td>" in html
    assert html.endswith("<h3>Sub</h3>")


@given(st.text(max_size=200))
def test_markdown_never_emits_markup_from_its_input(source: str) -> None:
    html = render_markdown(source)
    tags = set(re.findall(r"</?([a-zA-Z0-9]+)", html))
    allowed = {"h2", "h3", "h4", "h5", "h6", "p", "ul", "li", "table", "thead", "tbody", "tr"}
    assert tags <= allowed | {"th", "td", "strong", "code", "div", "pre"}


def test_markdown_fenced_code_is_kept_verbatim_and_escaped() -> None:
    html = render_markdown("Run:\n\n```sh\necho '<b>' | awk '/^x/'\n**not bold**\n```\nafter")
    assert "<pre><code>echo '&lt;b&gt;' | awk '/^x/'\n**not bold**</code></pre>" in html
    assert html.endswith("<p>after</p>")


def test_drift_history_reads_newest_last_and_skips_latest_when_others_exist(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "monitoring" / "m" / "drift"
    doc = {"model": "m", "status": "ok", "features": []}
    write_drift_file(folder, "20240102T000000Z.json", {**doc, "created_at": "2024-01-02T00:00:00Z"})
    write_drift_file(folder, "20240101T000000Z.json", {**doc, "created_at": "2024-01-01T00:00:00Z"})
    write_drift_file(folder, "latest.json", {**doc, "created_at": "2024-01-02T00:00:00Z"})
    (folder / "20240101T000000Z.html").write_text("<p>report</p>")
    history = read_drift_history(tmp_path, "m")
    assert [r.stem for r in history.runs] == ["20240101T000000Z", "20240102T000000Z"]
    assert history.runs[0].has_html and not history.runs[1].has_html
    assert read_drift_history(tmp_path, "other").runs == []
    # A report without created_at is timed by its file name.
    write_drift_file(folder, "20240103T000000Z.json", {"status": "drift"})
    latest = read_drift_history(tmp_path, "m").latest
    assert latest is not None and latest.when == "2024-01-03 00:00:00 UTC"


def test_drift_history_reads_flagged_stems_and_half_pruned_reports(tmp_path: Path) -> None:
    folder = tmp_path / "monitoring" / "m" / "drift"
    doc = {"model": "m", "features": []}
    ok = {**doc, "status": "ok", "created_at": "2024-01-01T00:00:00Z"}
    flagged = {**doc, "status": "drift", "created_at": "2024-01-02T00:00:00Z"}
    write_drift_file(folder, "20240101T000000Z.json", ok)  # its page already pruned
    write_drift_file(folder, "20240102T000000Z-drift.json", flagged)
    (folder / "20240102T000000Z-drift.html").write_text("<p>drift</p>")
    (folder / "20231231T000000Z.html").write_text("<p>a page whose JSON is gone</p>")
    history = read_drift_history(tmp_path, "m")
    assert [(r.stem, r.status, r.has_html) for r in history.runs] == [
        ("20240101T000000Z", "ok", False),
        ("20240102T000000Z-drift", "drift", True),
    ]
    assert history.problems == [] and is_report_stem("20240102T000000Z-drift")
    latest = latest_drift(tmp_path, "m")  # no latest.json: the newest file
    assert latest is not None and latest.stem == "20240102T000000Z-drift"
