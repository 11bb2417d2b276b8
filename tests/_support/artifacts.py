"""Breaking a stored version's artifact on purpose, as a disk error or a hand edit would."""

from __future__ import annotations

from mooring.registry import Registry


def tamper(registry: Registry, name: str, version: int, file: str = "mooring.json") -> None:
    """Append a byte to one stored file of a version (local store): it then fails verification."""
    stored = registry.artifacts.local_path(registry.get(name, version=version).artifact_key)
    with (stored / file).open("ab") as handle:
        handle.write(b" ")
