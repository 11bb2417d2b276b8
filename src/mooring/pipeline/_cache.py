"""The step cache: one JSON file per (step, fingerprint of its inputs).

``<home>/pipeline/cache/<step>/<key>.json`` holds the step's outputs and which run
produced them. Entries are written atomically; a missing or unreadable entry is a
miss, never an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from mooring.formats._files import atomic_write
from mooring.pipeline._record import now_iso

__all__ = ["StepCache"]


class StepCache:
    """Outputs of completed steps, by step name and input fingerprint.

    Examples:
        >>> import tempfile
        >>> cache = StepCache(Path(tempfile.mkdtemp()))
        >>> cache.put("train", "ab12", {"model_dir": "m"}, run_id="r1")
        >>> cache.get("train", "ab12")["outputs"]
        {'model_dir': 'm'}
    """

    def __init__(self, root: Path, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled

    def _path(self, step: str, key: str) -> Path:
        return self.root / step / f"{key}.json"

    def get(self, step: str, key: str) -> dict[str, Any] | None:
        """The entry ``{"outputs", "run_id", "created_at", ...}``, or ``None``."""
        if not self.enabled:
            return None
        try:
            entry = orjson.loads(self._path(step, key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return entry if isinstance(entry, dict) and "outputs" in entry else None

    def put(self, step: str, key: str, outputs: dict[str, Any], **extra: Any) -> None:
        """Store a step's outputs (also when caching is off, so a later run can use them)."""
        entry = {"step": step, "key": key, "created_at": now_iso(), **extra, "outputs": outputs}
        atomic_write(
            self._path(step, key),
            orjson.dumps(entry, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY),
        )
