"""Everything mooring renders: the web dashboard, the evaluation and drift reports' HTML.

The dashboard (models, deployments, reports, drift and live traffic at a glance) is
served by ``mooring serve`` under ``/ui`` and standalone by ``mooring ui``:
server-rendered HTML with inline SVG charts and one small script; it needs no
network access beyond the server it runs in. The report pages are self-contained
HTML files written beside the reports' JSON by the commands that write the reports.
The layers below render nothing: they take a renderer from here when a caller
passes one.

Examples:
    >>> from mooring.config import load_config
    >>> ui = create_ui(load_config("mooring.toml"))  # doctest: +SKIP

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
