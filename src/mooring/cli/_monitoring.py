"""``mooring drift``, ``mooring feedback`` and ``mooring live``: drift and live quality.

``mooring drift`` exits 1 when drift is found (0 ok or insufficient data), so it can
gate a cron job or a CI step; ``--metrics-port`` keeps it running as a Prometheus
exporter that re-checks every ``--interval`` seconds, with the live-quality gauges from
label feedback beside the drift gauges once labels have arrived.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.cli._engine import EngineOpt, RayAddressOpt, WorkersOpt, engine_from
from mooring.config import load_config
from mooring.config._base import parse_duration
from mooring.errors import UsageError

if TYPE_CHECKING:
    from mooring.cli._log_flush import Flushed
    from mooring.config import MooringConfig
    from mooring.formats._drift import DriftReport, FeatureDrift
    from mooring.formats._feedback import Labels
    from mooring.monitoring._estimate import EstimatedMetric
    from mooring.monitoring._feedback import LiveMetrics
    from mooring.registry import Registry

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
LastOpt = Annotated[
    int | None,
    typer.Option(
        "--last", "-n", help="Judge the last N logged rows (default: \\[monitoring] window_rows)."
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only rows since a duration ago (30m, 1h, 7d) or an ISO time."),
]
ServerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--server",
        help="A server (http://127.0.0.1:8501) asked to write its prediction log before the "
        "read (repeatable; default: the replicas of \\[rollout] metrics_urls).",
    ),
]
VersionOpt = Annotated[
    int | None, typer.Option("--version", "-v", help="Model version (default: production).")
]


def parse_since(text: str | None) -> datetime | None:
    """'1h' → one hour ago (UTC); an ISO time as given (naive = UTC)."""
    if text is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration (30m, 1h, 7d) nor an ISO time "
            "(2024-05-01T12:00:00); pass one of those"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _headline(f: FeatureDrift) -> str:
    """The distance the table shows a feature's two bars for."""
    return "wasserstein" if f.kind == "numeric" else "jensen_shannon"


def _bars(f: FeatureDrift) -> str:
    """The headline distance's floor and natural variation."""
    key = _headline(f)
    return f"{_fmt(f.thresholds.get(key))} / {_fmt(f.natural.get(key))}"


def _print_kinds(features: list[FeatureDrift]) -> None:
    """Where each feature's natural variation comes from, one line per kind."""
    from mooring.monitoring._noise import kind_label

    kinds: dict[str, list[str]] = {}
    for f in features:
        if kind := f.natural_kind.get(_headline(f)):
            kinds.setdefault(kind, []).append(f.name)
    for kind, names in kinds.items():
        console.print(
            f"natural variation of {', '.join(names)}: {kind_label(kind)}", soft_wrap=True
        )


@app.command(
    "drift",
    epilog="Example: mooring drift --last 5000   ·   mooring drift --since 1h --json",
)
def drift_command(
    config: ConfigOpt = Path("mooring.toml"),
    last: LastOpt = None,
    since: SinceOpt = None,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve the drift gauges (and live metrics from label feedback) on this port "
            "(/metrics) and re-check every --interval.",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks with --metrics-port.")
    ] = 300.0,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Judge these logged rows instead of the project's log: prediction log files, "
            "folders or globs, local or fsspec URLs (repeatable); summarised on the engine.",
        ),
    ] = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    server: ServerOpt = None,
) -> int:
    """Compare the prediction log with the training statistics; write JSON + HTML reports.

    With --data, or --since on a ray engine (or with --workers), each log file is
    summarised where the engine runs it and the summaries merged: a month of logs never
    sits in one process.
    """
    from mooring.cli._log_flush import ask_to_flush
    from mooring.dashboard._drift_report import render_drift_html
    from mooring.monitoring import check_drift
    from mooring.pipeline._contracts import require_registry

    cfg = load_config(config)
    moment = parse_since(since)
    chosen = engine_from(cfg.project, engine, workers, ray_address)
    sharded = bool(data) or (moment is not None and (chosen.kind == "ray" or workers is not None))
    if sharded and last is not None:
        raise UsageError(
            "--last reads only the newest log files, in this process; judge a sharded "
            "window with --since (and/or --data) instead"
        )
    if sharded and metrics_port is not None:
        raise UsageError("--metrics-port re-checks the project's log; leave out --data")
    with require_registry(cfg) as registry:
        if metrics_port is not None:
            return _serve_gauges(cfg, registry, metrics_port, interval, version, last, since)
        # The project's log, read now: what the servers hold is written first (not --data).
        flushed = None if data else ask_to_flush(cfg, server)
        if sharded:
            from mooring.scale._drift import sharded_drift

            report = sharded_drift(
                cfg,
                registry,
                source=data or None,
                since=moment,
                version=version,
                engine=chosen,
                html=render_drift_html,
            )
        else:
            report = check_drift(
                cfg, registry, version=version, last=last, since=moment, html=render_drift_html
            )
    newest = report.window.get("end")
    if as_json:
        payload = report.to_dict()
        payload["files"] = report.files
        if flushed is not None:
            payload["log"] = flushed.to_dict(newest)
        print_json(payload)
    else:
        _print_report(report)
        if flushed is not None:
            _print_flushed(flushed, newest)
    return 1 if report.status == "drift" else 0


