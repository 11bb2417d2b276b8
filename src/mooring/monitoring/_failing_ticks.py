"""The monitor's parts whose ticks fail in a row: counted in the rollout state file, alerted.

A check inside a monitor tick that raises (the rollout's own, drift, shadow…) is no
verdict on the canary and must not stop the loop: :class:`FailingTicks` counts it under
its part in the ``failures`` of the rollout state file, with a ``monitor_failed`` ticket
each time (the alert cooldown keeps it from repeating) and a ``monitor_held`` page once
the rollout's own tick has failed ``[rollout] max_failed_ticks`` times in a row, since
the rollout can then neither advance nor roll back. A tick that succeeds clears its part.

Examples:
    >>> failing = FailingTicks(cfg, state_path, alerts, time.time)  # doctest: +SKIP
    >>> failing.failed("drift", KeyError("x")).headline[:35]  # doctest: +SKIP
    'the monitor failed 1 tick since 12:'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mooring.config import MooringConfig
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._rollout_state import TickFailures
from mooring.monitoring._state import read_json, write_json

__all__ = ["FailingTicks"]

log = logging.getLogger("mooring.monitoring")


class FailingTicks:
    """The failing parts of one model's monitor, kept in its rollout state file ``path``.

    ``cfg`` is read at each failure (a monitor that reads ``[rollout]`` again changes
    ``max_failed_ticks`` in it).
    """

    def __init__(
        self, cfg: MooringConfig, path: Path, alerts: AlertManager, clock: Callable[[], float]
    ) -> None:
        self.cfg = cfg
        self.path = path
        self.alerts = alerts
        self.clock = clock

    def records(self) -> dict[str, TickFailures]:
        """The parts failing now (``rollout``, ``drift``…), from the state file."""
        out = {}
        raw = (read_json(self.path) or {}).get("failures")
        for part, record in (raw or {}).items() if isinstance(raw, dict) else ():
            try:
                out[str(part)] = TickFailures.from_dict(record)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ignoring malformed failure record %r in %s: %s", part, self.path, exc)
        return out

    def failed(self, part: str, exc: BaseException) -> TickFailures:
        """Record a tick of ``part`` that raised: count it, keep the error, alert."""
        now = self.clock()
        name = self.cfg.project.name
        error = f"{type(exc).__name__}: {exc}".strip()
        error = " ".join(error.split())[:500]
        records = self.records()
        previous = records.get(part)
        record = TickFailures(
            consecutive=1 if previous is None else previous.consecutive + 1,
            first_at=now if previous is None else previous.first_at,
            last_at=now,
            error=error,
            where=part,
            limit=self.cfg.rollout.max_failed_ticks,
        )
        records[part] = record
        self._save(records)
        log.error(
            "monitor %s tick failed (%d in a row): %s",
            part,
            record.consecutive,
            error,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        held = record.held
        self.alerts.send(
            Alert(
                model=name,
                version=None,
                kind="monitor_held" if held else "monitor_failed",
                severity="page" if held else "ticket",
                summary=f"{name}: {record.headline}",
                details=record.to_dict(),
            )
        )
        return record

    def succeeded(self, part: str) -> None:
        """A tick of ``part`` went through: clear its failures (logged when there were any)."""
        records = self.records()
        gone = records.pop(part, None)
        if gone is None:
            return
        log.info(
            "monitor %s tick succeeded again after %d failure(s) in a row", part, gone.consecutive
        )
        self._save(records)

    def _save(self, records: dict[str, TickFailures]) -> None:
        data = read_json(self.path) or {}
        data["model"] = self.cfg.project.name
        data["failures"] = {part: r.to_dict() for part, r in records.items()}
        write_json(self.path, data)
