"""How a registry command finds the registry: its options and :func:`open_registry`,
shared by ``mooring models …`` (:mod:`mooring.cli._models`) and ``mooring audit …``
(:mod:`mooring.cli._audit`).

The registry comes from ``--registry``/``--artifacts`` (or the ``MOORING_REGISTRY``/
``MOORING_ARTIFACTS`` environment variables), else from the project file (``--config``,
default ``mooring.toml``).

Example:
    >>> with open_registry("sqlite:///:memory:", None, None) as reg:  # doctest: +SKIP
    ...     reg.list_models()
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mooring.cli._common import console, print_json
from mooring.config import MooringConfig, load_config
from mooring.errors import UsageError
from mooring.registry import Registry
from mooring.registry._approval import ReleaseRules
from mooring.registry._audit import key_file
from mooring.registry._signing import Signatures
from mooring.registry._webhooks import deliver_after_writes

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="MOORING_REGISTRY",
        help="Registry database URL (default: from the project file).",
    ),
]
ArtifactsOpt = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        envvar="MOORING_ARTIFACTS",
        help="Artifact store folder or URL (default: from the project file).",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project file naming the registry (default mooring.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (recorded in the audit log).")
]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who acts (default: $MOORING_ACTOR or the login name)."),
]
NameArg = Annotated[str, typer.Argument(help="Model name.")]
VersionArg = Annotated[int, typer.Argument(help="Version number.")]


def open_registry(
    registry: str | None, artifacts: str | None, config: Path | None, *, create: bool = False
) -> Registry:
    """The registry named on the command line, by environment, or by the project file.

    ``--registry`` (or ``MOORING_REGISTRY``) names the database only: with a project file
    (``--config``, or ``mooring.toml`` here) the audit key still comes from it. Only a
    command that registers (``create``: ``models import``) creates the project's registry;
    the others leave a project that has none as it is.

    Raises:
        NoRegistryError: the project's SQLite registry does not exist and ``create`` is off.
    """
    path = config or Path("mooring.toml")
    if registry:
        project = load_config(path) if config is not None or path.is_file() else None
        return open_by_url(registry, artifacts, project)
    if config is None and not path.is_file():
        raise UsageError(
            f"no registry given and no mooring.toml in {Path.cwd()}; pass --registry URL "
            "(e.g. sqlite:///.mooring/registry.db) or --config path/to/mooring.toml"
        )
    from mooring.pipeline._contracts import require_registry

    cfg = load_config(path)
    if artifacts:
        cfg.project.artifacts = artifacts
    return Registry.from_config(cfg) if create else require_registry(cfg)


def open_or_say_none(
    registry: str | None, artifacts: str | None, config: Path | None, as_json: bool, none: str
) -> Registry | None:
    """The registry for a listing, or ``None`` once the empty listing is printed (a project
    with no registry yet lists nothing, and is left without one)."""
    from mooring.errors import NoRegistryError

    try:
        return open_registry(registry, artifacts, config)
    except NoRegistryError as exc:
        if as_json:
            print_json([])
        else:
            console.print(f"{none}: {exc}")
        return None


def open_by_url(url: str, artifacts: str | None, project: MooringConfig | None) -> Registry:
    """The registry at ``url`` (artifacts as given, else next to a SQLite file), with the
    audit key file of ``project`` when there is one: a URL changes the database, not the key."""
    key_at = None if project is None else key_file(project)
    opened = Registry.open(url, artifacts=artifacts, audit_key_file=key_at)
    if project is not None:
        opened.release = ReleaseRules.from_config(project.registry, project.rollout.steps[0])
        deliver_after_writes(opened, project)
        opened.signatures = Signatures.from_config(project)
    return opened
