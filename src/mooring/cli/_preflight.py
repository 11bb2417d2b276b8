"""A command's inputs, checked before its module and TensorFlow are imported.

A new user's mistakes (no mooring.toml, a typo in it, a data file that is not there, a
label that is not a column, a model folder that is not one, a home folder that cannot
be written, a port another server holds) are answered in a fraction of a second:
:func:`mooring.cli.main` runs :func:`preflight` before it imports the command's module
(pandas, pyarrow, SQLAlchemy) and TensorFlow (seconds). Only the standard library and
the configuration's module are imported here.

Each check raises the error the command itself would raise later, with the thing, the
value and the fix; a check left out makes an answer slower, never different. The
options are read from the command line by name (:data:`OPTIONS`; a test checks that
every command still has them), the way ``_crash_report`` finds ``--config``.
"""

from __future__ import annotations

import errno
import gzip
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mooring.errors import ConfigError, NotFoundError, UsageError

if TYPE_CHECKING:
    from mooring.config import MooringConfig

__all__ = ["OPTIONS", "port_problem", "preflight"]

#: ``mooring serve``'s worker processes share the port (kept equal to
#: ``mooring.serving._workers.WORKER_ENV``; a test checks).
WORKER_ENV = "MOORING_SERVE_WORKER"


class Argv:
    """A command's words after its name, read by option name (``-c X``, ``--config=X``)."""

    def __init__(self, words: list[str]) -> None:
        self.words = words[: words.index("--")] if "--" in words else words
        self.config = Path("mooring.toml")  # the project file read (the first, for serve)

    def values(self, *names: str) -> list[str]:
        found: list[str] = []
        for i, word in enumerate(self.words):
            for name in names:
                if word == name and i + 1 < len(self.words):
                    found.append(self.words[i + 1])
                elif name.startswith("--") and word.startswith(name + "="):
                    found.append(word[len(name) + 1 :])
                elif len(name) == 2 and len(word) > 2 and word[:2] == name and word[1] != "-":
                    found.append(word[2:])  # -cPATH
        return found

    def value(self, *names: str) -> str | None:
        found = self.values(*names)
        return found[-1] if found else None


@dataclass(frozen=True)
class Needs:
    """What a command reads: its project file (``required``: default ./mooring.toml;
    ``given``: only when --config is passed), whether it writes under the home folder,
    and the checks of its own."""

    config: str = "required"
    writes: bool = False
    group: bool = False  # a group of commands: nothing to check without a subcommand
    free: tuple[str, ...] = ()  # a group's subcommands that read no project
    checks: tuple[Callable[[MooringConfig, Argv], None], ...] = ()


def preflight(command: str | None, args: list[str]) -> None:
    """Check ``command``'s project file, data, model folder and port.

    Raises:
        MooringError: what the command would report, before anything heavy is imported.
    """
    if command is None or "--help" in args or command not in NEEDS:
        return
    argv = Argv(args[args.index(command) + 1 :])
    needs = NEEDS[command]
    if needs.group and (not argv.words or argv.words[0].startswith("-")):
        return
    if argv.words and argv.words[0] in needs.free:
        return
    if any(not v.isdigit() for v in argv.values("--port", "--grpc-port")):
        return  # the option's own check says so first
    given = argv.values("--config", "-c")
    if not given and needs.config != "required":
        return
    model_dir = argv.value("--model-dir") if command == "serve" else None
    if model_dir is not None and not given and not Path("mooring.toml").is_file():
        _ports(8501, grpc=True)(None, argv)  # served with every setting's default
        _served_model(None, argv)
        return
    from mooring.config import load_config

    paths = [Path(path) for path in given or ["mooring.toml"]]
    configs = [load_config(path) for path in paths]
    argv.config = paths[0]
    _check_home(configs[0], argv.config, needs.writes)
    for check in needs.checks:
        check(configs[0], argv)


