"""The project's data contract: one reviewed file every new file is held to, changed only
by an audited accept.

The contract is ``contract/schema.yaml`` beside mooring.toml (or the file ``[contract]
schema`` names). The first ``mooring run`` writes it, from production's contract when a
production version exists, else inferred from the training data, and records its
adoption in the registry's audit log. From then on every run validates its training data
against it, so a dropped, renamed or retyped column stops the run before anything
trains. A change is made with :func:`accept` (``mooring schema accept FILE -r REASON``):
the new file is written, and its diff from the old one, the reason and the actor go to
the audit log; a file edited without an accept stops the next run.

:func:`reference` is what ``mooring validate FILE`` checks against: production's
contract (what the served model reads), else the project's file.

Examples:
    >>> cfg = load_config("mooring.toml")  # doctest: +SKIP
    >>> reference(cfg).source  # doctest: +SKIP
    'production v3 of income'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.contract._diff import SchemaDiff, diff_schemas
from mooring.contract._schema import Schema
from mooring.errors import ChecksFailedError, NoRegistryError, NotFoundError, UsageError
from mooring.registry import ModelVersion, Registry

__all__ = [
    "CONTRACT_FILE",
    "NoRegistryError",
    "Reference",
    "accept",
    "adopt",
    "check_reviewed",
    "contract_path",
    "has_registry",
    "open_registry",
    "production_of",
    "project_contract",
    "reference",
    "require_registry",
    "version_contract",
]

#: Where a project's contract lives, relative to mooring.toml, unless [contract] schema says.
CONTRACT_FILE = "contract/schema.yaml"
ADOPTED, ACCEPTED = "contract_adopted", "contract_accepted"


@dataclass(frozen=True)
class Reference:
    """A contract to check data against, where it came from, and the columns its model
    reads (``None``: every column counts as read)."""

    schema: Schema
    source: str
    reads: frozenset[str] | None = None


def contract_path(config: MooringConfig) -> Path:
    """The project's contract file: ``[contract] schema``, else ``contract/schema.yaml``."""
    return config.path(config.contract.schema_file or CONTRACT_FILE)


def project_contract(config: MooringConfig) -> Schema | None:
    """The project's contract file as written (no ``[contract]`` overrides), or ``None``
    before the first run wrote one. A configured ``[contract] schema`` must exist."""
    path = contract_path(config)
    if not path.is_file() and config.contract.schema_file is None:
        return None
    return Schema.load(path)


def has_registry(config: MooringConfig) -> bool:
    """Whether the project's registry exists (a server URL, or the SQLite file)."""
    return config.project.registry is not None or (config.home / "registry.db").is_file()


def production_of(registry: Registry, name: str) -> int | None:
    """The model's production version; ``None`` before its first registration, also in a
    registry that exists but holds no version of it yet (another model's, or opened by
    ``mooring models list`` before the first run)."""
    try:
        return registry.deployment(name).production
    except NotFoundError:
        return None


def require_registry(config: MooringConfig) -> Registry:
    """The project's registry; a command that reads it before the first run is told so,
    and leaves the project without one.

    Raises:
        NoRegistryError: the project's SQLite registry does not exist yet.
    """
    if not has_registry(config):
        raise NoRegistryError(
            f"nothing is in the registry yet: the project {config.project.name!r} has none "
            f"({config.home / 'registry.db'}); `mooring run` or `mooring models import` "
            "creates it with the first version"
        )
    return Registry.from_config(config)


def open_registry(config: MooringConfig) -> Registry | None:
    """The project's registry when it exists (never created by a read-only check)."""
    return Registry.from_config(config) if has_registry(config) else None


def version_contract(mv: ModelVersion) -> Reference:
    """The contract a registered version was trained under, and the columns it reads."""
    stored = mv.record.run.schema
    if stored is None:
        raise NotFoundError(
            f"{mv.ref} records no data contract (it was registered without a run record); "
            "check against a schema file with --schema instead"
        )
    schema = Schema.from_dict(stored, source=f"{mv.ref} contract")
    inputs = mv.record.inputs
    return Reference(schema, f"v{mv.version} of {mv.name}", frozenset(inputs) if inputs else None)


def _version(registry: Registry, name: str, which: str) -> ModelVersion:
    text = which.removeprefix("v")
    if text.isdigit():
        return registry.get(name, version=int(text))
    return registry.get(name, alias=which)


