"""Shared CLI plumbing: error → exit code mapping, JSON output, the console."""

from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import click
import orjson
import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from mooring._interrupts import interrupted, noting_interrupts
from mooring.config._base import parse_duration
from mooring.errors import MooringError, UsageError

#: A word: what a line is never broken inside of (a path, a URL, "Some-college").
_WORD = re.compile(r"\S+\s*")


def wrap_words(text: Text, width: int) -> Text:
    r"""``text`` with its lines broken between words only, each within ``width`` cells
    where its words allow: a word longer than that (a path, say) keeps a line of its own,
    whole, so it reads and copies as one (Rich folds it, "report.h" / "tml").

    Examples:
        >>> str(wrap_words(Text("report: /a/very/long/path.html then more words"), 12))
        'report:\n/a/very/long/path.html\nthen more\nwords'
    """
    lines = []
    for line in text.split("\n", allow_blank=True):
        plain, offsets = line.plain, []
        used, alone = len(plain) - len(plain.lstrip()), True  # the indent counts
        for word in _WORD.finditer(plain):
            if not alone and used + cell_len(word.group().rstrip()) > width:
                offsets.append(word.start())
                used = 0
            used, alone = used + cell_len(word.group()), False
        for part in line.divide(offsets):
            part.rstrip()
            lines.append(part)
    return Text("\n").join(lines)


class WordConsole(Console):
    """A Rich console whose lines of text break between words, never inside one.

    ``print`` of strings (markup) without layout options wraps them with
    :func:`wrap_words` at the console's width; tables, rules and any call that sets
    ``soft_wrap``, ``overflow``, ``no_wrap`` or the like print as Rich does.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if options.get("width") is None:
            # The width read at each print (the terminal's, or COLUMNS), not pinned to the
            # COLUMNS of the moment the module was imported.
            self._width = None

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", **options: Any) -> None:
        if not objects or not all(isinstance(o, str) for o in objects):
            return super().print(*objects, sep=sep, end=end, **options)
        if set(options) - {"markup", "emoji", "highlight"}:
            return super().print(*objects, sep=sep, end=end, **options)
        text = self.render_str(
            sep.join(objects),
            markup=options.get("markup"),
            emoji=options.get("emoji"),
            highlight=options.get("highlight"),
        )
        return super().print(wrap_words(text, self.width), end=end, soft_wrap=True)


console = WordConsole(highlight=False)
err_console = WordConsole(stderr=True, highlight=False)


@dataclass
class _State:
    debug: bool = False


state = _State()


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (for ``--json``)."""
    sys.stdout.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
    )
    sys.stdout.write("\n")
    sys.stdout.flush()


# Typer up to 0.2x raises click's exceptions; newer releases raise their own (typer.Exit,
# typer.Abort, and usage errors derived from typer.TyperException). Both are handled.
_EXIT: tuple[type[Exception], ...] = (click.exceptions.Exit, typer.Exit)
_ABORT: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)
_USAGE: tuple[type[Exception], ...] = (
    click.ClickException,
    getattr(typer, "TyperException", click.ClickException),
)


def run_guarded(app: typer.Typer, argv: list[str]) -> int:
    """Run the Typer app; turn MooringError into a one-line message and its exit code.

    Ctrl-C is one line and exit 130, also when a library turned the KeyboardInterrupt
    into an error of its own on the way up (TensorFlow may, inside its own calls):
    whatever ends a command that received SIGINT is an interruption.
    """
    debug = "--debug" in argv
    with noting_interrupts():
        try:
            code = _run_app(app, argv, debug)
        except BaseException as exc:
            if not (interrupted() or isinstance(exc, KeyboardInterrupt)):
                raise
            if debug:
                traceback.print_exception(exc)
        else:  # Typer turns a KeyboardInterrupt into 130 and says nothing
            if code != 130 or not interrupted():
                return code
    command = next((a for a in argv if not a.startswith("-")), "mooring")
    # A run's record says where it stopped; the next run starts from there.
    resume = "; the next `mooring run` continues it where it stopped" if command == "run" else ""
    err_console.print(f"interrupted{resume}", soft_wrap=True)
    return 130


