"""Follow the deployment record: poll, and hot-swap when it changes."""

from __future__ import annotations

import asyncio
import logging

from mooring.serving.models import ModelManager

__all__ = ["follow"]

log = logging.getLogger("mooring.serving")


async def follow(manager: ModelManager, interval_s: float) -> None:
    """Apply the deployment now, then every ``interval_s`` when its revision changed.

    A registry that cannot be reached is logged and retried; what is loaded keeps serving.
    """
    while True:
        was_ok = manager.source_error is None
        try:
            await manager.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if was_ok:  # once per outage, not once per poll
                log.warning(
                    "model %s: deployment not read (%s); serving what is loaded, retrying every "
                    "%g s",
                    manager.name,
                    exc,
                    interval_s,
                )
        await asyncio.sleep(interval_s)
