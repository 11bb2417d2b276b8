"""One error hierarchy for everything a user can cause.

Every error a user can act on is a :class:`MooringError`. Its message says what
was received, what was expected, and how to fix it, so the CLI can print it in
one line and the server can return it as a 4xx JSON body. Each class carries the
process exit code and the HTTP status it maps to, in one place.

Examples:
    >>> raise ConfigError("[model] key 'epochs': expected an integer >= 1, got 0; set 10")
    Traceback (most recent call last):
    ...
    mooring.errors.ConfigError: [model] key 'epochs': expected an integer >= 1, got 0; set 10
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = [
    "ChecksFailedError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DeadlineExceededError",
    "ForbiddenError",
    "IntegrityError",
    "InvalidRequestError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelUnavailableError",
    "MooringError",
    "NoRegistryError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PeerLostError",
    "RegistryUnavailableError",
    "SchemaError",
    "UnauthorizedError",
    "UsageError",
]


class MooringError(Exception):
    """Base class of every error a user can cause and fix.

    Attributes:
        exit_code: the CLI's exit status for this error (2: usage or configuration,
            1: a check failed).
        http_status: the status the server answers with.
    """

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MooringError):
    """A command or function was called with arguments that cannot work."""


class ConfigError(MooringError):
    """mooring.toml (or an equivalent mapping) is invalid: unknown key, wrong type, bad value."""


class MissingExtraError(ConfigError):
    """A setting needs an optional extra that is not installed (``pip install 'mooring-ml[X]'``)."""


class DataError(MooringError):
    """A data file cannot be read as tabular data: not a CSV, wrong delimiter, mixed types."""


class SchemaError(MooringError):
    """A schema file is malformed or does not fit the data it is applied to."""


class NotFoundError(MooringError):
    """A file, model, version or alias that was named does not exist."""

    http_status = 404


class NoRegistryError(NotFoundError):
    """A read asked of a project whose registry was never created (before the first run)."""


class ChecksFailedError(MooringError):
    """A check that guards the pipeline failed (error-level anomalies, a gate)."""

    exit_code = 1
    http_status = 422


class ConflictError(MooringError):
    """The request conflicts with the registry's state (e.g. deleting the production version)."""

    http_status = 409


class IntegrityError(ChecksFailedError):
    """A stored artifact or the audit log no longer matches its recorded hashes."""


class PeerLostError(MooringError):
    """A worker of a data-parallel training job lost a peer (it died or was stopped).

    Every worker must start again to go on from the last checkpoint; the launcher does
    that itself, and a Kubernetes Job replaces its pods.
    """

    exit_code = 1


class RegistryUnavailableError(MooringError):
    """The registry database or artifact store cannot be reached or opened."""

    http_status = 503


class InvalidRequestError(MooringError):
    """A served request does not fit the model's inputs (field, type, rank, length)."""


class PayloadTooLargeError(MooringError):
    """A request body is larger than ``[serving] body_limit_bytes``."""

    http_status = 413


class UnsupportedMediaTypeError(InvalidRequestError):
    """The body is not of the content type the endpoint takes."""

    http_status = 415


class UnauthorizedError(MooringError):
    """An admin endpoint was called without the right bearer token."""

    http_status = 401


class ForbiddenError(MooringError):
    """An authenticated caller asked for what its credential does not allow (an admin
    token of one person declaring another as the actor)."""

    http_status = 403


class OverloadedError(MooringError):
    """The server's queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailableError(MooringError):
    """No version of the model is loaded and warmed yet."""

    http_status = 503


class DeadlineExceededError(MooringError):
    """A request's deadline passed before its result was ready.

    ``shed``: it passed before the request reached the model (queued behind others, or
    read too late): load the server shed, not an error of the version that would have
    answered. The server counts such a 504 under version ``-``, as it counts a 503.
    """

    http_status = 504

    def __init__(self, message: str, *, shed: bool = False) -> None:
        super().__init__(message)
        self.shed = shed


class ModelLoadError(MooringError):
    """A version could not be loaded or warmed up; the previous one keeps serving."""

    http_status = 503


def has_extra(module: str) -> bool:
    """Whether ``module``, which an optional extra installs, can be imported (without
    importing it): for what mooring does only when the extra is there.

    >>> has_extra("json"), has_extra("no_such_module_here")
    (True, False)
    """
    return importlib.util.find_spec(module) is not None


def import_extra(module: str, *, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, which the optional extra ``extra`` installs; when it is missing,
    a :class:`MissingExtraError` names what needs it and the ``pip install`` that adds it.

    Only the module's own absence is turned into the error: a module that is installed
    but fails inside its import raises as itself.

    >>> import_extra("json", extra="none", needed_for="an example").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != top:
            raise
        raise MissingExtraError(
            f"{needed_for} needs the {extra!r} extra, which is not installed "
            f"(no module {exc.name!r}): pip install 'mooring-ml[{extra}]'"
        ) from None
