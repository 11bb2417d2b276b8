"""The options every sharded command shares: ``--engine``, ``--workers``, ``--ray-address``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mooring.config._data import ProjectConfig
    from mooring.scale._engine import Engine

EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where shards are processed: local (this machine's cores) or ray (a Ray cluster). "
        "Default: \\[project] engine, else local.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Processes (local) or concurrent tasks (ray). Default: \\[project] engine_workers, "
        "else the usable cores (local) or the cluster's CPUs (ray).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster to join, e.g. 127.0.0.1:6379 or auto. Default: \\[project] "
        "ray_address, else RAY_ADDRESS, else a private Ray on this machine.",
    ),
]


def engine_from(
    project: ProjectConfig | None, engine: str | None, workers: int | None, address: str | None
) -> Engine:
    """The engine the options and the project's ``[project]`` keys choose."""
    from mooring.scale._engine import Engine

    return Engine.from_config(project, kind=engine, workers=workers, address=address)