def _print_report(report: DriftReport) -> None:
    style = {"drift": "red", "ok": "green"}.get(report.status, "yellow")
    console.print(
        f"{report.model} v{report.version}: [{style}]{report.status}[/] on "
        f"{report.window['rows']:,} rows ({report.window['start']} → {report.window['end']})"
    )
    table = Table(
        "feature",
        "status",
        "psi",
        "js",
        "wasserstein/σ",
        "ks",
        "out-of-range/unseen",
        "floor / natural",
    )
    features = list(report.features)
    if report.prediction is not None:
        features += report.prediction.features
    for f in features:
        share = f.metrics.get("out_of_range_share", f.metrics.get("unseen_share"))
        colour = {"drift": "red", "ok": "green"}.get(f.status, "yellow")
        table.add_row(
            f.name,
            f"[{colour}]{f.status}[/]",
            _fmt(f.metrics.get("psi")),
            _fmt(f.metrics.get("jensen_shannon")),
            _fmt(f.metrics.get("wasserstein")),
            _fmt(f.metrics.get("ks")),
            _fmt(share),
            _bars(f),
        )
    console.print(table)
    _print_kinds(features)
    for f in features:
        if f.drifted:
            console.print(f"[red]{f.name}[/]: {'; '.join(f.reasons)}", soft_wrap=True)
    for segment in report.segments:
        if segment.status == "drift":
            console.print(
                f"[red]segment {segment.column}={segment.value}[/] ({segment.rows:,} rows): "
                f"{', '.join(segment.drifted)}",
                soft_wrap=True,
            )
    if report.prediction is not None and report.prediction.status == "unavailable":
        console.print(f"prediction drift unavailable: {report.prediction.note}", soft_wrap=True)
    _print_shift(report)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if report.files:
        console.print(f"report: {report.files['html']}")


#: Shifts beyond their noise that ``mooring drift`` names; the report lists every one.
SHOWN_SHIFTS = 5


def _print_shift(report: DriftReport) -> None:
    """What moved the predictions: the columns whose mean attribution moved most."""
    shift = report.attributions
    if shift is None:
        return
    if shift.note is not None:
        console.print(f"what moved the predictions: not explained: {shift.note}", soft_wrap=True)
        return
    moved = (
        ""
        if shift.moved is None
        else f" (mean {shift.output} moved {shift.moved:+.4g}; the shifts' absolute values "
        f"add up to {shift.absolute:.4g})"
    )
    beyond = shift.beyond_columns()
    within = [c for c, _ in shift.largest(len(shift.shifts)) if c not in beyond]
    parts = [
        f"{c} {shift.shifts.get(c) or 0:+.4g} (±{shift.noise.get(c) or 0:.2g})"
        for c in beyond[:SHOWN_SHIFTS]
    ]
    if len(beyond) > SHOWN_SHIFTS:
        parts.append(f"and {len(beyond) - SHOWN_SHIFTS} more (in the report)")
    measured = len(beyond) + len(within)
    console.print(
        f"what moved the predictions{moved}, by mean attribution over {shift.rows:,} rows "
        f"against the evaluation's ({shift.unit}): {len(beyond)} of {measured} columns beyond "
        "the noise of the rows drawn"
        + (": " + ", ".join(parts) if parts else "")
        + (f"; within their noise: {', '.join(within)}" if within else ""),
        soft_wrap=True,
    )


