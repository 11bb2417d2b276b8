"""``mooring serve``: the project's model over TF Serving's REST API and the v2 protocol.

This module reads the options into a :class:`~mooring.serving._process.ServeOptions`
and hands it to :func:`mooring.serving._process.serve`, which runs the server (one
process or a supervisor of workers), with the dashboard and the monitor composed here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mooring.cli._app import app
from mooring.config import MooringConfig, load_config
from mooring.errors import MooringError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.applications import Starlette

    from mooring.registry import Registry
    from mooring.serving._process import Stoppable
    from mooring.serving._state import ServerState


@app.command(
    "serve",
    epilog="Examples: mooring serve -c mooring.toml --port 8501 --grpc-port 8500 | "
    "mooring serve -c a/mooring.toml -c b/mooring.toml | mooring serve --all-models | "
    "mooring serve --model-dir .mooring/runs/<run>/model",
)
def serve(
    configs: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="mooring.toml of the project to serve (default: ./mooring.toml); repeat it "
            "to serve several projects' models from one process (the first's \\[serving] "
            "section runs the server).",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Serve this model of the (first) project's registry; repeatable "
            "(default: the project's own model).",
        ),
    ] = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all-models",
            help="Serve every model with a production version in the (first) project's registry.",
        ),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=1,
            max=65535,
            help="Also serve TF Serving's gRPC API and the Open Inference Protocol's on this "
            "port (default: \\[serving] grpc_port; off when unset).",
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="Serve this model instead of the registry: a SavedModel folder, a mooring "
            "model folder, a .keras file or a YDF model folder (the last two converted once, "
            "into a cache folder). Needs no mooring.toml: without one, every setting is its "
            "default.",
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="With --model-dir: the name it answers as (default: the project's name, "
            "else the folder's or file's name).",
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="With --model-dir: the schema YAML checked at the door (contract)."
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One JSON line per request on stderr (default: \\[serving] access_log, off).",
        ),
    ] = None,
    monitor: Annotated[
        bool,
        typer.Option("--monitor", help="Also run the monitor (see mooring monitor) in-process."),
    ] = False,
    monitor_interval: Annotated[
        str, typer.Option("--monitor-interval", help="Time between monitor ticks, e.g. 10s.")
    ] = "10s",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=256,
            help="Server processes sharing the port, each with its own batcher and loaded "
            "versions (default: $WEB_CONCURRENCY, else \\[serving] workers, else the usable "
            "cores capped by memory).",
        ),
    ] = None,
) -> None:
    """Serve the registry's production (and canary) version, following deployments; or,
    with --model-dir, one model (no mooring.toml needed)."""
    from mooring.cli._common import seconds_option
    from mooring.serving import _process

    paths = configs or [Path("mooring.toml")]
    # --model-dir needs no project file: without one, every setting is its default.
    configured = bool(configs) or model_dir is None or paths[0].is_file()
    cfg = _served_config(paths[0], configured, model_dir, model_name)
    others = [load_config(path) for path in paths[1:]]
    _check_model_dir_options(model_dir, model_name, others, models, all_models)
    model_dir = served_folder(model_dir) if model_dir is not None else None
    if grpc_port is not None:
        cfg.serving.grpc_port = grpc_port  # the range is checked by the option (1–65535)
    every_s = seconds_option(monitor_interval, "--monitor-interval") if monitor else None
    options = _process.ServeOptions(
        cfg,
        tuple(paths),
        configured=configured,
        others=tuple(others),
        models=tuple(models or ()),
        all_models=all_models,
        host=host,
        port=port,
        model_dir=model_dir,
        schema=schema,
        access_log=cfg.serving.access_log if access_log is None else access_log,
        workers=workers,
        monitor_every_s=every_s,
    )
    _process.serve(options, entry=_forked_worker, dashboard=dashboard, monitor=start_monitor)


def _forked_worker(argv: list[str]) -> int:
    """What a worker forked from ``mooring serve --workers N`` runs: its ``serve`` command
    line, on the app whose commands :func:`mooring.cli.main` checked and registered in the
    supervisor before the fork; its exit status.
    """
    from mooring.cli._common import run_guarded

    return run_guarded(app, argv)


def _served_config(
    path: Path, configured: bool, model_dir: Path | None, model_name: str | None
) -> MooringConfig:
    """The first project's configuration (``--model-name`` renames a ``--model-dir``'s
    model), or without a project file the defaults of :func:`folder_config`."""
    if not configured:
        return folder_config(model_dir, model_name)
    cfg = load_config(path)
    if model_dir is not None and model_name is not None:
        cfg.project.name = served_name(model_name)
    return cfg


def folder_config(model_dir: Path | None, model_name: str | None) -> MooringConfig:
    """The configuration of ``mooring serve --model-dir`` without a ``mooring.toml``: every
    setting its default, the model named ``model_name``, else after the folder (or the
    ``.keras`` file), as ``tensorflow_model_server --model_base_path`` does.

    Examples:
        >>> folder_config(Path("exports/churn.keras"), None).project.name
        'churn'
    """
    where = Path(model_dir or ".").expanduser().resolve()
    folder_name = where.stem if where.suffix == ".keras" else where.name
    name = served_name(model_name) if model_name else served_name(folder_name, loose=True)
    # No [data]: a folder is served, nothing is trained; the section's one required key
    # names no file.
    return MooringConfig.from_mapping(
        {"project": {"name": name}, "data": {"train": ""}},
        root=Path.cwd(),
        source="the defaults of mooring serve --model-dir",
    )


def served_name(name: str, *, loose: bool = False) -> str:
    """``name`` as a model name (``[project] name``'s rules: it appears in URLs and
    registry keys); ``loose``: a folder's name made one (characters it cannot hold become
    ``-``; ``model`` when nothing is left).

    >>> served_name("my model (v2)", loose=True)
    'my-model-v2'

    Raises:
        UsageError: not ``loose`` and not a valid name.
    """
    from mooring.config._base import NAME_PATTERN

    if loose:
        name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "-", name)).strip("-_.")[:128]
        name = name or "model"
    if not NAME_PATTERN.match(name) or ".." in name:
        raise UsageError(
            f"--model-name {name!r} is not allowed: use 1-128 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit, without '..' (it becomes part of URLs); "
            "e.g. 'income' or 'churn-v2'"
        )
    return name


def _check_model_dir_options(
    model_dir: Path | None,
    model_name: str | None,
    others: list[MooringConfig],
    models: list[str] | None,
    all_models: bool,
) -> None:
    if model_dir is not None and (others or models or all_models):
        raise UsageError(
            "--model-dir serves one exported folder; leave out the extra --config, --model "
            "and --all-models options, or leave out --model-dir to serve from registries"
        )
    if model_name is not None and model_dir is None:
        raise UsageError(
            "--model-name names the model of --model-dir; pass --model-dir PATH, or leave "
            "out --model-name (a registry's models answer to their own names)"
        )


def served_folder(model_dir: Path) -> Path:
    """The SavedModel folder to serve for ``--model-dir``: a folder as given; a ``.keras``
    file or a YDF model folder converted once, into the cache, by ``python -m
    mooring.training._import`` (a process of its own: the server imports no Keras, and
    the supervisor of ``--workers N`` starts no TensorFlow runtime before it forks).

    Raises:
        NotFoundError, ModelLoadError: nothing there, or not a model mooring can serve.
    """
    import json
    import subprocess
    import sys

    from mooring import errors
    from mooring.formats._model_source import source_format

    if source_format(model_dir) == "saved_model":
        from mooring.formats._vetting import check_folder

        check_folder(model_dir, what=f"--model-dir '{model_dir}'")  # as an import does
        return model_dir
    done = subprocess.run(
        [sys.executable, "-m", "mooring.training._import", str(model_dir)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ},
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        said = {}
    if done.returncode == 0 and "folder" in said:
        return Path(said["folder"])
    kind = getattr(errors, str(said.get("error")), None)
    if not (isinstance(kind, type) and issubclass(kind, MooringError)):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MooringError(
            f"--model-dir '{model_dir}' could not be converted to a SavedModel: {last}"
        )
    raise kind(str(said.get("message")))


def dashboard(cfg: MooringConfig, state: ServerState) -> Starlette:
    """The dashboard inside ``mooring serve`` (under ``/ui``): it reads the server's metrics
    in process and applies its deployment changes at once, through the server's state.

    Examples:
        >>> with_dashboard(create_app(cfg), cfg, dashboard)  # doctest: +SKIP
    """
    from mooring.dashboard._app import create_ui

    return create_ui(
        cfg,
        registry=state.registry,
        admin_token=state.admin_token,
        metrics=state.metrics.render,
        on_deployment=state.apply_deployment,
    )


def start_monitor(
    project: MooringConfig,
    registry: Registry,
    *,
    metrics: Callable[[], bytes],
    config_path: Path,
    every_s: float,
) -> Stoppable:
    """``mooring serve --monitor``: one project's monitor in a thread of the server, reading
    its metrics in process and rendering drift reports with the dashboard's renderer."""
    from mooring.dashboard._drift_report import render_drift_html
    from mooring.monitoring import Monitor

    return Monitor(
        project,
        registry,
        metrics=metrics,
        config_path=config_path,
        render_drift=render_drift_html,
    ).start(every_s)
