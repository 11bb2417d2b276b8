"""Broken Adult data through the real command line: exit 1 naming the column, no traceback,
nothing trained or deployed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests._support.cli import run_mooring as mooring
from tests._support.project import write_adult, write_project

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline-cli")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_adult(tmp_path_factory.mktemp("adult-broken"))


def _rewrite(source: Path, target: Path, change: object) -> Path:
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [change(i, dict(r)) for i, r in enumerate(rows)]  # type: ignore[operator]
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


def _without(column: str) -> object:
    def change(_: int, row: dict[str, str]) -> dict[str, str]:
        row.pop(column)
        return row

    return change


def test_validate_fails_on_a_missing_model_input(tmp_path: Path, data: dict[str, Path]) -> None:
    schema = tmp_path / "schema.yaml"
    inferred = mooring(
        "schema", "infer", str(data["train"]), "--label", "class", "--na-value", "?",
        "--out", str(schema),
    )  # fmt: skip
    assert inferred.returncode == 0, inferred.stderr
    broken = _rewrite(data["test"], tmp_path / "no-age.csv", _without("age"))
    result = mooring("validate", str(broken), "--schema", str(schema), "--na-value", "?")
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stdout.split())  # the console wraps long lines
    assert "missing_column age" in text and "'age' is missing" in text
    assert "Traceback" not in result.stdout + result.stderr


def test_run_refuses_data_its_feature_spec_cannot_use(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    """workclass dropped and 'forty' in a third of hours-per-week, both named in [features]:
    refused at validate, before anything trains."""

    def change(i: int, row: dict[str, str]) -> dict[str, str]:
        row.pop("workclass")
        if i % 3 == 0:
            row["hours-per-week"] = "forty"
        return row

    broken = _rewrite(data["train"], tmp_path / "broken.csv", change)
    features = (
        '[features]\nworkclass = { encoding = "one_hot" }\n'
        'hours-per-week = { transform = "normalize" }\n'
    )
    toml = write_project(tmp_path / "project", {**data, "train": broken}, model=features)
    result = mooring("run", "-c", str(toml))
    assert result.returncode == 1, result.stderr
    text = " ".join(result.stderr.split())  # the console wraps long lines
    assert "data contract failed" in text
    assert "'workclass'" in text and "'hours-per-week'" in text
    assert "Traceback" not in result.stderr
    state = tmp_path / "project" / "state"
    assert not list(state.glob("runs/*/train/model"))
    assert not (state / "registry.db").exists()


def test_run_refuses_a_number_column_broken_into_text(
    tmp_path: Path, data: dict[str, Path]
) -> None:
    """The same data with nothing in [features]: the schema inferred from it says text for
    hours-per-week, and the run still stops at validate instead of training on it."""

    def change(i: int, row: dict[str, str]) -> dict[str, str]:
        row.pop("workclass")
        if i % 3 == 0:
            row["hours-per-week"] = "forty"
        return row

    broken = _rewrite(data["train"], tmp_path / "broken.csv", change)
    toml = write_project(tmp_path / "project", {**data, "train": broken})
    for command in ("run", "train"):
        result = mooring(command, "-c", str(toml))
        text = " ".join(result.stderr.split())
        assert result.returncode == 1, text
        assert "'hours-per-week' mixes numbers" in text and "'forty'" in text
        assert "Traceback" not in text
    assert "nothing was trained" in text
    state = tmp_path / "project" / "state"
    assert not (state / "registry.db").exists()
    assert not list(state.glob("runs/**/saved_model.pb"))
