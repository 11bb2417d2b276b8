"""Small artifact folders laid out like exported models, the records registered with them,
and breaking a stored artifact on purpose, as a disk error or a hand edit would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mooring.registry import Registry


def make_model_dir(root: Path, seed: int = 0, *, extra: dict[str, bytes] | None = None) -> Path:
    """A small real artifact folder laid out like an exported SavedModel."""
    folder = root / f"model-{seed}"
    (folder / "variables").mkdir(parents=True)
    (folder / "assets").mkdir()
    rng = bytes((seed * 31 + i * 7) % 256 for i in range(4096))
    (folder / "saved_model.pb").write_bytes(b"pb" + rng)
    (folder / "variables" / "variables.index").write_bytes(b"idx" + rng[:100])
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(rng * 4)
    (folder / "mooring.json").write_text(json.dumps({"name": "income", "seed": seed}))
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


BLESSED: dict[str, Any] = {
    "blessed": True,
    "gates": [{"name": "auc", "value": 0.91, "bound": 0.88, "passed": True}],
}
NOT_BLESSED: dict[str, Any] = {
    "blessed": False,
    "gates": [{"name": "auc", "value": 0.81, "bound": 0.88, "passed": False}],
}
# A change gate with no production model to compare with: skipped, and why.
SKIPPED_GATE: dict[str, Any] = {
    "name": "auc change: diff >= -0.005",
    "metric": "auc",
    "kind": "change",
    "value": 0.91,
    "passed": True,
    "skipped": True,
    "message": "skipped: first model — there is no production model to compare with",
}
# What `decide` records when no gate judged ([evaluation] default_gates = false, no gates).
UNGATED: dict[str, Any] = {
    "blessed": False,
    "gates": [],
    "warnings": ["ungated: no gate judged this model"],
    "defaults": False,
    "ungated": True,
}
# A record written before the "ungated" key: every gate skipped, so ungated all the same.
SKIPPED_ONLY: dict[str, Any] = {
    "blessed": False,
    "gates": [{"name": "auc change", "value": 0.9, "bound": {}, "passed": True, "skipped": True}],
}
LINEAGE: dict[str, Any] = {
    "data_fingerprint": "a" * 64,
    "schema_hash": "b" * 64,
    "feature_spec_hash": "c" * 64,
    "code_version": "0123abc",
}


def tamper(registry: Registry, name: str, version: int, file: str = "mooring.json") -> None:
    """Append a byte to one stored file of a version (local store): it then fails verification."""
    stored = registry.artifacts.local_path(registry.get(name, version=version).artifact_key)
    with (stored / file).open("ab") as handle:
        handle.write(b" ")
