"""The server's one route table: every HTTP endpoint, and which of them are predictions.

A prediction (``POST /v1/models/…:predict``, ``:classify``, ``:regress``,
``POST /v2/…/infer``) is treated apart: the door admits it (counts it against
``max_in_flight``), reads it itself when it is plain (the fast path), and the app
dispatches it before Starlette's router otherwise. The road is decided once: the door
matches the request's URL (:func:`door_route`) as its headers end, and the
:class:`Match` travels with the request to its handler, in the fast path's request or
in the ASGI scope (:data:`ROUTE`); only a request that came through another server is
matched again, by the app (:func:`prediction`).

Examples:
    >>> prediction("POST", "/v1/models/income:classify").rest
    'income:classify'
    >>> prediction("POST", "/v1/models/income:feedback") is None
    True
    >>> [r.path for r in ROUTES if r.predicts]
    ['/v1/models/{rest:path}', '/v2/{rest:path}']
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["ROUTE", "ROUTES", "Match", "RouteSpec", "door_route", "prediction"]

#: Scope key holding the door's :class:`Match` of a request (None: not a prediction).
ROUTE = "mooring.route"


@dataclass(frozen=True)
class RouteSpec:
    """One endpoint: Starlette's path pattern and methods, the protocol it speaks, the name
    of its handler on :class:`~mooring.serving._endpoints.Endpoints`, and the path endings
    that make a ``POST`` under its prefix a prediction (admitted, read by the door)."""

    path: str
    methods: tuple[str, ...]
    protocol: str
    handler: str
    predicts: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """The path before its first parameter (``/v2/`` for ``/v2/{rest:path}``)."""
        return self.path.split("{", 1)[0]


class Match:
    """A prediction's route, its path (percent-decoded, as the ASGI scope has it) and the
    path after the route's prefix (the handler's ``rest``).

    A plain class with slots: one is made per prediction, and a frozen dataclass costs
    three times as much to build.
    """

    __slots__ = ("path", "rest", "route")

    def __init__(self, route: RouteSpec, path: str, rest: str) -> None:
        self.route = route
        self.path = path
        self.rest = rest


#: Every endpoint, in the order Starlette tries them (the feedback route before the TF
#: Serving catch-all under the same prefix, the OpenAPI document before the v2 one).
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("/v1/models/{name}:feedback", ("POST",), "feedback", "feedback"),
    RouteSpec(
        "/v1/models/{rest:path}",
        ("GET", "POST"),
        "tfserving",
        "tfserving",
        predicts=(":predict", ":classify", ":regress"),
    ),
    # The OpenAPI document of the v2 endpoints, before the v2 catch-all that would take it.
    RouteSpec("/v2/openapi.json", ("GET",), "openapi", "openapi"),
    RouteSpec("/v2/{rest:path}", ("GET", "POST"), "v2", "v2", predicts=("/infer",)),
    RouteSpec("/v2", ("GET",), "v2", "v2"),
    RouteSpec("/metrics", ("GET",), "metrics", "metrics"),
    RouteSpec("/healthz", ("GET",), "health", "health"),
    RouteSpec("/admin/{action}", ("GET", "POST"), "admin", "admin"),
)

# (prefix, endings, route) of the routes that take predictions.
_PREDICTING = tuple((r.prefix, r.predicts, r) for r in ROUTES if r.predicts)


def prediction(method: str, path: str) -> Match | None:
    """The prediction route a request takes, or None when it is not a prediction.

    ``path`` is the URL's path without its query string.

    Examples:
        >>> prediction("POST", "/v2/models/m/versions/2/infer").route.protocol
        'v2'
        >>> prediction("GET", "/v1/models/m:predict") is None
        True
    """
    if method == "POST":
        for prefix, endings, route in _PREDICTING:
            if path.endswith(endings) and path.startswith(prefix) and len(path) > len(prefix):
                return Match(route, path, path[len(prefix) :])
    return None


def door_route(method: bytes, url: bytes) -> Match | None:
    """:func:`prediction` on the raw method and URL the door parses: the path without its
    query, percent-decoded as the ASGI scope's is, so every spelling of a route is
    admitted and answered as the app routes it.

    Examples:
        >>> door_route(b"POST", b"/v2/models/m/infer?x=1").rest, door_route(b"POST", b"/infer")
        ('models/m/infer', None)
        >>> door_route(b"POST", b"/v1/models/m%3Apredict").path
        '/v1/models/m:predict'
    """
    if method != b"POST":
        return None
    if b"?" in url:
        url = url.split(b"?", 1)[0]
    path = url.decode("latin-1")
    return prediction("POST", unquote(path) if "%" in path else path)
