"""``mooring score`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mooring.cli import main
from tests._support.broken_adult import adult_sample, csv_bytes, map_column
from tests._support.scoring import ScoringProject, make_project, write_shards
from tests._support.serving_model import build_model_dir


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ScoringProject:
    root = tmp_path_factory.mktemp("score-cli")
    return make_project(root / "project", build_model_dir(root / "model"))


def test_score_writes_one_file_per_shard_and_a_summary(
    project: ScoringProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_shards(tmp_path / "data", 3, 90)
    header, rows = adult_sample(5)
    rows = map_column(header, rows, "age", lambda n, v: "forty" if n == 1 else v)
    (tmp_path / "data" / "odd.csv").write_bytes(csv_bytes(header, rows))
    out = tmp_path / "scores"
    args = ["score", "-c", str(project.config), "--data", str(tmp_path / "data"), "--out", str(out)]
    assert main([*args, "--workers", "1", "--key", "fnlwgt", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["shards"], summary["scored"], summary["rejected"]) == (4, 94, 1)
    assert summary["version"] == 1 and len(summary["manifest_sha256"]) == 64
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "odd.parquet", "part-0000.parquet", "part-0001.parquet", "part-0002.parquet",
    ]  # fmt: skip
    assert pq.read_table(out / "part-0001.parquet").column_names == [
        "fnlwgt", "output.class_ids", "output.classes", "output.probabilities",
        "model", "model_version", "manifest_sha256",
    ]  # fmt: skip
    assert "age[1]" in pq.read_table(out / "_rejects" / "odd.parquet")["reason"][0].as_py()

    # Again: every shard is done; with --fail-on-reject the earlier rejects fail the run.
    assert main([*args, "--workers", "1", "--key", "fnlwgt", "--fail-on-reject"]) == 1
    captured = capsys.readouterr()
    assert "skipped 4 shard(s)" in captured.out and "1 row(s) rejected" in captured.out
    assert "4/4" in captured.err  # the progress bar: shards done


def test_unknown_version_is_one_line_without_a_traceback(
    project: ScoringProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_shards(tmp_path / "data", 1, 10)
    code = main(
        ["score", "-c", str(project.config), "--version", "9", "--data", str(tmp_path / "data"),
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "version 9" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