def reference(
    config: MooringConfig, *, against: str | None = None, registry: Registry | None = None
) -> Reference:
    """What a new file of this project is checked against.

    ``against`` names a version (``3``, ``v3``, or an alias such as ``production``,
    ``canary``). Without it: production's contract when the project has a production
    version, else the project's contract file.

    Raises:
        NotFoundError: no version, no production and no contract file yet.
    """
    owned = registry is None
    registry = registry if registry is not None else open_registry(config)
    try:
        if against is not None:
            if registry is None:
                raise NotFoundError(
                    f"--against {against}: the project has no registry yet; run `mooring run` "
                    "first, or check against a file with --schema"
                )
            return version_contract(_version(registry, config.project.name, against))
        if registry is not None:
            production = production_of(registry, config.project.name)
            if production is not None:
                found = version_contract(registry.get(config.project.name, version=production))
                return Reference(found.schema, "production " + found.source, found.reads)
    finally:
        if owned and registry is not None:
            registry.close()
    schema = project_contract(config)
    if schema is None:
        raise NotFoundError(
            f"the project has no contract yet ({contract_path(config)} does not exist); "
            "`mooring run` writes it from the training data, or pass --schema FILE"
        )
    rel = _relative(contract_path(config), config)
    return Reference(schema.with_overrides(config.contract), rel)


def _relative(path: Path, config: MooringConfig) -> str:
    base = config.path(".")
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _accepted(registry: Registry, name: str) -> Mapping[str, Any] | None:
    events = registry.contract_events(name)
    return events[-1].after if events else None


def check_reviewed(config: MooringConfig, registry: Registry, schema: Schema | None) -> None:
    """Refuse a contract file that differs from the last one adopted or accepted, or that
    is gone although one was.

    Raises:
        ChecksFailedError: the file was edited or removed without ``mooring schema accept``.
    """
    accepted = _accepted(registry, config.project.name)
    rel = _relative(contract_path(config), config)
    if accepted is None:
        return
    if schema is None:
        raise ChecksFailedError(
            f"{rel} does not exist, but the project accepted a contract (fingerprint "
            f"{str(accepted.get('fingerprint'))[:12]}); restore the file from version "
            f"control, or accept a new one with `mooring schema accept FILE -r REASON`"
        )
    if accepted.get("fingerprint") == schema.fingerprint():
        return
    raise ChecksFailedError(
        f"{rel} changed since it was last accepted (its fingerprint "
        f"{schema.fingerprint()[:12]} is not the accepted {str(accepted.get('fingerprint'))[:12]})"
        f"; review the change with `mooring schema diff production {rel}` and record it with "
        f"`mooring schema accept {rel} -r REASON`, or restore the file"
    )


def adopt(config: MooringConfig, registry: Registry, schema: Schema, *, source: str) -> Path | None:
    """Write ``schema`` as the project's contract if it has none, and audit the adoption.

    Returns the path written, or ``None`` when the project already had a contract (an
    existing file with no audit event is adopted as it is).
    """
    path = contract_path(config)
    written = None
    if not path.is_file():
        schema.save(path)
        written = path
    if _accepted(registry, config.project.name) is None:
        registry.record_contract(
            config.project.name,
            action=ADOPTED,
            before=None,
            after=_summary(schema, path, config),
            reason=f"first contract of the project, from {source}",
        )
    return written


def accept(
    config: MooringConfig,
    registry: Registry,
    new: Schema,
    *,
    reason: str,
    actor: str | None = None,
) -> SchemaDiff:
    """Make ``new`` the project's contract: write it, audit the diff from the old one.

    The diff is taken from the project's current contract file, else production's.
    The audit event is written before the file, so a file never changes unaudited.

    Raises:
        UsageError: no reason, or ``new`` equals the current contract.
    """
    if not (reason or "").strip():
        raise UsageError(
            "accepting a new data contract needs a reason: pass -r/--reason TEXT, e.g. "
            "-r 'workclass dropped upstream (ticket 123)'"
        )
    path = contract_path(config)
    old = project_contract(config)
    before_name = _relative(path, config)
    if old is None:
        production = production_of(registry, config.project.name)
        if production is not None:
            found = version_contract(registry.get(config.project.name, version=production))
            old, before_name = found.schema, "production " + found.source
    diff = (
        diff_schemas(old, new, before_name=before_name, after_name="the new contract")
        if old is not None
        else SchemaDiff(before="nothing", after="the new contract")
    )
    if old is not None and old.fingerprint() == new.fingerprint():
        raise UsageError(
            f"the new contract is the same as {before_name} (fingerprint "
            f"{new.fingerprint()[:12]}); nothing to accept"
        )
    registry.record_contract(
        config.project.name,
        action=ACCEPTED,
        before=_summary(old, path, config) if old is not None else None,
        after={**_summary(new, path, config), "changes": [c.to_dict() for c in diff.changes]},
        reason=reason,
        actor=actor,
    )
    new.save(path)
    return diff


def _summary(schema: Schema, path: Path, config: MooringConfig) -> dict[str, Any]:
    return {
        "fingerprint": schema.fingerprint(),
        "path": _relative(path, config),
        "columns": len(schema.columns),
    }
