"""The serving layer: TF Serving's REST API and the Open Inference Protocol over one batcher.

The names below are imported on first use (PEP 562): ``import mooring.serving._workers``
in the supervisor of ``mooring serve --workers N`` then costs nothing of the server
(Starlette, SQLAlchemy, pyarrow: about half a second before its workers could start).

Examples:
    >>> from mooring.serving import Server, create_app
    >>> Server(create_app(load_config("mooring.toml")), port=8501).run()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mooring._exports import exports_on_first_use

if TYPE_CHECKING:
    from mooring.serving._app import build_app, create_app
    from mooring.serving._server import Server
    from mooring.serving._sources import DirectorySource, ModelSource, RegistrySource

# Each public name and the module it comes from.
_EXPORTS = {
    "DirectorySource": "mooring.serving._sources",
    "ModelSource": "mooring.serving._sources",
    "RegistrySource": "mooring.serving._sources",
    "build_app": "mooring.serving._app",
    "Server": "mooring.serving._server",
    "create_app": "mooring.serving._app",
}

__all__ = [
    "DirectorySource",
    "ModelSource",
    "RegistrySource",
    "Server",
    "build_app",
    "create_app",
]


__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