def _run_app(app: typer.Typer, argv: list[str], debug: bool) -> int:
    """The command's exit code; errors are worded here, except those of an interruption."""
    try:
        result = app(args=argv, standalone_mode=False)
    except MooringError as exc:
        if interrupted():
            raise
        return report_error(exc, debug)
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0))
    except _ABORT:
        if interrupted():
            raise  # Ctrl-C at a prompt: one line, from run_guarded
        err_console.print("aborted")
        return 130
    except _USAGE as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {escape(str(exc))}", soft_wrap=True)
        return 2
    except Exception as exc:  # a fault of mooring's, not the user's: one line and a file
        if interrupted():
            raise
        if debug:
            traceback.print_exc()
            return INTERNAL_ERROR
        where = _crash_report(argv, exc)
        first = (str(exc).splitlines() or [""])[0][:200]
        command = next((a for a in argv if not a.startswith("-")), "mooring")
        err_console.print(
            f"[bold red]internal error[/] in `mooring {escape(command)}`: "
            f"{type(exc).__name__}: {escape(first)}; the traceback is in {where}; "
            "rerun with --debug to print it, and please report it",
            soft_wrap=True,
        )
        return INTERNAL_ERROR
    return int(result) if isinstance(result, int) else 0


def report_error(exc: MooringError, debug: bool = False) -> int:
    """Print a user's error as ``error: …`` (its first line; any further lines below it)
    and return its exit code; with ``debug``, the traceback first."""
    if debug:
        traceback.print_exception(exc)
    first, _, rest = str(exc).partition("\n")
    err_console.print(f"[bold red]error:[/] {escape(first)}", soft_wrap=True)
    if rest:
        err_console.print(escape(rest), soft_wrap=True)
    return exc.exit_code


#: Exit status of an unexpected internal error (sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70


def _crash_report(argv: list[str], exc: BaseException) -> str:
    """Write the traceback under the project's home (``<home>/logs``), else the temp dir;
    return the file's path."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / "mooring-logs"
    try:
        from mooring.config import load_config

        config = Path("mooring.toml")
        for i, arg in enumerate(argv):
            if arg in ("-c", "--config") and i + 1 < len(argv):
                config = Path(argv[i + 1])
            elif arg.startswith("--config="):
                config = Path(arg.partition("=")[2])
        if config.is_file():
            folder = load_config(config).home / "logs"
    except Exception:  # the report must be written whatever else is broken
        pass
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    text = "mooring " + " ".join(argv) + "\n\n" + "".join(traceback.format_exception(exc))
    for place in (folder, Path(tempfile.gettempdir())):
        try:
            place.mkdir(parents=True, exist_ok=True)
            path = place / f"crash-{stamp}.txt"
            path.write_text(text, encoding="utf-8")
            return str(path)
        except OSError:
            continue
    return "(nowhere: no writable folder)"


def print_gate(*, skipped: bool, passed: bool, message: str, default: bool) -> None:
    """One gate's line, as ``mooring evaluate`` and ``models import --data`` print it:
    ``PASS``/``FAIL``/``SKIP`` and the gate's own message."""
    mark = "[yellow]SKIP[/]" if skipped else "[green]PASS[/]" if passed else "[red]FAIL[/]"
    note = " [dim](default gate)[/]" if default else ""
    # "SKIP first model ...", not "SKIP skipped: first model ..." (so for "passed: ...")
    said = "skipped:" if skipped else "passed:" if passed else "failed:"
    message = message.removeprefix(said).strip()
    console.print(f"{mark} {escape(message)}{note}", soft_wrap=True)


def seconds_option(text: str, option: str) -> float:
    """A duration option (``10s``, ``5m``, ``1h`` or plain seconds) in seconds.

    Raises:
        UsageError: not a duration, naming the option.
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a duration; use e.g. 10s, 5m or 1h") from None
