"""Where the monitor keeps its state, and small atomic JSON helpers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from mooring.config import MooringConfig
from mooring.formats._files import atomic_write

__all__ = ["estimate_file", "monitoring_dir", "read_json", "write_json"]

log = logging.getLogger("mooring.monitoring")


def monitoring_dir(cfg: MooringConfig) -> Path:
    """``<home>/monitoring/<model>``: the monitor's state, records and reports."""
    return cfg.home / "monitoring" / cfg.project.name


def estimate_file(home: Path, model: str) -> Path:
    """The monitor's last estimate of production's quality before labels (and how many
    windows in a row it stayed worse than its evaluation value)."""
    return home / "monitoring" / model / "estimated.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing or unreadable (logged, never raised)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.error("ignoring unreadable state file %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON atomically (temporary file + rename)."""
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    return atomic_write(path, payload)
