"""Broken copies of the Adult data: structure fails closed, distribution follows severity.

Every file here is a real Adult sample with one thing broken the way upstream jobs break
data. Structural breaks (a column the schema requires is gone, values of the wrong type
beyond ``type_tolerance``, no rows, a label class the model has no output for) are
errors whatever ``severity`` says; harmless changes (reordered columns, CRLF, a BOM, a
handful of bad values) pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config._data import ContractConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.contract._validation import AnomalyKind, ValidationResult, validate
from mooring.errors import DataError, MooringError
from tests._support.broken_adult import Rows, adult_sample, csv_bytes, drop_column, map_column

OPTIONS = ReadOptions(na_values=("?", ""))
HEADER, CLEAN = adult_sample(4000)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    path = _write(tmp_path_factory.mktemp("clean") / "clean.csv", HEADER, CLEAN)
    return infer_schema(compute_statistics(path, OPTIONS), label="class")


def _write(path: Path, header: list[str], rows: Rows, *, crlf: bool = False) -> Path:
    path.write_bytes(csv_bytes(header, rows, eol="\r\n" if crlf else "\n"))
    return path


def _check(path: Path, schema: Schema, **options: object) -> ValidationResult:
    read = ReadOptions(**{"na_values": ("?", ""), **options})  # type: ignore[arg-type]
    # The default contract: severity "warning" governs only distributional anomalies.
    return validate(path, schema, options=read, contract=ContractConfig())


def _drop(name: str) -> tuple[list[str], Rows]:
    return drop_column(HEADER, CLEAN, name)


def _retype(name: str, every: int) -> Rows:
    return map_column(HEADER, CLEAN, name, lambda n, v: "forty" if n % every == 0 else v)


def _errors(result: ValidationResult) -> set[tuple[str, str | None]]:
    return {(str(a.kind), a.column) for a in result.errors}


def test_a_dropped_or_renamed_column_is_an_error_naming_it(schema: Schema, tmp_path: Path) -> None:
    header, rows = _drop("age")
    result = _check(_write(tmp_path / "dropped.csv", header, rows), schema)
    assert not result.ok and ("missing_column", "age") in _errors(result)
    assert "'age' is missing" in result.find(AnomalyKind.MISSING_COLUMN, "age").message
    renamed = ["Age" if h == "age" else h for h in HEADER]
    result = _check(_write(tmp_path / "renamed.csv", renamed, CLEAN), schema)
    # One finding, not a missing column and an unexpected one.
    assert _errors(result) == {("renamed_column", "age")}
    assert result.count(AnomalyKind.UNEXPECTED_COLUMN) == 0
    assert "'Age'" in result.find(AnomalyKind.RENAMED_COLUMN, "age").message
    header, rows = _drop("class")
    result = _check(_write(tmp_path / "nolabel.csv", header, rows), schema)
    assert "the label column 'class' is missing" in result.errors[0].message


@pytest.mark.parametrize(("every", "fails"), [(2000, False), (20, True), (1, True)])
def test_wrong_types_fail_past_the_tolerance(
    schema: Schema, tmp_path: Path, every: int, fails: bool
) -> None:
    """'forty' in 0.05% (tolerated, reported), 5% and 100% of hours-per-week."""
    result = _check(
        _write(tmp_path / "typed.csv", HEADER, _retype("hours-per-week", every)), schema
    )
    found = result.find(AnomalyKind.TYPE_MISMATCH, "hours-per-week")
    assert found is not None and "'forty'" in found.message
    assert (found.severity == "error") is fails and result.ok is not fails
    if not fails:
        assert "within type_tolerance" in found.message


def test_a_new_label_class_is_an_error(schema: Schema, tmp_path: Path) -> None:
    rows = [[*r[:-1], ">100K"] if n % 50 == 0 else r for n, r in enumerate(CLEAN)]
    result = _check(_write(tmp_path / "label.csv", HEADER, rows), schema)
    assert ("unseen_category", "class") in _errors(result)


def test_no_rows_and_a_wrong_delimiter_are_errors(schema: Schema, tmp_path: Path) -> None:
    result = _check(_write(tmp_path / "header.csv", HEADER, []), schema)
    assert ("empty_dataset", None) in _errors(result)
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text(
        "\n".join(";".join(r) for r in [HEADER, *CLEAN[:200]]) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"semi\.csv.*delimiter looks like ';'"):
        _check(semicolons, schema)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(MooringError, match=r"empty\.csv"):
        _check(empty, schema)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _write(p, list(reversed(HEADER)), [list(reversed(r)) for r in CLEAN]),
        lambda p: _write(p, HEADER, CLEAN, crlf=True),
        lambda p: (_write(p, HEADER, CLEAN), p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes()))[0],
        lambda p: _write(p, HEADER, _retype("age", 3000)),
    ],
    ids=["reordered", "crlf", "bom", "a-handful-of-bad-values"],
)
def test_harmless_changes_pass(
    schema: Schema, tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    result = _check(make(tmp_path / "ok.csv"), schema)
    assert result.ok, result.render_text()


NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["drop", "retype", "label"]),
    column=st.sampled_from(HEADER),
    numeric=st.sampled_from(NUMERIC),
    share=st.integers(2, 50),
)
def test_any_single_structural_break_is_an_error(
    schema: Schema, tmp_path_factory: pytest.TempPathFactory, kind: str, column: str,
    numeric: str, share: int,
) -> None:  # fmt: skip
    folder = tmp_path_factory.mktemp("broken")
    if kind == "drop":
        header, rows = _drop(column)
        expected = ("missing_column", column)
    elif kind == "retype":
        header, rows = HEADER, _retype(numeric, share)  # 2%-50% of the rows
        expected = ("type_mismatch", numeric)
    else:
        header = HEADER
        rows = [[*r[:-1], "unknown"] if n % share == 0 else r for n, r in enumerate(CLEAN)]
        expected = ("unseen_category", "class")
    result = _check(_write(folder / "broken.csv", header, rows), schema)
    assert expected in _errors(result), result.render_text()


def test_a_number_column_broken_into_text_is_caught_even_by_its_own_schema(
    tmp_path: Path,
) -> None:
    """'forty' in a third of hours-per-week: read as text, so a schema inferred from this
    very file says text too. The mix of numbers and words is still an error."""
    path = _write(tmp_path / "mixed.csv", HEADER, _retype("hours-per-week", 3))
    stats = compute_statistics(path, OPTIONS)
    own = infer_schema(stats, label="class")
    assert own.columns["hours-per-week"].type == "string"
    result = validate(path, own, options=OPTIONS, contract=ContractConfig())
    found = result.find(AnomalyKind.TYPE_MISMATCH, "hours-per-week")
    assert found is not None and found.severity == "error"
    assert "mixes numbers (66.65%) and text (33.35%, e.g. 'forty')" in found.message
    # A column that really is text, mostly digits (codes), opts out explicitly.
    data = own.to_dict()
    data["columns"]["hours-per-week"]["severity"] = "warning"
    declared = Schema.from_dict(data)
    assert validate(path, declared, options=OPTIONS, contract=ContractConfig()).ok
