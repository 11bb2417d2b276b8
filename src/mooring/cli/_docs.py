"""``mooring docs``: the documentation site built into the package, served on 127.0.0.1.

``make docs`` builds the MkDocs site into ``src/mooring/_site/`` and the wheel carries it,
so a pip user reads the pages of the version installed, offline: Mermaid is bundled
(``docs/assets/vendor/mermaid/``), the theme loads no web fonts, and search runs in the
browser from the site's own index. A site opened from disk breaks both navigation (a
folder URL shows a directory listing) and search (a worker is refused on ``file://``),
hence a server: the standard library's, threaded, answering only files under the site's
folder.

Example::

    $ mooring docs
    mooring documentation on http://127.0.0.1:8000/ (Ctrl+C to stop)
"""

from __future__ import annotations

import contextlib
import errno
import os
import socketserver
import sys
import webbrowser
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

import typer

from mooring.cli._app import app
from mooring.cli._common import console
from mooring.errors import NotFoundError, UsageError

__all__ = ["DEFAULT_PORT", "DocsServer", "packaged_site", "serve_site"]

#: The port the README's links name (``http://127.0.0.1:8000/<page>/``): keep it.
DEFAULT_PORT = 8000
#: The only address served on: the pages are for the reader at this machine.
HOST = "127.0.0.1"
#: Another built site to serve instead of the package's (the tests' own build); not an
#: option, so the command's help shows none.
SITE_ENV = "MOORING_DOCS_SITE"

# Types a browser insists on (a module worker, a stylesheet, fonts), whatever the
# machine's mime.types says.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".txt": "text/plain; charset=utf-8",
}


def packaged_site() -> Path:
    """The built site's folder: the package's ``mooring/_site`` (or ``$MOORING_DOCS_SITE``).

    Raises:
        NotFoundError: no site is built there (a checkout before ``make docs``).

    Example::

        >>> (packaged_site() / "index.html").is_file()  # doctest: +SKIP
        True
    """
    given = os.environ.get(SITE_ENV)
    if given:
        folder = Path(given)
    else:
        with resources.as_file(resources.files("mooring").joinpath("_site")) as found:
            folder = Path(found)
    if not (folder / "index.html").is_file():
        raise NotFoundError(
            "the documentation site is not built into this copy of mooring (a source "
            "checkout); run `make docs` in the checkout to build it into src/mooring/_site, "
            "or install the package (pip install mooring-ml), which carries it"
        )
    return folder


class _SiteHandler(SimpleHTTPRequestHandler):
    """Files of the site folder only: a folder URL answers its ``index.html``, a folder
    without one, a missing file and anything outside the folder (``..``, encoded or not,
    a link leading out) answer the site's 404 page; no listing, no path of the machine."""

    server: DocsServer
    extensions_map = {  # noqa: RUF012 (the base's own, extended)
        **SimpleHTTPRequestHandler.extensions_map,
        **_TYPES,
    }

    def send_head(self) -> BinaryIO | None:
        target = self._target()
        if target is None:
            return self._not_found()
        if target.is_dir():
            parts = urlsplit(self.path)
            if not parts.path.endswith("/"):
                # /how-to/gates → /how-to/gates/, so the page's relative links resolve.
                location = urlunsplit(("", "", parts.path + "/", parts.query, ""))
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            target = target / "index.html"
            if not target.is_file():
                return self._not_found()
        try:
            body = target.open("rb")
        except OSError:
            return self._not_found()
        self._head(HTTPStatus.OK, self.guess_type(str(target)), os.fstat(body.fileno()).st_size)
        return body

    def _target(self) -> Path | None:
        """The file or folder the request names, if it is inside the site's folder."""
        root = self.server.root
        try:
            # The base class unquotes (%2e%2e is ..) and drops every `..` and `.` word.
            path = Path(os.path.realpath(self.translate_path(self.path)))
        except (ValueError, OSError):  # a NUL byte, an undecodable name
            return None
        if path != root and root not in path.parents:
            return None  # a link inside the site that leads out of it
        return path if path.exists() else None

    def _not_found(self) -> BinaryIO | None:
        page = self.server.root / "404.html"
        if not page.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "no such page in the documentation")
            return None
        body = page.open("rb")
        self._head(HTTPStatus.NOT_FOUND, _TYPES[".html"], os.fstat(body.fileno()).st_size)
        return body

    def _head(self, status: HTTPStatus, kind: str, size: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(size))
        # The site changes with the installed version: the browser asks again each time.
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the documentation is read with GET")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815 (the base's names)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal keeps the address line, not one line per file."""


class DocsServer(ThreadingHTTPServer):
    """The site's server on ``HOST``: one thread per connection, stopped with ``shutdown``.

    Example::

        >>> server = serve_site(packaged_site(), port=0)  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'http://127.0.0.1:40123/'
    """

    daemon_threads = True

    def __init__(self, root: Path, port: int) -> None:
        self.root = Path(os.path.realpath(root))
        super().__init__((HOST, port), _SiteHandler)

    def server_bind(self) -> None:
        # HTTPServer's own looks up the host's name, which can wait on a resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        _SiteHandler(request, client_address, self, directory=str(self.root))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_port}/"


def serve_site(root: Path, port: int = DEFAULT_PORT) -> DocsServer:
    """A server of the site at ``root``, listening on 127.0.0.1:``port`` (0: a free one).

    Raises:
        UsageError: the port is taken or cannot be listened on, naming it and ``--port``.
    """
    try:
        return DocsServer(root, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {HOST} is in use (another `mooring docs`, or another "
                "server); pass --port N with a free port, or stop the other one"
            ) from None
        raise UsageError(
            f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; pass --port N with a "
            "port between 1024 and 65535"
        ) from None


@app.command(
    "docs",
    epilog="Examples: mooring docs | mooring docs --open | mooring docs --port 8001",
)
def docs(
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="Port to listen on, on 127.0.0.1 (0: a free one)."
        ),
    ] = DEFAULT_PORT,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the site in the default web browser.")
    ] = False,
) -> None:
    """Serve this version's documentation on 127.0.0.1, offline (Ctrl+C to stop).

    The site is built into the package: pages, diagrams and search need no network.
    Example: mooring docs --open (then browse http://127.0.0.1:8000/).
    """
    server = serve_site(packaged_site(), port)
    with server:
        console.print(f"mooring documentation on {server.url} (Ctrl+C to stop)", soft_wrap=True)
        sys.stdout.flush()
        if open_browser and not webbrowser.open(server.url):
            console.print(f"no web browser found here: open {server.url} in one", soft_wrap=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: the way to stop it
            server.serve_forever()