def _serve_gauges(
    cfg: MooringConfig,
    registry: Registry,
    port: int,
    interval: float,
    version: int | None,
    last: int | None,
    since: str | None,
) -> int:
    from prometheus_client import start_http_server

    from mooring.dashboard._drift_report import render_drift_html
    from mooring.errors import MooringError, NotFoundError
    from mooring.monitoring import check_drift
    from mooring.monitoring._feedback import live_metrics
    from mooring.monitoring._gauges import DriftGauges

    if interval <= 0:
        raise UsageError(f"--interval must be positive, got {interval}")
    gauges = DriftGauges()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=gauges.registry)
    console.print(f"drift gauges on http://127.0.0.1:{port}/metrics, every {interval:g} s")
    # SIGINT and SIGTERM end the loop between checks (a check in flight finishes first).
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                report = check_drift(
                    cfg,
                    registry,
                    version=version,
                    last=last,
                    since=parse_since(since),
                    html=render_drift_html,
                )
                gauges.update(report)
                console.print(f"{report.created_at}: {report.status} {report.drifted or ''}")
            except MooringError as exc:  # keep exporting; the next check may succeed
                console.print(f"[yellow]drift check failed:[/] {exc}", soft_wrap=True)
            try:
                live = live_metrics(
                    cfg, version=version, last=last, since=parse_since(since), registry=registry
                )
                gauges.update_live(live)
            except NotFoundError:
                pass  # no labels (or no log) yet: the live gauges wait for `mooring feedback`
            except MooringError as exc:
                console.print(f"[yellow]live metrics failed:[/] {exc}", soft_wrap=True)
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.shutdown()
        thread.join(timeout=5)
    return 0


@app.command("feedback", epilog="Example: mooring feedback labels.csv")
def feedback_command(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with request_id and label.")],
    config: ConfigOpt = Path("mooring.toml"),
    as_json: JsonOpt = False,
) -> None:
    """Ingest ground-truth labels keyed by request id (joined with the prediction log)."""
    from mooring.formats._feedback import FeedbackStore
    from mooring.monitoring._feedback import read_labels_file

    cfg = load_config(config)
    labels = _checked_labels(cfg, read_labels_file(file), str(file))
    url = cfg.monitoring.feedback_url or str(cfg.home / "feedback")
    count = FeedbackStore(url).write(cfg.project.name, labels)
    if as_json:
        print_json({"model": cfg.project.name, "accepted": count, "folder": url})
    else:
        console.print(f"{count:,} labels stored for {cfg.project.name} under {url}")


def _checked_labels(cfg: MooringConfig, labels: Labels, source: str) -> Labels:
    """``labels`` checked as the server's ``:feedback`` endpoint checks them: against the
    classes (or, for regression, the finite numbers) of the production version. Before
    the first deployment there is nothing to check against and they are kept as read.

    Raises:
        DataError: a label is not one the production model takes; the message names the
            row, the value and the classes.
    """
    from mooring.errors import DataError, InvalidRequestError
    from mooring.formats._model import read_metadata
    from mooring.pipeline._contracts import has_registry, production_of
    from mooring.registry import Registry
    from mooring.serving._feedback import label_domain

    name = cfg.project.name
    if not has_registry(cfg):
        return labels
    with Registry.from_config(cfg) as registry:
        version = production_of(registry, name)
        if version is None:
            return labels
        folder = registry.load(name, version=version)
    domain = label_domain(read_metadata(folder), f"production (version {version} of {name!r})")
    if domain is None:
        return labels
    # A file's labels arrive as stored text; a regression model's domain checks numbers,
    # so each is checked as the number it was written from (the endpoint gets JSON numbers).
    numbers = not domain.classes
    try:
        return [
            (
                rid,
                domain.check(
                    f"'{source}' row {row}: the label", _label_value(text) if numbers else text
                ),
            )
            for row, (rid, text) in enumerate(labels, start=1)
        ]
    except InvalidRequestError as exc:
        raise DataError(f"{exc}; fix or remove the row") from None


