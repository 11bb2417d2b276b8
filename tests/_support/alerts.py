"""An alert sink for tests: it keeps every alert it receives."""

from __future__ import annotations

from mooring.monitoring._alerts import Alert

__all__ = ["Collect"]


class Collect:
    """An alert sink that keeps what it receives."""

    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> bool:
        self.alerts.append(alert)
        return True
