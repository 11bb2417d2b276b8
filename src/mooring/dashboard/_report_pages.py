"""Stored HTML reports served by the dashboard, with a way back to it.

The evaluation and drift reports are self-contained files written when they were
made; they know nothing of the dashboard that serves them. :func:`served_report`
puts a small bar on top of each (a link back to the page that links to the report)
and a rule that lets the wide tables of reports written before their tables scrolled
on their own scroll inside the page instead of off its right edge. The report stays
sandboxed (:data:`REPORT_CSP`: no script, inline styles only).

Examples:
    >>> page = with_back_link("<html><body><main>x</main></body></html>",
    ...     href="/ui/models/income?version=2", label="income v2 on the dashboard")
    >>> '<nav class="dashboard-back"' in page and page.index("<nav") < page.index("<main")
    True
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from starlette.responses import HTMLResponse, Response

__all__ = ["REPORT_CSP", "served_report", "with_back_link"]

# Stored HTML reports are self-contained (inline styles, no scripts): sandboxed.
REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
# Older reports wrote the candidates table without a scrolling wrapper of its own.
_FIT = (
    "<style>.dashboard-back{font:14px system-ui,sans-serif;background:#0d2a47;"
    "padding:8px 24px}.dashboard-back a{color:#fff}"
    "div.candidates,div.table-wrap{overflow-x:auto;max-width:100%}</style>"
)


def with_back_link(html: str, *, href: str, label: str) -> str:
    """``html`` with a bar linking back to ``href`` (text ``← label``) at the top of its body."""
    nav = (
        f'{_FIT}<nav class="dashboard-back" aria-label="Dashboard">'
        f'<a href="{escape(href)}" id="dashboard-back">← {escape(label)}</a></nav>'
    )
    found = _BODY.search(html)
    if found is None:
        return nav + html
    return html[: found.end()] + nav + html[found.end() :]


def served_report(path: Path, *, href: str, label: str) -> Response:
    """The report at ``path`` (inside the home, checked by the caller) with its back link."""
    html = path.read_text(encoding="utf-8", errors="replace")
    return HTMLResponse(
        with_back_link(html, href=href, label=label),
        headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"},
    )
