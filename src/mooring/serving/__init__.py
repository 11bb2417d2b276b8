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

# What type checkers see: _EXPORTS's names, each re-exported (``X as X``).
if TYPE_CHECKING:
    from mooring.serving._app import build_app as build_app
    from mooring.serving._app import create_app as create_app
    from mooring.serving._server import Server as Server
    from mooring.serving._sources import DirectorySource as DirectorySource
    from mooring.serving._sources import ModelSource as ModelSource
    from mooring.serving._sources import RegistrySource as RegistrySource

# The public names, declared once, and the module each comes from.
_EXPORTS = {
    "build_app": "mooring.serving._app",
    "create_app": "mooring.serving._app",
    "Server": "mooring.serving._server",
    "DirectorySource": "mooring.serving._sources",
    "ModelSource": "mooring.serving._sources",
    "RegistrySource": "mooring.serving._sources",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
