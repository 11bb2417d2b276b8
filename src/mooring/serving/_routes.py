"""The shape of the server's route table: an endpoint, a prediction's match, and the table.

A :class:`RouteSpec` is one endpoint: Starlette's path pattern and methods, the protocol
it is counted under, its handler (the callable itself) and its URL grammar (what the
path after the pattern's one parameter names, parsed once per request and handed to the
handler). A prediction (``POST /v1/models/…:predict``, ``:classify``, ``:regress``,
``POST /v2/…/infer``) is treated apart: the door admits it (counts it against
``max_in_flight``), reads it itself when it is plain (the fast path), and the app
dispatches it before Starlette's router otherwise. The road is decided once: the door
matches the request's URL (:meth:`Routes.door`) as its headers end, and the
:class:`Match` travels with the request to its handler, in the fast path's request or
in the ASGI scope (:data:`ROUTE`); only a request that came through another server is
matched again, by the app (:meth:`Routes.prediction`). The server's table,
``mooring.serving._endpoints.ROUTES``, is built where its handlers are.

Examples:
    >>> spec = RouteSpec("/v2/{rest:path}", ("POST",), "v2", handler=len, predicts=("/infer",))
    >>> routes = Routes((spec,))
    >>> routes.prediction("POST", "/v2/models/m/infer").rest
    'models/m/infer'
    >>> routes.door(b"POST", b"/v2/models/m%2Fx/infer?a=1").path
    '/v2/models/m/x/infer'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["NO_ROUTES", "ROUTE", "Match", "RouteSpec", "Routes"]

#: Scope key holding the door's :class:`Match` of a request (None: not a prediction).
ROUTE = "mooring.route"


def _whole(rest: str, method: str) -> str:
    """The grammar of a route that reads its parameter as it is."""
    return rest


@dataclass(frozen=True)
class RouteSpec:
    """One endpoint: Starlette's path pattern and methods, the protocol it is counted
    under (metrics, traces, the access log), its handler, its URL grammar and the path
    endings that make a ``POST`` under its prefix a prediction (admitted, read by the door).

    ``handler`` is called as ``handler(endpoints, ctx, grammar(rest, method))`` inside the
    endpoints' guard (``guarded``), or as ``handler(endpoints, request)`` by Starlette
    alone (health, metrics: not counted as requests); ``rest`` is the value of the
    pattern's one parameter (``""`` without one).
    """

    path: str
    methods: tuple[str, ...]
    protocol: str
    handler: Callable[..., Any]
    grammar: Callable[[str, str], Any] = _whole
    predicts: tuple[str, ...] = ()
    guarded: bool = True

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


class Routes:
    """A route table: its endpoints in the order Starlette tries them, and which of them
    take predictions."""

    __slots__ = ("_predicting", "specs")

    def __init__(self, specs: Sequence[RouteSpec]) -> None:
        self.specs = tuple(specs)
        # (prefix, endings, route) of the routes that take predictions.
        self._predicting = tuple((r.prefix, r.predicts, r) for r in self.specs if r.predicts)

    def __iter__(self) -> Any:
        return iter(self.specs)

    def prediction(self, method: str, path: str) -> Match | None:
        """The prediction route a request takes, or None when it is not a prediction;
        ``path`` is the URL's path without its query string."""
        if method == "POST":
            for prefix, endings, route in self._predicting:
                if path.endswith(endings) and path.startswith(prefix) and len(path) > len(prefix):
                    return Match(route, path, path[len(prefix) :])
        return None

    def door(self, method: bytes, url: bytes) -> Match | None:
        """:meth:`prediction` on the raw method and URL the door parses: the path without
        its query, percent-decoded as the ASGI scope's is, so every spelling of a route
        is admitted and answered as the app routes it."""
        if method != b"POST":
            return None
        if b"?" in url:
            url = url.split(b"?", 1)[0]
        path = url.decode("latin-1")
        return self.prediction("POST", unquote(path) if "%" in path else path)


#: A table without routes: nothing is a prediction (a door serving another app).
NO_ROUTES = Routes(())
