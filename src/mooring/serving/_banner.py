"""What ``mooring serve`` says once it listens: its URLs, and what each model serves.

One process prints it when the server listens and every model has settled (loaded, or
not ready for a reason); with ``--workers N`` the supervisor prints it once, when every
worker listens, from the deployment records and the workers' ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.serving._state import ServerState

__all__ = ["Served", "Where", "banner_lines", "from_health", "from_state"]

log = logging.getLogger("mooring.serve")


@dataclass(frozen=True)
class Where:
    """Where the server listens, and what it serves besides predictions."""

    host: str
    port: int
    grpc_port: int | None = None
    dashboard: bool = False
    workers: int = 1
    box: str | None = None  # the operating system's box, "box on: ..." or "box off: why"

    def address(self, port: int) -> str:
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    @property
    def base(self) -> str:
        return f"http://{self.address(self.port)}"


@dataclass(frozen=True)
class Served:
    """One served model: what answers for it, or why nothing does."""

    name: str
    config: Path  # its project's mooring.toml, for the command that deploys a version
    production: int | None = None
    canary: int | None = None
    weight: int = 0
    problem: str | None = None  # why no version answers; None: one does
    deployed: bool = True  # False: the deployment record names no production version


def banner_lines(where: Where, models: Sequence[Served]) -> list[str]:
    """The lines, e.g. ``mooring serve: listening on http://127.0.0.1:8501``, the gRPC
    address, the dashboard's URL and a line per model.

    >>> banner_lines(Where("127.0.0.1", 8501), [Served("income", Path("m.toml"), deployed=False)])
    ... # doctest: +NORMALIZE_WHITESPACE
    ['mooring serve: listening on http://127.0.0.1:8501 (REST: TF Serving /v1, Open Inference /v2)',
     "  no version of 'income' is deployed yet: run `mooring run -c m.toml`
     (or `mooring models deploy income --production VERSION`)"]
    """
    workers = f", {where.workers} workers" if where.workers > 1 else ""
    lines = [
        f"mooring serve: listening on {where.base} (REST: TF Serving /v1, Open Inference /v2"
        f"{workers})"
    ]
    if where.grpc_port is not None:
        lines.append(
            f"  gRPC       {where.address(where.grpc_port)} "
            "(TF Serving PredictionService, Open Inference Protocol)"
        )
    if where.dashboard:
        lines.append(f"  dashboard  {where.base}/ui/")
    if where.box is not None:
        lines.append(f"  {where.box}")
    for model in models:
        lines.append("  " + _model_line(where, model))
    return lines


def _model_line(where: Where, model: Served) -> str:
    if not model.deployed:
        return (
            f"no version of {model.name!r} is deployed yet: run `mooring run -c {model.config}` "
            f"(or `mooring models deploy {model.name} --production VERSION`)"
        )
    if model.problem is not None or model.production is None:
        return f"model {model.name!r} is not ready: {model.problem or 'nothing loaded'}"
    canary = f", canary {model.canary} at {model.weight}%" if model.canary is not None else ""
    return (
        f"model {model.name!r}: production version {model.production}{canary} loaded; "
        f"POST {where.base}/v1/models/{model.name}:predict"
    )


def announce(lines: Sequence[str]) -> None:
    for line in lines:
        log.info("%s", line)


async def from_state(state: ServerState, configs: dict[str, Path], default: Path) -> list[Served]:
    """What one server process's models serve (its managers, once settled)."""
    served = []
    for manager in state.managers.values():
        why = manager.why_not_ready()
        # Not deployed: the record names no production, or the model is not registered.
        deployed = why is None or manager.wanted is not None
        if why is not None and manager.revision is None:
            deployed = await asyncio.to_thread(_registered, manager.source.deployment)
        served.append(
            Served(
                manager.name,
                configs.get(manager.name, default),
                production=manager.production,
                canary=manager.canary,
                weight=manager.weight,
                problem=None if why is None else str(why.get("reason")),
                deployed=deployed,
            )
        )
    return served


def _registered(deployment: Callable[[], Any]) -> bool:
    """False when the registry says the model is not in it; True otherwise (an outage
    included: the reason the server gives says what is wrong)."""
    from mooring.errors import NotFoundError

    try:
        deployment()
    except NotFoundError:
        return False
    except Exception:
        return True
    return True


def from_health(
    where: Where,
    projects: Sequence[tuple[MooringConfig, Path]],
    *,
    models: Sequence[str],
    all_models: bool,
    model_dir: Path | None,
) -> list[Served]:
    """What the workers of ``mooring serve --workers N`` serve: each model's deployment
    record, and whether the server says it is ready (``/healthz``). ``projects``: the
    served projects' configurations and files, the first one's registry holding
    ``models`` (default: its own model; ``all_models``: every one with a production)."""
    from mooring.errors import NotFoundError
    from mooring.registry import Deployment, Registry

    not_ready = _not_ready(where)
    cfg, path = projects[0]
    if model_dir is not None:
        name = cfg.project.name
        return [Served(name, path, production=1, problem=not_ready.get(name))]
    served = []
    for index, (project, config) in enumerate(projects):
        with Registry.from_config(project, create=False) as registry:
            names = list(models) if not index else [project.project.name]
            if all_models and not index:  # as create_app picks them
                names += [m.name for m in registry.models() if m.production is not None]
            names = list(dict.fromkeys(names or [cfg.project.name]))
            for name in names:
                try:
                    deployment = registry.deployment(name)
                except NotFoundError:  # not registered: nothing deployed
                    deployment = Deployment(name)
                served.append(
                    Served(
                        name,
                        config,
                        production=deployment.production,
                        canary=deployment.canary,
                        weight=deployment.canary_weight,
                        problem=not_ready.get(name),
                        deployed=deployment.production is not None,
                    )
                )
    return served


def _not_ready(where: Where) -> dict[str, str]:
    """The models ``/healthz`` says are not ready, with the reason it gives."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(where.host, where.host)
    url = f"{Where(host, where.port).base}/healthz"
    body: dict[str, Any] = {}
    with contextlib.suppress(urllib.error.HTTPError, OSError, ValueError):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 503: not ready, and why
            body = json.loads(exc.read())
    return {
        name: str((why or {}).get("reason", "not ready"))
        for name, why in (body.get("not_ready") or {}).items()
    }
