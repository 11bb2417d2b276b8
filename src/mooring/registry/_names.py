"""Validation of model names, aliases and version numbers.

Names travel into artifact paths, URLs and SQL rows, so they are checked once,
here, with messages that name the value and the fix.

Examples:
    >>> check_model_name("income")
    'income'
    >>> check_model_name("../x")
    Traceback (most recent call last):
    ...
    mooring.errors.UsageError: model name '../x' is not allowed: ...
"""

from __future__ import annotations

import re

from mooring.errors import UsageError

__all__ = [
    "MANAGED_ALIASES",
    "RESERVED_ALIASES",
    "check_alias",
    "check_model_name",
    "check_version",
]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

#: Aliases moved only by ``deploy``/``promote``/``rollback`` so they always agree
#: with the deployment record.
MANAGED_ALIASES = frozenset({"production", "canary"})
#: ``latest`` is virtual: the newest version that is not archived.
RESERVED_ALIASES = MANAGED_ALIASES | {"latest"}


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`UsageError`."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise UsageError(
            f"model name {name!r} is not allowed: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit, without '..' or '/' (it becomes part of artifact "
            "paths and URLs); e.g. 'income' or 'churn-v2'"
        )
    return name


def check_alias(alias: object, *, allow_reserved: bool = True) -> str:
    """Return ``alias`` if valid. With ``allow_reserved=False``, managed names are refused."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise UsageError(
            f"alias {alias!r} is not allowed: use 1-64 letters, digits, '_' or '-', starting "
            "with a letter (so it cannot be mistaken for a version number); e.g. 'champion'"
        )
    if not allow_reserved and alias in RESERVED_ALIASES:
        hint = (
            "it is virtual (the newest non-archived version)"
            if alias == "latest"
            else "it follows the deployment record; use deploy/promote/rollback to move it"
        )
        raise UsageError(f"alias {alias!r} cannot be set directly: {hint}")
    return alias


def check_version(version: object) -> int:
    """Return ``version`` if it is a positive integer, else raise :class:`UsageError`."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(
            f"version {version!r} is not valid: versions are integers starting at 1; "
            "list them with `mooring models list NAME`"
        )
    return version
