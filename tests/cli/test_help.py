"""``--help`` renders every word: every command's and sub-command's help page, as a user
reads it, holds each help string of its source word for word.

Typer renders help with Rich markup, in which ``[data]`` is a style tag: unescaped, it
vanishes, and "Project file (registry, [data], [serving])" reads "Project file
(registry, , )". Help strings write ``\\[data]``; this finds the ones that do not.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

# Wide enough that no help line wraps; the checks also hold for wrapped pages.
ENVIRONMENT = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOX = "│╭╮╰╯─ "
# What an eaten word leaves: empty parentheses "()", "( , )", or separators with nothing
# between them or before a closing parenthesis: "(registry, , )".
LEFTOVERS = re.compile(r"\(\s*(?:[,;]\s*)*\)|[,;]\s*[,;)]")
BRACKETED = re.compile(r"\\?(\[[A-Za-z][\w.-]*\])")
# Epilogs set their examples apart with a spaced-out separator ("a   |   b"): not a gap.
SEPARATOR = re.compile(r" +([|·]) +")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The command, then every sub-command under it at any depth, with the words that run it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _as_written(text: str) -> str:
    """A help string as its author means it to read: Rich's escapes dropped, whitespace
    (line breaks, indentation) collapsed, anything after a form feed (click's cut) left out."""
    text = inspect.cleandoc(text).partition("\f")[0].replace("\\[", "[")
    return " ".join(text.split())


def _sources(command: Any) -> list[str]:
    """Every help string shown on the command's page: its own help and epilog, its
    parameters' help and, for a group, each sub-command's first paragraph."""
    texts = [command.help or "", command.epilog or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    for sub in getattr(command, "commands", {}).values():
        texts.append(sub.short_help or inspect.cleandoc(sub.help or "").split("\n\n")[0])
    return [text for text in texts if text.strip()]


def _column_names(command: Any) -> set[str]:
    """What the left columns of the page's panels show: parameter names, options,
    sub-commands, the required mark."""
    names = {"*", *getattr(command, "commands", {})}
    for param in command.params:
        names |= {param.name or "", *param.opts, *param.secondary_opts}
    return names


def _doubled_spaces(page: str, names: set[str]) -> list[str]:
    """Lines whose help text holds two spaces in a row (where a word went missing).

    Panels separate their columns with runs of spaces, so a row is cut at each run and
    its leading cells (names, options, types such as ``<path>``) are set aside: what is
    left is the help text, in one piece unless it holds a doubled space."""
    wrong = []
    for line in page.splitlines():
        cells = re.split(r" {2,}", SEPARATOR.sub(r" \1 ", line.strip(BOX)))
        while len(cells) > 1 and (
            cells[0].removesuffix("...") in names or cells[0].startswith(("<", "-"))
        ):
            cells.pop(0)
        if len(cells) > 1:
            wrong.append(line.strip(BOX))
    return wrong


def _page(words: tuple[str, ...]) -> str:
    from mooring.cli import app

    result = CliRunner().invoke(app, [*words, "--help"], env=ENVIRONMENT)
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def test_every_help_page_renders_every_word_of_its_source() -> None:
    from mooring.cli import app

    problems: list[str] = []
    pages = 0
    for words, command in _commands(get_command(app)):
        where = " ".join(["mooring", *words, "--help"])
        page = _page(words)
        pages += 1
        flat = " ".join(page.replace("│", " ").split())
        for source in _sources(command):
            expected = _as_written(source)
            missing = [m for m in BRACKETED.findall(source) if m not in page]
            if missing:
                problems.append(f"{where}: {', '.join(missing)} not shown, from {expected!r}")
            elif expected not in flat:
                problems.append(f"{where}: does not read {expected!r}")
        problems += [f"{where}: leftover punctuation in {line.strip(BOX)!r}"
                     for line in page.splitlines() if LEFTOVERS.search(line)]  # fmt: skip
        problems += [
            f"{where}: doubled space in {line!r}"
            for line in _doubled_spaces(page, _column_names(command))
        ]
    assert pages > 30, f"only {pages} help pages found"
    assert problems == [], "\n".join(problems)


def test_help_strings_hold_no_doubled_spaces() -> None:
    from mooring.cli import app

    wrong = [
        f"{' '.join(words) or 'mooring'}: {line.strip()!r}"
        for words, command in _commands(get_command(app))
        for source in _sources(command)
        for line in source.splitlines()
        if "  " in SEPARATOR.sub(r" \1 ", line.strip())
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("words", "shown"),
    [
        (("score",), "Project file (registry, [data], [serving])."),
        (("train",), "Override [model] epochs."),
        (("serve",), "else [serving] workers, else"),
        (("init",), "Event-time column for [data] timestamp"),
    ],
)
def test_bracketed_config_keys_are_shown(words: tuple[str, ...], shown: str) -> None:
    """The pages the issue names, read as a user reads them."""
    assert shown in " ".join(_page(words).replace("│", " ").split())


def test_the_checks_see_what_markup_eats() -> None:
    """An unescaped ``[data]`` vanishes and leaves the marks these tests look for."""
    from rich.text import Text

    eaten = Text.from_markup("Project file (registry, [data], [serving]). Override [model] epochs.")
    assert LEFTOVERS.search(eaten.plain)
    assert _doubled_spaces(f"│ --epochs  <int>  {eaten.plain} │", {"--epochs"})
    assert _as_written("Override \\[model] epochs.") == "Override [model] epochs."