def _check_home(cfg: MooringConfig, source: Path, writes: bool) -> None:
    value = cfg.project.home
    if "://" in value:
        return
    place = cfg.home
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise ConfigError(
            f"[project] home = '{value}' cannot be created: '{place}' is a file, not a folder; "
            f"set home in {source} to a folder (relative to the file's folder)"
        )
    if writes and not os.access(place, os.W_OK | os.X_OK):
        raise ConfigError(
            f"[project] home = '{value}' cannot be written: '{place}' is not writable by "
            f"this user; set home in {source} to a folder you can write, or fix its "
            "permissions"
        )


def _data_file(cfg: MooringConfig, which: str) -> Path | None:
    """``[data] train`` or ``eval`` resolved (it must exist); None for a URL or no eval."""
    value = cfg.data.train if which == "train" else cfg.data.eval
    if value is None or "://" in value:
        return None
    return cfg.existing_path(f"[data] {which}", value)


def _header(path: Path, cfg: MooringConfig) -> list[str] | None:
    """A CSV file's column names (None: Parquet, no header row, or unreadable here)."""
    if cfg.data.format == "parquet" or not cfg.data.header or not path.is_file():
        return None
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            head = f.readline(1 << 20)
    except (OSError, EOFError):
        return None
    if not head.strip() or head.startswith(b"PAR1"):
        return None
    import csv

    line = head.decode("utf-8-sig", errors="replace").splitlines()[0]
    return [n.strip() for n in next(csv.reader([line], delimiter=cfg.data.delimiter), [])]


def _check_label(cfg: MooringConfig, argv: Argv, path: Path | None, which: str) -> None:
    label = cfg.data.label
    columns = None if path is None or label is None else _header(path, cfg)
    if not columns or label in columns:
        return
    shown = ", ".join(columns[:30]) + (", …" if len(columns) > 30 else "")
    raise ConfigError(
        f"[data] label '{label}' is not a column of the {which} data ({path}); its columns "
        f"are {shown}; set label in {argv.config} to one of them"
    )


def _train_data(cfg: MooringConfig, argv: Argv) -> None:
    override = argv.value("--train-data")
    if override is not None:
        if not Path(override).is_file():
            raise NotFoundError(
                f"--train-data file '{override}' does not exist; pass a CSV or Parquet file"
            )
        _check_label(cfg, argv, Path(override), "--train-data")
        return
    _check_label(cfg, argv, _data_file(cfg, "train"), "train")


def _eval_data(cfg: MooringConfig, argv: Argv) -> None:
    _check_label(cfg, argv, _data_file(cfg, "eval"), "eval")


def _model_folder(folder: str, option: str) -> None:
    from mooring.formats._model import METADATA_FILE  # numpy and pyarrow: only when asked

    if not (Path(folder) / METADATA_FILE).is_file():
        what = "does not exist" if not Path(folder).exists() else "is not a mooring model folder"
        raise NotFoundError(
            f"{option} '{folder}' {what} (no {METADATA_FILE}); point at the folder `mooring train` "
            "wrote (…/model), or leave out --model to evaluate the latest trained one"
        )


def _evaluate(cfg: MooringConfig, argv: Argv) -> None:
    model = argv.value("--model", "-m")
    if model is not None:
        _model_folder(model, "--model")
    elif "://" not in cfg.project.home:
        runs = cfg.home / "runs"
        if not any(p.is_dir() for p in [*runs.glob("*/model"), *runs.glob("*/train/model")]):
            raise NotFoundError(
                f"no trained model under '{runs}'; run `mooring run` (or `mooring train`) "
                "first, or pass --model FOLDER"
            )
    baseline = argv.value("--baseline", "-b")
    if baseline is not None:
        _model_folder(baseline, "--baseline")
    data = argv.value("--data", "-d")
    if data is None:
        if cfg.data.eval is None:
            raise NotFoundError(
                'no evaluation data: pass --data FILE or set [data] eval = "path" in mooring.toml'
            )
        _eval_data(cfg, argv)
    elif "://" not in data and not Path(data).exists():
        raise NotFoundError(f"--data file '{data}' does not exist; pass a CSV or Parquet file")
    elif "://" not in data:
        _check_label(cfg, argv, Path(data), "--data")