def _label_value(text: str) -> str | int | float:
    """The number a stored label ``text`` reads as (``"3"``, ``"2.5"``, ``"1e-3"``), else
    the text itself: a regression label from a file, whether its column held numbers or
    text (a CSV column with one non-number in it is read as text).

    >>> _label_value("3"), _label_value("2.5"), _label_value("high"), _label_value("true")
    (3, 2.5, 'high', 'true')
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text


@app.command("live", epilog="Example: mooring live --since 1d --json")
def live_command(
    config: ConfigOpt = Path("mooring.toml"),
    last: LastOpt = None,
    since: SinceOpt = None,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """Live metrics per version from label feedback joined with the prediction log, beside
    each version's performance estimated from its scores (before any label arrives)."""
    from mooring.cli._log_flush import ask_to_flush
    from mooring.monitoring._feedback import live_metrics

    cfg = load_config(config)
    flushed = ask_to_flush(cfg, server)
    live = live_metrics(
        cfg,
        version=version,
        last=last,
        since=parse_since(since),
        locate_unmatched=True,
        estimates=True,
    )
    newest = live.window.get("end")
    if as_json:
        print_json({**live.to_dict(), "log": flushed.to_dict(newest)})
        return
    counts = live.labels
    # Labels the window leaves out: their request is older (or another version's), or the
    # log never held its id (not sampled, or an id the server never answered).
    left_out = [
        f"{counts.get(key, 0):,} {what}"
        for key, what in (
            ("outside_window", "for requests logged outside this window (--last, --since)"),
            ("not_logged", "with a request id the log does not hold"),
            ("ambiguous", "on batch requests"),
        )
        if counts.get(key, 0)
    ]
    if counts["received"]:
        console.print(
            f"{live.model}: {counts['matched']:,} labelled predictions in "
            f"{live.window['rows']:,} logged rows ({counts['received']:,} labels"
            + (f"; not matched: {', '.join(left_out)})" if left_out else ")"),
            soft_wrap=True,
        )
    else:
        console.print(
            f"{live.model}: no labels yet, {live.window['rows']:,} logged rows; performance "
            "estimated from the scores (send labels with `mooring feedback FILE`)",
            soft_wrap=True,
        )
    for number in sorted({*live.estimates, *(q.version for q in live.versions)}):
        _print_version(live, number)
    _print_flushed(flushed, newest)


def _print_flushed(flushed: Flushed, newest: str | None) -> None:
    """What the read saw of the server's log: written before it, or how old it is."""
    style = "dim" if flushed.written and not flushed.failures else "yellow"
    console.print(f"[{style}]{escape(flushed.note(newest))}[/]", soft_wrap=True)


def _band(metric: EstimatedMetric | None, unreliable: str | None = None) -> tuple[str, str]:
    """An estimate and its band as the table shows them; an unreliable one shows no number
    (the JSON keeps it, marked)."""
    if metric is None:
        return "–", "–"
    if unreliable:
        return "unreliable", "–"
    return _fmt(metric.value), f"{metric.low:.4g}–{metric.high:.4g}"


def _print_version(live: LiveMetrics, number: int) -> None:
    """One version's live metrics beside their estimates (and the estimates' back-test),
    each beside the evaluation value it is read against."""
    from mooring.monitoring._estimate import not_estimated

    quality, estimated = live.version(number), live.estimates.get(number)
    if estimated is not None and estimated.refused is not None:
        console.print(f"v{number}: {not_estimated(estimated.refused)}", soft_wrap=True)
        estimated = None
    if quality is not None and quality.status != "ok":
        console.print(
            f"v{number}: insufficient data ({quality.rows} labelled rows, need {live.min_labels})"
        )
        quality = None
    if quality is None and estimated is None:
        return
    unreliable = None if estimated is None else estimated.unreliable
    if unreliable:
        console.print(
            f"[yellow]v{number}: estimate unreliable:[/] {escape(unreliable)}", soft_wrap=True
        )
    rows = estimated.rows if estimated is not None else 0
    title = f"v{number}" + (f", {rows:,} rows estimated" if estimated is not None else "")
    evaluation = live.evaluations.get(number, {})
    if quality is None:
        assert estimated is not None
        table = Table("metric", "estimated", "95% band", "evaluation", title=title)
        for name, guess in estimated.metrics.items():
            table.add_row(name, *_band(guess, unreliable), _fmt(evaluation.get(name)))
        console.print(table)
        return
    table = Table("metric", "live", "estimated", "95% band", "evaluation", "change", title=title)
    for name, value in quality.metrics.items():
        table.add_row(
            name,
            _fmt(value),
            *_band(None if estimated is None else estimated.metrics.get(name), unreliable),
            _fmt(quality.evaluation.get(name, evaluation.get(name))),
            _fmt(quality.change.get(name)),
        )
    console.print(table)
    if quality.estimated:
        held = [
            f"{name} {'within' if t['within'] else 'outside'}"
            for name, t in quality.estimated.items()
        ]
        console.print(
            f"  estimated on the {quality.rows:,} labelled rows, the live value falls: "
            + ", ".join(held),
            soft_wrap=True,
        )
