"""Project: the data contract on the project's own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mooring._project import Project
from mooring.contract._validation import AnomalyKind
from mooring.errors import ConfigError


@pytest.fixture
def project_dir(adult_dir: Path, tmp_path: Path) -> Path:
    for name in ("mooring.toml", "adult.data.csv.gz", "adult.test.csv.gz"):
        shutil.copy(adult_dir / name, tmp_path / name)
    return tmp_path


def test_validate_adult_project(project_dir: Path) -> None:
    result = Project.load(project_dir / "mooring.toml").validate()
    assert result.ok
    assert result.train.anomalies == []
    assert result.eval is not None and result.eval.errors == []
    assert (project_dir / ".mooring" / "statistics" / "train.json").is_file()


def test_statistics_are_cached_by_fingerprint(project_dir: Path) -> None:
    project = Project.load(project_dir / "mooring.toml")
    first = project.statistics("train")
    cache = project_dir / ".mooring" / "statistics" / "train.json"
    stamp = cache.stat().st_mtime_ns
    assert project.statistics("train") == first
    assert cache.stat().st_mtime_ns == stamp  # reused, not recomputed


def test_narrowing_override_reads_train_data_again(project_dir: Path) -> None:
    toml = project_dir / "mooring.toml"
    toml.write_text(toml.read_text() + "\n[contract.columns.age]\nmax = 80\n")
    result = Project.load(toml).validate()
    anomaly = result.train.find(AnomalyKind.OUT_OF_RANGE, "age")
    assert anomaly.count == sum(1 for a in _ages(project_dir) if a > 80)
    assert anomaly.severity == "error"  # 'age' is critical in the example project
    assert not result.ok


def test_bad_override_is_a_config_error(project_dir: Path) -> None:
    toml = project_dir / "mooring.toml"
    toml.write_text(toml.read_text() + "\n[contract.columns.age]\nmaximum = 80\n")
    with pytest.raises(ConfigError, match=r"unknown key 'maximum'; did you mean 'max'"):
        Project.load(toml)


def _ages(folder: Path) -> list[int]:
    import gzip

    with gzip.open(folder / "adult.data.csv.gz", "rt") as fh:
        next(fh)
        return [int(line.split(",")[0]) for line in fh if line.strip()]