def _score_data(cfg: MooringConfig, argv: Argv) -> None:
    for spec in argv.values("--data", "-d"):
        if "://" not in spec and not any(c in spec for c in "*?[") and not Path(spec).exists():
            raise NotFoundError(f"data source {spec!r} does not exist; check the path")


def port_problem(host: str, port: int) -> str | None:
    """Why nothing can listen on ``host:port`` (None: it is free), by binding to it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "in use"
        return f"not available ({exc.strerror or exc})"
    return None


def _ports(default: int, grpc: bool) -> Callable[[MooringConfig | None, Argv], None]:
    def check(cfg: MooringConfig | None, argv: Argv) -> None:
        if os.environ.get(WORKER_ENV):  # a worker of `serve --workers N`: the port is shared
            return
        host = argv.value("--host") or "127.0.0.1"
        wanted = [("--port", argv.value("--port") or str(default))]
        if grpc:
            grpc_port = argv.value("--grpc-port") or (cfg and cfg.serving.grpc_port)
            if grpc_port is not None:
                wanted.append(("--grpc-port", str(grpc_port)))
        for option, text in wanted:
            why = port_problem(host, int(text))
            if why == "in use":
                raise UsageError(
                    f"port {text} on {host} is in use (by another mooring serve?); pass "
                    f"{option} N or stop the other server"
                )
            if why is not None:
                raise UsageError(
                    f"cannot listen on {host}:{text}: {why}; pass --host with an address of "
                    f"this machine (e.g. 127.0.0.1 or 0.0.0.0), or {option} N"
                )

    return check


def _served_model(cfg: MooringConfig | None, argv: Argv) -> None:
    """``serve --model-dir``: a SavedModel folder or a ``.keras`` file is there."""
    folder = argv.value("--model-dir")
    several = len(argv.values("--config", "-c")) > 1 or argv.values("--model")
    if folder is None or several or "--all-models" in argv.words:
        return  # the command refuses --model-dir beside these, saying so
    from mooring.formats._model_source import source_format

    source_format(folder)


def _known_model(cfg: MooringConfig, argv: Argv) -> None:
    """``export lite NAME``: the model is in the project's registry (named before the
    TensorFlow import a conversion needs)."""
    words = argv.words
    if len(words) < 2 or words[0] != "lite" or words[1].startswith("-"):
        return
    if argv.values("--registry"):
        return
    from mooring.pipeline._contracts import require_registry

    with require_registry(cfg) as registry:
        registry.get(words[1])


#: What each command reads, by the name it is called with.
NEEDS: dict[str, Needs] = {
    "run": Needs(writes=True, checks=(_train_data, _eval_data)),
    "train": Needs(writes=True, checks=(_train_data,)),
    "evaluate": Needs(writes=True, checks=(_evaluate,)),
    "monitor": Needs(writes=True),
    "serve": Needs(writes=True, checks=(_ports(8501, grpc=True), _served_model)),
    "ui": Needs(checks=(_ports(8502, grpc=False),)),
    "status": Needs(),
    "drift": Needs(writes=True),
    "feedback": Needs(writes=True),
    "live": Needs(),
    "score": Needs(checks=(_score_data,)),
    "ops": Needs(group=True, free=("k8s",)),
    "export": Needs(group=True, checks=(_known_model,)),
    "models": Needs(config="given"),
    "audit": Needs(config="given"),
    "schema": Needs(config="given"),
    "stats": Needs(config="given"),
    "validate": Needs(config="given"),
}

#: The options :func:`preflight` reads, per command (a test checks each command has them).
OPTIONS: dict[str, tuple[str, ...]] = {
    "run": ("--config", "-c", "--train-data"),
    "train": ("--config", "-c"),
    "evaluate": ("--config", "-c", "--model", "-m", "--baseline", "-b", "--data", "-d"),
    "serve": ("--config", "-c", "--host", "--port", "--grpc-port", "--model-dir"),
    "ui": ("--config", "-c", "--host", "--port"),
    "score": ("--config", "-c", "--data", "-d"),
    "export lite": ("--config", "-c", "--registry"),
}
