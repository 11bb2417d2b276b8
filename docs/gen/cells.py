"""Text for the generated references' Markdown tables, rendered as written.

In a Python-Markdown table cell a ``|`` ends the cell, even inside a code span, and
``\\|`` inside a code span is shown with its backslash; ``<home>`` is read as an HTML
tag and vanishes. So code spans become ``<code>`` elements with the pipe as an entity,
and the rest of the text is escaped.
"""

from __future__ import annotations

import html
import re

_CODE = re.compile(r"`([^`]+)`")


def code(text: str) -> str:
    """``text`` as inline code that a table cell shows as written."""
    return f"<code>{html.escape(text, quote=False).replace('|', '&#124;')}</code>"


def cell(text: str) -> str:
    """A table cell's text: its code spans as :func:`code`, the rest escaped, one line."""
    if not text:
        return ""
    text = text.replace("\\|", "|")  # a hand-written table's escape (config_notes.md)
    out, last = [], 0
    for found in _CODE.finditer(text):
        out.append(_plain(text[last : found.start()]))
        out.append(code(found.group(1)))
        last = found.end()
    out.append(_plain(text[last:]))
    return "".join(out).replace("\n", " ")


def _plain(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "&#124;")


# Sphinx cross-reference roles in docstrings (``:func:`~mooring.x.f```): mkdocstrings
# renders the role's name as text before the code, so it is dropped, and a ``~`` keeps
# only the last part of the dotted name, as Sphinx shows it.
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>(~?)([^<]+)</code>")


def without_roles(page_html: str) -> str:
    """The rendered page with each Sphinx role shown as the code it names."""
    return _ROLE.sub(
        lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>",
        page_html,
    )
