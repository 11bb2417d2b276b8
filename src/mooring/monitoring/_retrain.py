"""The retraining trigger: drift, a drop in the live metric or, before labels, in the
estimated metric starts a configured command.

The default command is the pipeline on fresh data,
``python -m mooring.pipeline --config {config} --train-data {data}``: the candidate it trains
goes through the same gates as any other and, when it passes, enters as a canary at the
first rollout step, never straight to production. Any command can be configured
(``[monitoring.retrain] command``); placeholders ``{config}``, ``{data}``, ``{model}``,
``{version}``, ``{home}`` and ``{reason}`` are filled in, each argument on its own
(no shell is involved, so a value cannot inject another command).

At most one run at a time, and none within ``cooldown`` of the previous start (also
across monitor restarts). Each run leaves a record under
``<home>/monitoring/<model>/retrain/``: ``<UTC time>.json`` (trigger, command, start,
end, exit code, output tail) and ``latest.json``.

Examples:
    >>> trigger = RetrainTrigger(cfg, config_path=Path("mooring.toml"))  # doctest: +SKIP
    >>> run = trigger.fire("drift", "age drifted (psi 0.41)", version=3)  # doctest: +SKIP
    >>> run.wait().exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.errors import ConfigError
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._estimate import EstimatedMetric
from mooring.monitoring._state import monitoring_dir, read_json, write_json
from mooring.monitoring._summary import drift_headline

__all__ = ["DEFAULT_COMMAND", "RetrainRun", "RetrainTrigger", "render_command"]

log = logging.getLogger("mooring.monitoring")

#: The pipeline on fresh data; ``{python}`` is the running interpreter.
DEFAULT_COMMAND = (
    "{python}",
    "-m",
    "mooring.pipeline",
    "--config",
    "{config}",
    "--train-data",
    "{data}",
)
_TAIL = 4000


def render_command(template: list[str] | tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """Fill ``{name}`` placeholders in each argument (``{{`` for a literal brace).

    Raises:
        ConfigError: an argument names a placeholder that does not exist.

    Examples:
        >>> render_command(["train.sh", "--data={data}"], {"data": "fresh.csv"})
        ['train.sh', '--data=fresh.csv']
    """
    out = []
    for arg in template:
        try:
            out.append(arg.format_map(values))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"[monitoring.retrain] command argument {arg!r} has an unknown placeholder "
                f"({exc}); use {', '.join('{' + k + '}' for k in sorted(values))} or "
                "double the braces for a literal one"
            ) from None
    return out


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%S%fZ")


@dataclass
class RetrainRun:
    """One run of the retraining command: why, what, and (once finished) how it went."""

    trigger: str
    reason: str
    version: int | None
    command: list[str]
    started_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    output_tail: str = ""
    timed_out: bool = False
    record: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once the command has ended (or failed to start)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> RetrainRun:
        """Block until the run ends (or ``timeout`` seconds); return self."""
        self._done.wait(timeout)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (the record's content)."""
        return {
            "trigger": self.trigger,
            "reason": self.reason,
            "version": self.version,
            "command": list(self.command),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "output_tail": self.output_tail,
            "timed_out": self.timed_out,
            "record": self.record,
        }


class RetrainTrigger:
    """Decide whether a signal starts retraining, and run the command in the background.

    Args:
        cfg: the project; ``[monitoring.retrain]`` holds the switch, command and cooldown.
        config_path: the project file, for ``{config}``; default ``<root>/mooring.toml``.
        alerts: told when a run starts and when one fails.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        cfg: MooringConfig,
        *,
        config_path: Path | None = None,
        alerts: AlertManager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.section = cfg.monitoring.retrain
        self.config_path = config_path or cfg.root / "mooring.toml"
        self.alerts = alerts
        self.clock = clock
        self.folder = monitoring_dir(cfg) / "retrain"
        self._lock = threading.Lock()
        self.current: RetrainRun | None = None

    # -- when ------------------------------------------------------------------------
    def last_started(self) -> float | None:
        """Start time of the previous run (from ``latest.json``), None when none ran."""
        latest = read_json(self.folder / "latest.json")
        if not latest or not latest.get("started_at"):
            return None
        try:
            return datetime.fromisoformat(str(latest["started_at"])).timestamp()
        except ValueError:
            return None

    def blocked(self) -> str | None:
        """Why a trigger would not start a run now (None when it would)."""
        if not self.section.enabled:
            return "retraining is off ([monitoring.retrain] enabled = false)"
        if self.current is not None and not self.current.finished:
            return f"a run started at {self.current.started_at} is still going"
        last = self.last_started()
        if last is not None and self.clock() - last < self.section.cooldown:
            left = self.section.cooldown - (self.clock() - last)
            return f"cooling down for {left:.0f}s more (cooldown {self.section.cooldown:g}s)"
        return None

    def on_drift(self, report: Any) -> RetrainRun | None:
        """Start a run when a drift report (``status == 'drift'``) says so and drift triggers."""
        if not self.section.on_drift or getattr(report, "status", None) != "drift":
            return None
        drifted = list(getattr(report, "drifted", []) or [])
        reason = "drift in " + (drift_headline(drifted, shown=10) or "the served traffic")
        return self.fire("drift", reason, version=getattr(report, "version", None))

    def on_live_metric(
        self, *, version: int | None, live: float | None, reference: float | None, labels: int
    ) -> RetrainRun | None:
        """Start a run when the live metric fell ``metric_drop`` below its evaluation value."""
        drop = self.section.metric_drop
        if drop is None or live is None or reference is None or labels < self.section.min_labels:
            return None
        fell = reference - live
        if fell <= drop:
            return None
        reason = (
            f"live {self.section.metric} {live:.4f} over {labels} labels is {fell:.4f} below "
            f"its evaluation value {reference:.4f} (threshold {drop:g})"
        )
        return self.fire("live_metric", reason, version=version)

    def on_estimate(
        self,
        *,
        version: int | None,
        estimate: EstimatedMetric | None,
        reference: float | None,
        rows: int,
        windows: int,
    ) -> RetrainRun | None:
        """Start a run when the metric estimated before labels has been worse than its
        evaluation value, beyond ``metric_drop``, in ``estimated_windows`` windows in a row
        (``windows``: how many so far, counted by the monitor)."""
        needed = self.section.estimated_windows
        if needed is None or windows < needed or estimate is None or reference is None:
            return None
        reason = (
            f"estimated {self.section.metric} {estimate.value:.4f} (band {estimate.low:.4f}–"
            f"{estimate.high:.4f}) over {rows} rows, before labels, worse than its "
            f"evaluation value {reference:.4f} by more than {self.section.metric_drop:g} in "
            f"{windows} windows in a row"
        )
        return self.fire("estimated", reason, version=version)

    # -- what ------------------------------------------------------------------------
    def command(self, *, version: int | None, reason: str) -> list[str]:
        """The command for one run, placeholders filled in."""
        data = self.section.data
        template = self.section.command or list(DEFAULT_COMMAND)
        if self.section.command is None and data is None:
            raise ConfigError(
                "[monitoring.retrain] data is not set; the default command trains on it. "
                "Set data = 'fresh.csv' or command = [...]"
            )
        values = {
            "python": sys.executable,
            "config": str(self.config_path),
            "data": str(self.cfg.path(data)) if data is not None else "",
            "model": self.cfg.project.name,
            "version": "" if version is None else str(version),
            "home": str(self.cfg.home),
            "reason": reason,
        }
        return render_command(template, values)

    def fire(self, trigger: str, reason: str, *, version: int | None = None) -> RetrainRun | None:
        """Start the command in the background unless off, running or cooling down.

        Returns the run (``run.wait()`` blocks until it ends), or None when nothing started.
        """
        with self._lock:
            why_not = self.blocked()
            if why_not is not None:
                log.info("retraining not started (%s: %s): %s", trigger, reason, why_not)
                return None
            command = self.command(version=version, reason=reason)
            now = self.clock()
            run = RetrainRun(
                trigger=trigger,
                reason=reason,
                version=version,
                command=command,
                started_at=datetime.fromtimestamp(now, UTC).isoformat(),
            )
            run.record = str(self.folder / f"{_stamp(now)}.json")
            self._write(run)
            self.current = run
        log.warning("retraining started (%s): %s: %s", trigger, reason, " ".join(command))
        if self.alerts is not None:
            self.alerts.send(
                Alert(
                    model=self.cfg.project.name,
                    version=version,
                    kind="retrain",
                    severity="ticket",
                    summary=f"{self.cfg.project.name}: retraining started ({trigger}): {reason}",
                    details={"command": command, "record": run.record},
                )
            )
        thread = threading.Thread(
            target=self._run, args=(run,), name="mooring-retrain", daemon=True
        )
        thread.start()
        return run

    def _run(self, run: RetrainRun) -> None:
        try:
            process = subprocess.Popen(
                run.command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cfg.root,
            )
        except OSError as exc:
            run.exit_code = 127
            run.output_tail = f"could not start {run.command[0]!r}: {exc}"
        else:
            try:
                output, _ = process.communicate(timeout=self.section.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                run.timed_out = True
            run.exit_code = process.returncode
            run.output_tail = output.decode("utf-8", errors="replace")[-_TAIL:]
        run.finished_at = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        self._write(run)
        run._done.set()
        ok = run.exit_code == 0 and not run.timed_out
        log.log(
            logging.INFO if ok else logging.ERROR,
            "retraining finished with exit code %s%s",
            run.exit_code,
            " (timed out)" if run.timed_out else "",
        )
        if not ok and self.alerts is not None:
            self.alerts.send(
                Alert(
                    model=self.cfg.project.name,
                    version=run.version,
                    kind="retrain_failed",
                    severity="ticket",
                    summary=f"{self.cfg.project.name}: retraining exited with {run.exit_code}"
                    + (" (timed out)" if run.timed_out else ""),
                    details=run.to_dict(),
                )
            )

    def _write(self, run: RetrainRun) -> None:
        data = run.to_dict()
        try:
            if run.record is not None:
                write_json(Path(run.record), data)
            write_json(self.folder / "latest.json", data)
        except OSError as exc:
            log.error("retraining record not written: %s", exc)
