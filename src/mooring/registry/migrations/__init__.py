"""Alembic migrations of the registry schema, run programmatically when a registry is opened.

``HEAD`` names the newest revision; opening a registry already at ``HEAD``
skips Alembic entirely.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD", "LOCATION"]

HEAD = "0004"
LOCATION = Path(__file__).parent
