"""MkDocs hooks: the generated references and the files included from the repository.

A page holds a marker where generated text goes:

- ``<!-- mooring:config -->``: the mooring.toml reference (``config_ref.py``);
- ``<!-- mooring:cli -->``: the CLI reference (``cli_ref.py``);
- ``<!-- mooring:api MODULE -->``: the Python API a module exports (``api_ref.py``),
  rendered on the module's own page and linked there from any other;
- ``<!-- mooring:metrics -->``: the Prometheus metrics (``mooring.formats._metrics``);
- ``<!-- mooring:allowed-ops -->``: the ops an imported model may hold, by family
  (``mooring.formats._ops_allowed``);
- ``<!-- mooring:denied-ops -->``: the ops refused with a reason of their own
  (``mooring.formats._vetting``);
- ``<!-- mooring:platforms -->``: where pip installs the wheel, per platform and Python
  (``platforms.py``, from ``platforms.json`` and the Makefile's tested Pythons);
- ``<!-- mooring:include PATH -->``: a Markdown file of the repository (ARCHITECTURE.md,
  benchmarks/README.md), its relative links turned into paths, since they point
  outside the site.

A page without a Mermaid diagram is written without the bundled Mermaid's script.

Table cells are written with ``cells.py``; Sphinx roles left in rendered docstrings
(``:func:`…```) become the code they name.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import api_ref  # noqa: E402
import cells  # noqa: E402
import cli_ref  # noqa: E402
import config_ref  # noqa: E402
import platforms  # noqa: E402

log = logging.getLogger("mkdocs.hooks.mooring")

_INCLUDE = re.compile(r"<!-- mooring:include (\S+) -->")
_API = re.compile(r"<!-- mooring:api (\S+) -->")
_LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|#|mailto:)([^)]+)\)")


def _include(match: re.Match[str]) -> str:
    path = ROOT / match.group(1)
    folder = Path(match.group(1)).parent
    text = path.read_text()
    text = re.sub(r"\A# .*\n", "", text)  # the page has its own title
    return _LINK.sub(lambda m: f"{m.group(1)} (`{(folder / m.group(2)).as_posix()}`)", text)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if "<!-- mooring:config -->" in markdown:
        text, unknown = config_ref.render()
        for note in unknown:
            log.warning("docs/gen/config_notes.md describes %s, which mooring.config lacks", note)
        markdown = markdown.replace("<!-- mooring:config -->", text)
    if "<!-- mooring:cli -->" in markdown:
        markdown = markdown.replace("<!-- mooring:cli -->", cli_ref.render())
    if "<!-- mooring:metrics -->" in markdown:
        markdown = markdown.replace("<!-- mooring:metrics -->", metrics_table())
    if "<!-- mooring:allowed-ops -->" in markdown:
        markdown = markdown.replace("<!-- mooring:allowed-ops -->", allowed_ops_table())
    if "<!-- mooring:denied-ops -->" in markdown:
        markdown = markdown.replace("<!-- mooring:denied-ops -->", denied_ops_table())
    if "<!-- mooring:platforms -->" in markdown:
        markdown = markdown.replace("<!-- mooring:platforms -->", platforms.render())
    where = page.file.src_uri
    markdown = _API.sub(lambda m: api_ref.render(m.group(1), where), markdown)
    return _INCLUDE.sub(_include, markdown)


def on_page_content(html: str, page: Any, **_: Any) -> str:
    # Docstrings rendered by mkdocstrings keep their Sphinx roles as text.
    return cells.without_roles(html)


_MERMAID_SCRIPT = re.compile(r'<script src="[^"]*assets/vendor/mermaid/mermaid\.min\.js"></script>')


def on_post_page(output: str, page: Any, **_: Any) -> str:
    # The bundled Mermaid (3.5 MB, mkdocs.yml's extra_javascript) only where a diagram is.
    if 'class="mermaid"' in output:
        return output
    return _MERMAID_SCRIPT.sub("", output)


def on_post_template(output: str, template_name: str, **_: Any) -> str:
    # 404.html: a page of the theme's, without a diagram.
    return _MERMAID_SCRIPT.sub("", output)


def metrics_table() -> str:
    """Every Prometheus metric mooring exports, from ``mooring.formats._metrics``."""
    import mooring.formats._metrics as metrics

    source = Path(metrics.__file__).read_text().splitlines()
    kind, rows = "", []
    for line in source:
        lowered = line.lower()
        for marker, name in (("# counters", "counter"), ("# histograms", "histogram")):
            if lowered.startswith(marker):
                kind = name
        if lowered.startswith("# gauges"):
            kind = "gauge"
        found = re.match(r'^([A-Z_]+) = "(mooring_\w+)"\s*(?:#\s*(.*))?$', line)
        if found:
            name = found.group(2) + ("_total" if kind == "counter" else "")
            rows.append(f"| `{name}` | {kind} | {found.group(3) or ''} |")
    return "| metric | kind | note |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def allowed_ops_table() -> str:
    """The ops an imported model may hold, family by family, with the reason, from
    ``mooring.formats._ops_allowed.FAMILIES``."""
    from mooring.formats._ops_allowed import FAMILIES

    rows = []
    for family, ops in FAMILIES.items():
        for reason in dict.fromkeys(ops.values()):
            named = ", ".join(cells.code(op) for op, why in sorted(ops.items()) if why == reason)
            rows.append(f"| {cells.cell(family)} | {cells.cell(reason)} | {named} |")
    return "| family | why it is allowed | ops |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def denied_ops_table() -> str:
    """The ops refused with a reason of their own (any op not on the allow-list is
    refused too), from ``mooring.formats._vetting.DENIED_OPS``."""
    from mooring.formats._vetting import CHECKPOINT_OPS, DENIED_OPS

    rows = [
        f"| {cells.code(op)} | {cells.cell(reason)}"
        f"{' (allowed in its own saver)' if op in CHECKPOINT_OPS else ''} |"
        for op, reason in sorted(DENIED_OPS.items())
    ]
    return "| op | why it is refused |\n|---|---|\n" + "\n".join(rows) + "\n"
