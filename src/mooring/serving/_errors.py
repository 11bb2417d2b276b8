"""The errors a client or an operator can cause while serving (defined in :mod:`mooring.errors`).

Each carries its HTTP status, so the server maps every error to a status in one place
and the body always names the field and the fix.
"""

from __future__ import annotations

from mooring.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    ModelLoadError,
    ModelUnavailableError,
    OverloadedError,
    PayloadTooLargeError,
    UnauthorizedError,
)

__all__ = [
    "DeadlineExceededError",
    "InvalidRequestError",
    "ModelLoadError",
    "ModelUnavailableError",
    "OverloadedError",
    "PayloadTooLargeError",
    "UnauthorizedError",
]
