"""The box of a serving process (:mod:`mooring._sandbox`): what a worker, or the
one-process server, may read, write, bind and connect to.

Read-only: the projects' homes (the model store, schemas, state), the artifact
stores, ``--model-dir`` and ``--schema``, the configuration files and the keys they
name. Written: the prediction log and feedback folders, the run folder of ``--workers
N`` (multiprocess metrics, deployment and flush notices), the folder of a SQLite
registry (the server writes deployments and audit events, and SQLite makes its WAL
files beside the database) and the registry's download cache. TCP: bound on the HTTP
and gRPC ports, connected to the ports of the configured endpoints (a PostgreSQL
registry, remote stores, webhooks, OpenTelemetry, alerts, and those the environment
names: ``AWS_ENDPOINT_URL``, a proxy). The supervisor of
``--workers N`` runs no model and is not boxed; each worker boxes itself.

With the default layout the store lies inside the home, beside the SQLite database,
so it is writable to the worker too; a version's files are checked against their
recorded digests when they are loaded. A registry on PostgreSQL (or a database
outside the home) keeps the store read-only.

Examples:
    >>> enter_box(options, run=None).on  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mooring import _sandbox

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.serving._process import ServeOptions
    from mooring.serving._workers import WorkerRun

#: Endpoints set in the environment that a serving process's libraries connect to: an
#: S3-compatible store's own endpoint (botocore), a proxy, OpenTelemetry's exporter.
ENDPOINT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

__all__ = ["ENDPOINT_ENV", "box_line", "box_status", "enter_box", "serving_rules"]

log = logging.getLogger("mooring.serving")


def _local(url: str | None) -> Path | None:
    """The folder a store URL names on this machine (None: remote, or none)."""
    if not url:
        return None
    if "://" not in url:
        return Path(url)
    parts = urlsplit(url)
    return Path(parts.path) if parts.scheme in ("file", "local") else None


def _sqlite_folder(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path).resolve().parent if path else None


def _existing_within(folder: Path, root: Path) -> Path | None:
    """``folder``, else its nearest existing parent inside ``root`` (None: none is)."""
    root = root.resolve()
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            inside = candidate == root or root in candidate.parents
            return candidate if inside else None
    return None


def _project_paths(
    cfg: MooringConfig, *, registry_mode: bool
) -> tuple[list[Path], list[Path], list[Path], list[str | None]]:
    """One project's folders read, folders written, the folders among them to make now
    (a rule needs its folder to exist: the logs the server will write), and the URLs it
    reaches. Nothing else is made: a server leaves its project as it found it."""
    home = cfg.home
    # registry._audit.key_file's rule, without importing the registry before the box.
    audit_key = cfg.project.audit_key_file
    key_file = cfg.path(audit_key) if audit_key else home / "audit.key"
    registry = cfg.project.registry or f"sqlite:///{home / 'registry.db'}"
    artifacts = cfg.project.artifacts
    store = home / "artifacts" if artifacts is None else _local(artifacts)
    if store is not None and not store.is_absolute():
        store = cfg.path(str(store))
    keys = cfg.registry
    read = [home, key_file]
    read += [cfg.path(str(p)) for p in (keys.signing_key, keys.signing_certificate) if p]
    read += [cfg.path(str(p)) for p in (*keys.trusted_keys, *keys.trusted_roots)]
    read += [cfg.path(str(p)) for p in keys.certificate_chain]
    if store is not None:
        read.append(store)
    write = [home / "cache"]
    make: list[Path] = []
    serving = cfg.serving
    feedback = serving.feedback_token or os.environ.get(serving.feedback_token_env)
    for url, default, used in (
        (serving.log_url, home / "predictions", serving.log_sample_rate > 0),
        (cfg.monitoring.feedback_url, home / "feedback", bool(feedback)),
    ):
        folder = default if url is None else _local(url)
        if folder is not None:
            folder = folder if folder.is_absolute() else cfg.path(str(folder))
            write.append(folder)
            make += [folder] if used else []
    database = _sqlite_folder(registry)
    if database is not None:
        write.append(database)
    if registry_mode:
        # A registry the first `mooring run` will create: the server leaves the project
        # as it is, so its box lets it make the home inside the project's folder.
        for folder in (home, database):
            holder = _existing_within(folder, cfg.root) if folder is not None else None
            if holder is not None and holder != folder:
                write.append(holder)
    urls: list[str | None] = [registry, artifacts, cfg.serving.log_url]
    urls += [cfg.monitoring.feedback_url, cfg.observability.otlp_endpoint]
    urls += [hook.url for hook in cfg.registry.webhooks]
    urls.append(cfg.monitoring.alerts.webhook_url)
    return read, write, make, urls


def serving_rules(options: ServeOptions, run: WorkerRun | None) -> _sandbox.Rules:
    """The :class:`~mooring._sandbox.Rules` of a serving process with ``options``
    (``run``: a worker of ``--workers N``)."""
    read: list[Path] = [path.resolve() for path in options.paths if path.exists()]
    write: list[Path] = []
    make: list[Path] = []
    urls: list[str | None] = []
    for cfg in options.projects:
        found = _project_paths(cfg, registry_mode=options.model_dir is None)
        read += found[0]
        write += found[1]
        make += found[2]
        urls += found[3]
    read += [path for path in (options.model_dir, options.schema) if path is not None]
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics:
        write.append(Path(metrics))
    temp = None
    if run is not None:
        write.append(run.folder)
        temp = run.folder / f"tmp-{os.getpid()}"
    for folder in make:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
    bind = [options.port]
    if options.config.serving.grpc_port is not None:
        bind.append(options.config.serving.grpc_port)
    urls += [os.environ.get(name) for name in ENDPOINT_ENV]
    connect, lookup, unix = _sandbox.endpoint_ports(urls)
    return _sandbox.Rules(
        read=tuple(read),
        write=tuple(write),
        bind=tuple(bind),
        connect=connect,
        unix=unix,
        udp=lookup,
        temp=temp,
    )


def enter_box(options: ServeOptions, run: WorkerRun | None) -> _sandbox.Box:
    """Box this serving process, unless ``[serving] sandbox = false``; the box, also
    logged when it is off (the banner and ``GET /admin/status`` say it too)."""
    if not options.config.serving.sandbox:
        return _sandbox.off("[serving] sandbox = false")
    box = _sandbox.enter(serving_rules(options, run))
    if not box.on:
        log.warning("mooring serve: %s", _sandbox.describe(box))
    return box


def box_status() -> dict[str, object]:
    """This process's box for ``GET /admin/status``: ``{"on": ..., "line": ...}`` and
    its details; a server started otherwise than by ``mooring serve`` (an application
    built in a program) was never boxed, and says so."""
    box = _sandbox.current()
    if box is None:
        box = _sandbox.Box(on=False, why="this process was not started by mooring serve")
    return box.to_dict()


def box_line(cfg: MooringConfig) -> str:
    """What ``mooring status`` says of the box the project's serving workers would run
    in on this machine: ``box on ...``, or ``box off: why`` (the switch, or the kernel).

    >>> from mooring.config import MooringConfig
    >>> table = {"project": {"name": "m"}, "data": {"train": "t.csv"}}
    >>> box_line(MooringConfig.from_mapping({**table, "serving": {"sandbox": False}}))
    'box off: [serving] sandbox = false'
    """
    if not cfg.serving.sandbox:
        return "box off: [serving] sandbox = false"
    why = _sandbox.why_off()
    if why is not None:
        return f"box off: {why}"
    abi = _sandbox.abi_version()
    parts = ["files"] + (["TCP bind and connect"] if abi >= 4 else [])
    parts += ["abstract unix sockets and signals"] if abi >= 6 else []
    off = ("network rules and " if abi < 4 else "") + "scoping off"
    missing = "" if abi >= 6 else f" (ABI {abi}: {off})"
    return (
        f"box on for every process that runs a model: Landlock ABI {abi} "
        f"({', '.join(parts)}){missing}, seccomp, no new privileges"
    )
