"""Errors a client or an operator can cause while serving, each with its HTTP status.

They subclass :class:`~mooring.errors.MooringError`, so one table maps every
error to a status and the body always names the field and the fix.
"""

from __future__ import annotations

from mooring.errors import MooringError

__all__ = [
    "DeadlineExceededError",
    "InvalidRequestError",
    "ModelLoadError",
    "ModelUnavailableError",
    "OverloadedError",
    "PayloadTooLargeError",
    "UnauthorizedError",
]


class InvalidRequestError(MooringError):
    """A request does not fit the model's inputs (field, type, rank, length)."""

    http_status = 400


class PayloadTooLargeError(MooringError):
    """The request body is larger than ``[serving] body_limit_bytes``."""

    http_status = 413


class UnauthorizedError(MooringError):
    """An admin endpoint was called without the right bearer token."""

    http_status = 401


class OverloadedError(MooringError):
    """The model's queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailableError(MooringError):
    """No version of the model is loaded and warmed yet."""

    http_status = 503


class DeadlineExceededError(MooringError):
    """The request's deadline passed before its result was ready."""

    http_status = 504


class ModelLoadError(MooringError):
    """A version could not be loaded, verified or warmed up; the previous one keeps serving."""

    http_status = 503
