"""Who registers what, with which versions: actors, package versions, JSON-only metadata."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

from mooring.errors import UsageError
from mooring.formats._lineage import VERSIONED_PACKAGES, Lineage
from mooring.registry._manifest import canonical_json
from mooring.registry._records import ModelVersion

__all__ = [
    "VERSIONED_PACKAGES",
    "check_artifact_name",
    "default_actor",
    "package_version",
    "plain_json",
    "stamped_lineage",
    "warn_on_other_versions",
]


_ARTIFACT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_artifact_name(artifact: str) -> str:
    """An attached artifact's name, checked.

    Raises:
        UsageError: not lower-case letters, digits, '_', '.', '-' (at most 64).
    """
    if not isinstance(artifact, str) or not _ARTIFACT_NAME.fullmatch(artifact):
        raise UsageError(
            f"artifact name {artifact!r} is not valid; use lower-case letters, digits, "
            "'_', '.', '-' (at most 64 characters), e.g. 'tflite-int8'"
        )
    return artifact


def default_actor() -> str:
    """Who is acting: ``$MOORING_ACTOR``, else the login name."""
    actor = os.environ.get("MOORING_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


#: The distribution a package is installed from, where the names differ: mooring's is
#: ``mooring-ml`` (``mooring`` on the package index is another project).
DISTRIBUTIONS = {"mooring": "mooring-ml"}


def package_version(package: str) -> str | None:
    """The installed version of ``package`` (None when it is not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(package, package))
    except importlib.metadata.PackageNotFoundError:
        return None


def plain_json(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    """Copy a mapping and prove it is JSON (so the database and the hash chain can hold it)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{field} must be a mapping (dict), got {type(value).__name__}")
    try:
        canonical_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{field} is not JSON-serializable ({exc}); pass plain str/int/float/bool/list/dict "
            "values (convert numpy scalars with float())"
        ) from None
    data: dict[str, Any] = json.loads(canonical_json(dict(value)))
    return data


def warn_on_other_versions(mv: ModelVersion) -> None:
    """Warn when the TensorFlow or Keras that loads ``mv`` is not the one that exported it."""
    for package, recorded in mv.lineage.package_versions.items():
        if package == "mooring":
            continue
        installed = package_version(package)
        if recorded and installed and recorded != installed:
            warnings.warn(
                f"{mv.ref} was exported with {package} {recorded} and is loaded with "
                f"{installed}; results may differ",
                stacklevel=3,
            )


def stamped_lineage(lineage: Lineage, statistics: dict[str, Any] | None) -> Lineage:
    """``lineage`` with the installed package versions and the statistics' hash filled in
    where the caller did not record them."""
    installed = {package: package_version(package) for package in VERSIONED_PACKAGES}
    if statistics is None:
        return lineage.stamped(installed, "")
    return lineage.stamped(
        installed, hashlib.sha256(canonical_json(statistics).encode()).hexdigest()
    )
