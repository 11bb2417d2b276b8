"""A small, safe Markdown renderer for model cards and on-call sheets (headings, paragraphs,
lists, tables, fenced code blocks).

Everything is HTML-escaped first; only the handful of constructs the registry's
model cards use become tags, so a card can never inject markup into the page.

Examples:
    >>> html = render_markdown("# Card\\n\\n| a | b |\\n|---|---|\\n| 1 | <x> |")
    >>> html.splitlines()[0]
    '<h2>Card</h2>'
    >>> "<td>&lt;x&gt;</td>" in html
    True
    >>> render_markdown("```sh\\ncurl -sf 'http://h/a?b=1&c'\\n```")
    "<pre><code>curl -sf 'http://h/a?b=1&amp;c'</code></pre>"
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["render_markdown"]

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")
_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _inline(text: str) -> str:
    out = escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    parts = re.split(r"(?<!\\)\|", body)
    return [p.strip().replace("\\|", "|") for p in parts]


def render_markdown(text: str, *, heading_offset: int = 1) -> str:
    """HTML for ``text``; headings move down ``heading_offset`` levels (``#`` → ``<h2>``)."""
    lines = text.splitlines()
    out: list[str] = []
    paragraph: list[str] = []
    i = 0

    def flush() -> None:
        if paragraph:
            out.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        if line.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                code.append(escape(lines[i], quote=False))
                i += 1
            i += 1  # the closing fence (or the end of the text)
            out.append("<pre><code>" + "\n".join(code) + "</code></pre>")
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + heading_offset)
            out.append(f"<h{level}>{_inline(heading.group(2).strip())}</h{level}>")
            i += 1
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _RULE.match(lines[i + 1]):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])))
                rows[-1] += "</tr>"
                i += 1
            out.append(
                '<div class="table-wrap" tabindex="0"><table>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            )
            continue
        if _ITEM.match(line):
            flush()
            items = []
            while i < len(lines) and (item := _ITEM.match(lines[i])):
                items.append(f"<li>{_inline(item.group(1))}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        paragraph.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)
