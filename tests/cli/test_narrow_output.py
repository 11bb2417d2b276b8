"""On an 80-column terminal the command line breaks its lines between words, never inside
one: a path, a URL or a hyphenated value ("Some-college") stays whole on one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from mooring.cli._common import console, wrap_words
from tests._support.cli import mooring_in_process
from tests._support.project import write_adult

BORDER = re.compile(r"[│┃┏┓┗┛━─┡┩└┘┌┐├┤┼╇╈]")


@pytest.fixture(autouse=True)
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def whole(text: str, words: list[str]) -> list[str]:
    """The ``words`` that no single line of ``text`` (table borders left out) holds whole."""
    lines = [BORDER.sub(" ", line) for line in text.splitlines()]
    return [w for w in words if not any(w in line for line in lines)]


def test_a_long_path_keeps_a_line_of_its_own_and_prose_wraps_around_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ("a-project-folder-with-a-long-name" * 2) / "evaluation" / "report.html"
    console.print(f"report: {path} written; open it in a browser to read the evaluation")
    out = capsys.readouterr().out
    assert whole(out, [str(path)]) == []
    short = [line for line in out.splitlines() if str(path) not in line]
    assert console.width == 80 and short and all(len(line) <= 80 for line in short)


def test_the_demo_says_a_long_step_title_whole(capsys: pytest.CaptureFixture[str]) -> None:
    from mooring.cli._demo import _step

    title = "mooring run: validate → train → evaluate → gate → register → replay → deploy"
    _step(1, title)
    _step(2, "Serve")
    out = capsys.readouterr().out
    assert whole(out, [f"1. {title}", "2. Serve"]) == [] and "…" not in out


def test_stats_keeps_column_names_and_values_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_adult(tmp_path, train_rows=400, test_rows=1)
    result = mooring_in_process("stats", str(data["train"]), "--na-value", "?")
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if BORDER.match(line)]
    assert table and max(len(line) for line in table) <= 80
    names = ["marital-status", "education-num", "hours-per-week", "native-country"]
    values = ["Some-college", "Married-civ-spouse", "Never-married", "Self-emp-not-inc"]
    assert whole(result.stdout, names + values) == []


def test_an_empty_registry_names_its_long_path_whole(tmp_path: Path) -> None:
    folder = tmp_path / "a-long-folder-name-for-the-project-so-its-registry-path-is-long"
    folder.mkdir()
    config = folder / "mooring.toml"
    config.write_text('[project]\nname = "m"\nhome = "state"\n[data]\ntrain = "t.csv"\n')
    result = mooring_in_process("models", "list", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert whole(result.stdout, [str(folder / "state" / "registry.db")]) == []


words = st.text(alphabet="abc-/.", min_size=1, max_size=30)


@given(st.lists(words, min_size=1, max_size=30), st.integers(10, 80))
def test_wrapping_keeps_every_word_and_breaks_only_between_them(
    parts: list[str], width: int
) -> None:
    wrapped = str(wrap_words(Text(" ".join(parts)), width)).split("\n")
    assert " ".join(wrapped).split() == parts  # each word whole, in order
    for line in wrapped:
        assert len(line) <= width or " " not in line  # only a lone word overflows
