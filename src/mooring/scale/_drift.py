"""Drift over a long or sharded prediction log, summarised file by file on an engine.

A month of logs does not fit in one process's memory, and need not: drift only needs
statistics of the window (:class:`~mooring.monitoring._window.WindowSummary`). Each log
file's rows of the model (and version, since a time, answers only) are summarised where
the engine runs them, the summaries are merged in file order, and the merged summary is
judged by the same :func:`~mooring.monitoring._drift.check_drift` as a window read into
one process, so the report (JSON, HTML, gauges) and the verdicts are the same.

The window is ``since`` a time (whole days before it are not even listed), every row of
``source`` (log files or a folder of them: another server's log, a batch scoring run's
``--log``), or both. A window of the last N rows needs only the newest files and stays
on the single-process reader (``mooring drift --last``).

Examples:
    >>> ray = Engine("ray", address="auto")
    >>> report = sharded_drift(cfg, registry, since=month_ago, engine=ray)  # doctest: +SKIP
    >>> report.status  # doctest: +SKIP
    'drift'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mooring.errors import NotFoundError
from mooring.formats._drift import DriftReport, RenderDrift
from mooring.formats._predictions import log_files, read_log_file
from mooring.monitoring import check_drift
from mooring.monitoring._window import WindowSummary, summarize_window
from mooring.scale._engine import Engine
from mooring.scale._shards import list_shards

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.registry import Registry

__all__ = ["sharded_drift", "sharded_window"]


@dataclass(frozen=True)
class _FileWindow:
    """The per-file work: the file's rows in the window, summarised (None: no rows)."""

    model: str
    version: int | None
    since: datetime | None
    plan: dict[str, Any]

    def __call__(self, path: str) -> bytes | None:
        table = read_log_file(path, self.model, version=self.version, since=self.since)
        if table.num_rows == 0:
            return None
        return summarize_window(table, **self.plan).to_json()


def sharded_window(
    files: Sequence[str],
    model: str,
    plan: dict[str, Any],
    *,
    version: int | None = None,
    since: datetime | None = None,
    engine: Engine | None = None,
) -> WindowSummary:
    """The summary of every row of ``model`` in ``files`` (log files), merged in file order.

    Raises:
        NotFoundError: no file holds a row of the model in the window.
    """
    engine = engine or Engine()
    parts = [
        WindowSummary.from_json(p)
        for p in engine.map(_FileWindow(model, version, since, plan), list(files))
        if p is not None
    ]
    if not parts:
        which = f"version {version} of " if version is not None else ""
        raise NotFoundError(
            f"no logged row of {which}model {model!r} in {len(files)} log files"
            + (f" since {since.isoformat()}" if since is not None else "")
            + "; widen the window (--since) or check --data"
        )
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    return merged


def sharded_drift(
    cfg: MooringConfig,
    registry: Registry,
    *,
    source: str | Sequence[str] | None = None,
    since: datetime | None = None,
    version: int | None = None,
    engine: Engine | None = None,
    write: bool = True,
    html: RenderDrift | None = None,
) -> DriftReport:
    """:func:`~mooring.monitoring._drift.check_drift` over the log's files on ``engine``.

    ``source`` defaults to the project's log (``[serving] log_url``, else
    ``<home>/predictions``); with neither ``source`` nor ``since`` the window is the
    whole log.

    Raises:
        NotFoundError: no log file, or no row of the model in the window.
    """
    if source is None:
        url = cfg.serving.log_url or str(cfg.home / "predictions")
        files = log_files(url, since=since)
        if not files:
            raise NotFoundError(
                f"the prediction log '{url}' holds no Parquet file"
                + (f" since {since.date()}" if since is not None else "")
                + "; send traffic with [serving] log_sample_rate above 0, or pass --data"
            )
    else:
        files = list_shards(source)

    def summarize(chosen: int, plan: dict[str, Any]) -> WindowSummary:
        return sharded_window(
            files, cfg.project.name, plan, version=chosen, since=since, engine=engine
        )

    return check_drift(cfg, registry, version=version, write=write, html=html, summarize=summarize)
