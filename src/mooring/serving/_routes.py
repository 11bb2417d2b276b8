"""The server's one route table: every HTTP endpoint, and which of them are predictions.

A prediction (``POST /v1/models/…:predict``, ``:classify``, ``:regress``,
``POST /v2/…/infer``) is treated apart at four places: the door admits it (counts it
against ``max_in_flight``), the door reads it itself when it is plain (the fast path),
the app dispatches it before Starlette's router (the ASGI shortcut), and Starlette's
router serves it otherwise. All four read :data:`ROUTES` through :func:`prediction`, so
they cannot disagree on what a prediction is.

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
from urllib.parse import unquote_to_bytes

__all__ = ["ROUTES", "Match", "RouteSpec", "is_prediction", "is_prediction_path", "prediction"]


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
    """A prediction's route and the path after its prefix (the handler's ``rest``).

    A plain class with slots: one is made per prediction, and a frozen dataclass costs
    three times as much to build.
    """

    __slots__ = ("rest", "route")

    def __init__(self, route: RouteSpec, rest: str) -> None:
        self.route = route
        self.rest = rest


#: Every endpoint, in the order Starlette tries them (the feedback route before the TF
#: Serving catch-all under the same prefix).
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("/v1/models/{name}:feedback", ("POST",), "feedback", "feedback"),
    RouteSpec(
        "/v1/models/{rest:path}",
        ("GET", "POST"),
        "tfserving",
        "tfserving",
        predicts=(":predict", ":classify", ":regress"),
    ),
    RouteSpec("/v2/{rest:path}", ("GET", "POST"), "v2", "v2", predicts=("/infer",)),
    RouteSpec("/v2", ("GET",), "v2", "v2"),
    RouteSpec("/metrics", ("GET",), "metrics", "metrics"),
    RouteSpec("/healthz", ("GET",), "health", "health"),
    RouteSpec("/admin/{action}", ("GET", "POST"), "admin", "admin"),
)

# (prefix, endings, route) of the routes that take predictions, and the same as bytes for
# the door, which sees the method and path before anything is decoded.
_PREDICTING = tuple((r.prefix, r.predicts, r) for r in ROUTES if r.predicts)
_PREDICTING_BYTES = tuple(
    (prefix.encode(), tuple(e.encode() for e in endings)) for prefix, endings, _ in _PREDICTING
)


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
                return Match(route, path[len(prefix) :])
    return None


def is_prediction_path(path: str) -> bool:
    """Whether a ``POST`` to ``path`` is a prediction (:func:`prediction` without a match).

    Examples:
        >>> is_prediction_path("/v1/models/m:regress"), is_prediction_path("/metrics")
        (True, False)
    """
    for prefix, endings, _ in _PREDICTING:
        if path.endswith(endings) and path.startswith(prefix) and len(path) > len(prefix):
            return True
    return False


def is_prediction(method: bytes, url: bytes) -> bool:
    """:func:`prediction` on the raw method and URL the door parses (a query string allowed).

    Examples:
        >>> is_prediction(b"POST", b"/v2/models/m/infer?x=1"), is_prediction(b"POST", b"/infer")
        (True, False)
        >>> is_prediction(b"POST", b"/v1/models/m%3Apredict")
        True
    """
    if method != b"POST":
        return False
    if b"?" in url:
        url = url.split(b"?", 1)[0]
    if b"%" in url:  # every spelling of a route is admitted as the app will route it
        url = unquote_to_bytes(url)
    for prefix, endings in _PREDICTING_BYTES:
        if url.endswith(endings) and url.startswith(prefix) and len(url) > len(prefix):
            return True
    return False
