"""Who acts on the admin API: the person a bearer token maps to, or the name a caller declares.

``[serving] admin_tokens`` maps the sha256 (hex) of a token to the person it belongs to, so
mooring.toml holds no secret: a request whose bearer token hashes to one of them acts as that
person, and a body that declares another ``actor`` is refused (403) rather than recorded
under the wrong name. The shared ``admin_token`` authenticates no one: with it, the actor is
the name the body declares, as ``--actor`` on the command line is. Both the server's
``/admin`` endpoints and the dashboard's ``/ui/api`` actions ask :func:`admin_caller` and
:func:`acting`.

Examples:
    >>> tokens = {token_digest("s3cret-of-alice"): "alice"}
    >>> admin_caller("Bearer s3cret-of-alice", None, tokens).person
    'alice'
    >>> acting(Caller("alice"), "Alice", "mooring-ui")
    'alice (mooring-ui)'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from mooring.errors import ForbiddenError, UnauthorizedError
from mooring.registry._approval import person, same_person

__all__ = ["Caller", "acting", "admin_caller", "token_digest"]


def token_digest(token: str) -> str:
    """The sha256 (hex) of a token, as ``[serving] admin_tokens`` names it.

    >>> token_digest("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who presented an admin request's token: ``person`` when the token is one of
    ``admin_tokens`` (authenticated), ``None`` for the shared ``admin_token``."""

    person: str | None = None


def admin_caller(authorization: str, shared: str | None, tokens: Mapping[str, str]) -> Caller:
    """The caller an ``Authorization`` header names; every comparison constant-time.

    Raises:
        UnauthorizedError: no bearer token, or one that is neither ``shared`` nor any of
            ``tokens``' (by its sha256).
    """
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        digest = token_digest(value).encode()
        found = None
        for known, who in tokens.items():
            if hmac.compare_digest(digest, known.lower().encode()):
                found = who
        if found is not None:
            return Caller(found)
        if shared is not None and hmac.compare_digest(value.encode(), shared.encode()):
            return Caller()
    raise UnauthorizedError("admin endpoints need 'Authorization: Bearer <token>'")


def acting(caller: Caller, declared: str | None, channel: str) -> str:
    """The actor an admin request is recorded as: the token's person when it maps to one
    (``declared`` may repeat that name, in any letters case), else the declared name; with
    the ``channel`` it came through (``NAME (channel)``), or the channel alone.

    Raises:
        ForbiddenError: the token is one person's and the body declares another.
    """
    name = (declared or "").strip() or None
    if caller.person is not None:
        if name is not None and not same_person(name, caller.person):
            raise ForbiddenError(
                f"actor: the request declares {name!r}, but its token is "
                f"{person(caller.person)!r}'s ([serving] admin_tokens); a token acts only for "
                "its own person: leave actor out, or send the declared person's own token"
            )
        name = person(caller.person)
    return channel if name is None else f"{name} ({channel})"
