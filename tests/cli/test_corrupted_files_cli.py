"""``mooring validate`` on broken copies of the Adult data, as a user runs it.

Each case breaks one thing the way upstream jobs do. Every one exits with the documented
code (1: the contract failed, 2: the file cannot be read as data) and names the column
or the line, with no traceback; the harmless changes exit 0. The cases call the CLI's
entry point in the test's process (the same parsing, guard and console as the script);
one case of each exit code also runs as a subprocess, as a user's shell runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mooring.cli import main
from tests._support.broken_adult import adult_sample, csv_bytes, drop_column, map_column
from tests._support.cli import run_mooring as mooring

pytestmark = pytest.mark.slow

HEADER, BODY = adult_sample(1500)


def _column(name: str, value: Callable[[int, str], str]) -> bytes:
    return csv_bytes(HEADER, map_column(HEADER, BODY, name, value))


def _drop(name: str) -> bytes:
    return csv_bytes(*drop_column(HEADER, BODY, name))


def _huge_field() -> bytes:
    rows = [list(r) for r in BODY]
    rows[5][1] = "x" * (10 * 1024 * 1024)
    return csv_bytes(HEADER, rows)


CASES: dict[str, tuple[Callable[[], bytes], int, str]] = {
    # name: (file bytes, exit code, what the output must name)
    "dropped column": (lambda: _drop("age"), 1, "'age' is missing"),
    "renamed column": (lambda: csv_bytes(["Age", *HEADER[1:]], BODY), 1, "'age' is missing"),
    "duplicated header row": (
        lambda: csv_bytes(HEADER, [*BODY[:700], HEADER, *BODY[700:]]),
        1,
        "unseen_category class",
    ),
    "type changed in 5%": (
        lambda: _column("hours-per-week", lambda n, v: "forty" if n % 20 == 0 else v),
        1,
        "type_mismatch hours-per-week",
    ),
    "type changed in 100%": (lambda: _column("age", lambda n, v: "old"), 1, "type_mismatch age"),
    "all-null column": (
        lambda: _column("workclass", lambda n, v: "?"),
        1,
        "null_fraction workclass",
    ),
    "label with a new class": (
        lambda: _column("class", lambda n, v: ">100K" if n % 30 == 0 else v),
        1,
        "unseen_category class",
    ),
    "wrong delimiter": (
        lambda: csv_bytes(HEADER, BODY).replace(b",", b";"),
        2,
        "delimiter looks like ';'",
    ),
    "latin-1 bytes": (
        lambda: csv_bytes(HEADER, BODY).replace(b"Private", b"Priv\xe9te", 2),
        2,
        "not UTF-8 text: line 4",
    ),
    "a 10 MB field": (_huge_field, 2, "raise [data] batch_mb"),
    "empty file": (lambda: b"", 2, "is empty"),
    "header only": (lambda: csv_bytes(HEADER, []), 1, "empty_dataset"),
    # Harmless: these pass.
    "reordered columns": (
        lambda: csv_bytes(HEADER[::-1], [r[::-1] for r in BODY]),
        0,
        "PASSED",
    ),
    "CRLF line ends": (lambda: csv_bytes(HEADER, BODY, eol="\r\n"), 0, "PASSED"),
    "byte-order mark": (lambda: b"\xef\xbb\xbf" + csv_bytes(HEADER, BODY), 0, "PASSED"),
    "type changed in 0.05%": (
        lambda: _column("age", lambda n, v: "forty" if n == 7 else v),
        0,
        "within type_tolerance",
    ),
    "extra column": (
        lambda: csv_bytes([*HEADER, "extra"], [[*r, "x"] for r in BODY]),
        0,
        "unexpected_column extra",
    ),
    # A value with a newline inside quotes is valid CSV (an unseen category: a warning).
    "quoted newlines": (
        lambda: _column("workclass", lambda n, v: v if n % 2 else v.replace("e", "e\n", 1)),
        0,
        "PASSED",
    ),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schema")
    clean = folder / "clean.csv"
    clean.write_bytes(csv_bytes(HEADER, BODY))
    out = folder / "schema.yaml"
    made = mooring("schema", "infer", str(clean), "--label", "class", "--na-value", "?",
                   "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI's exit code and everything it printed (the console wraps lines: joined)."""
    code = main(list(args))
    printed = capsys.readouterr()
    return code, " ".join((printed.out + printed.err).split())


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_file_exits_with_its_code_naming_what_broke(
    case: str, schema: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, code, names = CASES[case]
    data = tmp_path / "data.csv"
    data.write_bytes(build())
    returned, output = _in_process(
        capsys, "validate", str(data), "--schema", str(schema), "--na-value", "?"
    )
    assert returned == code, output[:2000]
    assert names in output, output[:2000]
    assert "Traceback" not in output
    # `mooring init` on the same file: a proposal, or one line saying why not (never a
    # crash); a file that cannot be read as data is refused the same way.
    init, said = _in_process(
        capsys, "init", str(data), "--na-value", "?", "--out", str(tmp_path / "m.toml")
    )
    assert init in (0, 2), said[:2000]
    if case == "wrong delimiter":  # init reads a file by its own separator, and says so
        assert init == 0 and "delimiter: ';'" in said, said[:2000]
    else:
        assert init == 2 or code != 2, said[:2000]
    assert "Traceback" not in said and ("error:" in said) == (init == 2)
    if code == 0:
        return  # harmless: run would train on it
    _stops_training(data, schema, tmp_path, ("run",), capsys)


@pytest.mark.parametrize("case", ["dropped column", "wrong delimiter", "extra column"])
def test_the_script_exits_as_the_entry_point_does(case: str, schema: Path, tmp_path: Path) -> None:
    build, code, names = CASES[case]
    data = tmp_path / "data.csv"
    data.write_bytes(build())
    result = mooring("validate", str(data), "--schema", str(schema), "--na-value", "?")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == code, output[:2000]
    assert names in output and "Traceback" not in output, output[:2000]


# `mooring train` runs the same contract check as `mooring run` (Project.validate): one
# broken file of each kind (refused by the contract, refused by the reader) is enough.
@pytest.mark.parametrize("case", ["dropped column", "wrong delimiter"])
def test_train_stops_on_a_broken_file_like_run(case: str, schema: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(CASES[case][0]())
    _stops_training(data, schema, tmp_path, ("train",))


def _stops_training(
    data: Path,
    schema: Path,
    tmp_path: Path,
    commands: tuple[str, ...],
    capsys: pytest.CaptureFixture[str] | None = None,
) -> None:
    """Each of ``commands`` stops with a one-line error, trains nothing, deploys nothing
    (in the test's process with ``capsys``, else as a subprocess)."""
    clean = tmp_path / "clean.csv"
    clean.write_bytes(csv_bytes(HEADER, BODY[:300]))
    project = tmp_path / "project.toml"
    project.write_text(
        f'[project]\nname = "income"\nhome = "{tmp_path / "home"}"\n'
        f'[data]\ntrain = "{data}"\neval = "{clean}"\nlabel = "class"\n'
        'na_values = ["?"]\n[contract]\nschema_file = "' + str(schema) + '"\n'
    )
    for command in commands:
        if capsys is None:
            done = mooring(command, "-c", str(project))
            code, said = done.returncode, " ".join((done.stdout + done.stderr).split())
        else:
            code, said = _in_process(capsys, command, "-c", str(project))
        # 1 from the contract, or 2 where reading the file already refuses it (a column
        # of numbers with a few words, a file that is not CSV).
        assert code in (1, 2), f"{command}: {said[:2000]}"
        assert "error:" in said and "Traceback" not in said, f"{command}: {said[:2000]}"
    assert not (tmp_path / "home" / "registry.db").exists()
    assert not list((tmp_path / "home").glob("runs/**/saved_model.pb"))
