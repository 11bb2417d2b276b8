"""Batch scoring over shards: the server's predictions and door, resuming, engines, the log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import mooring.scale._score as score_module
from mooring.errors import DataError, NotFoundError, UsageError
from mooring.formats._predictions import read_prediction_log
from mooring.monitoring import check_drift
from mooring.registry import Registry
from mooring.scale._engine import Engine
from mooring.scale._score import ScoreSummary, score_shards
from mooring.serving._loaded import ServedModel
from tests._support.broken_adult import adult_sample, csv_bytes, drop_column, map_column
from tests._support.ray_cluster import GROUP
from tests._support.scoring import (
    NAME,
    CrashOnceScorer,
    ScoringProject,
    load_version,
    make_project,
    request_rows,
    served_predictions,
    write_shards,
)
from tests._support.serving_model import build_model_dir

SHARDS = 16
ROWS = 1600
#: Scoring in the calling process: for the tests of what is scored, not of the pool (each
#: pool worker starts its own TensorFlow; the first test's pool of two checks the pool).
IN_PROCESS = Engine("local", workers=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("score-model") / "model")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> ScoringProject:
    return make_project(tmp_path_factory.mktemp("score-project"), model_dir)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> ScoringProject:
    """The same version, served with unseen categories refused at the door."""
    root = tmp_path_factory.mktemp("score-strict")
    return make_project(root, model_dir, serving='unseen_category = "reject"\n')


@pytest.fixture(scope="module")
def version(project: ScoringProject) -> ServedModel:
    return load_version(project)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_shards(tmp_path_factory.mktemp("score-shards"), SHARDS, ROWS)


@pytest.fixture
def registry(project: ScoringProject) -> Iterator[Registry]:
    with project.registry() as reg:
        yield reg


def _run(project: ScoringProject, registry: Registry, **kwargs: Any) -> ScoreSummary:
    return score_shards(project.cfg(), registry, **kwargs)


def _assert_served(out: Path, shards: list[Path], version: ServedModel, sha: str) -> None:
    """Every shard's output holds exactly what the server answers for its rows."""
    for shard in shards:
        table = pq.read_table(out / f"{shard.stem}.parquet")
        expected = served_predictions(version, request_rows(shard))
        assert table["row"].to_pylist() == list(range(len(expected["classes"])))
        assert set(table["shard"].to_pylist()) == {shard.stem}
        got = np.array(table["output.probabilities"].to_pylist(), dtype=np.float32)
        assert got.tobytes() == expected["probabilities"].tobytes()  # bit for bit
        assert table["output.class_ids"].to_pylist() == expected["class_ids"].tolist()
        assert table["output.classes"].to_pylist() == expected["classes"].tolist()
        assert set(table["model_version"].to_pylist()) == {1}
        assert set(table["manifest_sha256"].to_pylist()) == {sha}


def test_local_pool_scores_as_the_server_and_a_rerun_skips_finished_shards(
    project: ScoringProject,
    registry: Registry,
    version: ServedModel,
    shards: list[Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scores"
    seen: list[str] = []
    summary = _run(
        project,
        registry,
        data=str(shards[0].parent),
        out=str(out),
        engine=Engine("local", workers=2),
        on_shard=lambda s: seen.append(s.name),
    )
    # The worker processes print none of TensorFlow's notes (Adult's 'capital-gain'
    # made a Python-safe name), as the command itself does not.
    assert "WARNING:absl" not in capfd.readouterr().err
    sha = registry.get(NAME, version=1).manifest_sha256
    assert (summary.version, summary.manifest_sha256) == (1, sha)
    assert (summary.scored, summary.rejected, summary.skipped) == (ROWS, 0, 0)
    assert sorted(seen) == [s.stem for s in shards]
    assert summary.contract == "statistics"
    _assert_served(out, shards, version, sha)
    marker = json.loads((out / "_done" / "part-0003.json").read_text())
    assert marker["version"] == 1 and marker["manifest_sha256"] == sha
    assert marker["scored"] == ROWS // SHARDS and marker["fingerprint"].startswith("size=")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    again = _run(project, registry, data=str(shards[0].parent), out=str(out), version="1")
    assert (again.skipped, again.scored) == (SHARDS, ROWS)  # counts come from the markers
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # A changed shard is scored again; the others stay done.
    changed = tmp_path / "changed"
    changed.mkdir()
    for shard in shards[:3]:
        (changed / shard.name).write_bytes(shard.read_bytes())
    first = _run(project, registry, data=str(changed), out=str(tmp_path / "c"), engine=IN_PROCESS)
    assert first.skipped == 0
    header, rows = adult_sample(ROWS // SHARDS)
    (changed / shards[1].name).write_bytes(csv_bytes(header, rows[:7]))
    second = _run(project, registry, data=str(changed), out=str(tmp_path / "c"), engine=IN_PROCESS)
    assert [s.status for s in second.shards] == ["skipped", "scored", "skipped"]
    assert second.shards[1].scored == 7


def test_broken_rows_are_rejected_with_the_reason_and_the_rest_scored(
    strict: ScoringProject, version: ServedModel, tmp_path: Path
) -> None:
    header, rows = adult_sample(60)
    rows = map_column(header, rows, "age", lambda n, v: "forty" if n in (3, 17) else v)
    rows = map_column(header, rows, "workclass", lambda n, v: "Unicorn" if n == 5 else v)
    rows = map_column(header, rows, "hours-per-week", lambda n, v: "999" if n == 8 else v)
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.csv").write_bytes(csv_bytes(header, rows))
    (data / "no-sex.csv").write_bytes(csv_bytes(*drop_column(header, rows[:4], "sex")))
    out = tmp_path / "out"
    with strict.registry() as reg:
        summary = score_shards(
            strict.cfg(),
            reg,
            data=str(data),
            out=str(out),
            key_columns=["fnlwgt"],
            engine=IN_PROCESS,
        )
    broken, no_sex = summary.shards
    assert (broken.rows, broken.scored, broken.rejected) == (60, 57, 3)
    # 999 hours is outside the contract too, but [serving] out_of_range serves it: scored.
    assert broken.violations == 1
    assert (no_sex.scored, no_sex.rejected) == (0, 4)

    rejects = pq.read_table(out / "_rejects" / "broken.parquet").to_pylist()
    assert [r["row"] for r in rejects] == [3, 5, 17]
    assert (
        rejects[0]["reason"]
        == "age[3]: expected a number (or null for missing), got string 'forty'"
    )
    assert rejects[0]["age"] == "forty" and rejects[0]["class"] == rows[3][-1]
    assert "input 'workclass'" in rejects[1]["reason"] and "'Unicorn'" in rejects[1]["reason"]
    assert "unseen_category" in rejects[1]["reason"]
    missing = pq.read_table(out / "_rejects" / "no-sex.parquet").to_pylist()
    assert [r["row"] for r in missing] == [0, 1, 2, 3]
    assert "missing field 'sex'" in missing[0]["reason"]

    # The good rows are scored as the server scores them.
    table = pq.read_table(out / "broken.parquet")
    kept = [r for i, r in enumerate(rows) if i not in (3, 5, 17)]
    (tmp_path / "good.csv").write_bytes(csv_bytes(header, kept))
    expected = served_predictions(version, request_rows(tmp_path / "good.csv"))
    got = np.array(table["output.probabilities"].to_pylist(), dtype=np.float32)
    assert got.tobytes() == expected["probabilities"].tobytes()
    assert table["fnlwgt"].to_pylist() == [int(r[header.index("fnlwgt")]) for r in kept]
    assert pq.read_table(out / "no-sex.parquet").num_rows == 0


def test_log_feeds_the_prediction_log_and_drift(
    project: ScoringProject, registry: Registry, shards: list[Path], tmp_path: Path
) -> None:
    cfg = project.cfg()
    summary = score_shards(
        cfg,
        registry,
        data=[str(s) for s in shards[:4]],
        out=str(tmp_path),
        log=True,
        engine=IN_PROCESS,
    )
    assert summary.logged == summary.scored == 4 * ROWS // SHARDS
    logged = read_prediction_log(str(cfg.home / "predictions"), NAME, version=1)
    batch = [r for r in logged["request_id"].to_pylist() if r.startswith("batch.")]
    assert len(batch) == len(set(batch)) == summary.scored
    assert f".{shards[2].stem}.7" in " ".join(batch)
    assert {"age", "workclass", "output.probabilities", "shadow"} <= set(logged.column_names)
    assert len(set(logged["timestamp"].to_pylist())) == 1  # one batch window
    report = check_drift(cfg, registry, write=False)
    assert report.version == 1 and report.window["rows"] == summary.scored


def test_unknown_version_and_colliding_keys_are_named(
    project: ScoringProject, registry: Registry, shards: list[Path], tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match="7"):
        _run(project, registry, data=str(shards[0]), out=str(tmp_path), version=7)
    with pytest.raises(UsageError, match="collides with a column score writes"):
        _run(project, registry, data=str(shards[0]), out=str(tmp_path), key_columns=["model"])
    with pytest.raises(NotFoundError, match="does not exist"):
        _run(project, registry, data=str(tmp_path / "nowhere"), out=str(tmp_path))


@pytest.mark.slow
@pytest.mark.xdist_group(GROUP)
def test_ray_actor_pool_survives_a_worker_killed_mid_run(
    ray_address: str,
    project: ScoringProject,
    registry: Registry,
    version: ServedModel,
    shards: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for shard in shards:
        (data / shard.name).write_bytes(shard.read_bytes())
    # The actor that meets part-0005 first dies with it (os._exit); Ray restarts it.
    monkeypatch.setattr(score_module, "ShardScorer", CrashOnceScorer)
    out = tmp_path / "out"
    summary = _run(
        project,
        registry,
        data=str(data),
        out=str(out),
        engine=Engine("ray", workers=2, address=ray_address),
    )
    assert (data / ".crashed-once").is_file()
    assert summary.retried == 1
    assert (summary.scored, summary.rejected, summary.skipped) == (ROWS, 0, 0)
    assert all(s.status == "scored" for s in summary.shards)
    sha = registry.get(NAME, version=1).manifest_sha256
    _assert_served(out, sorted(data.glob("*.csv")), version, sha)


def test_a_failed_shard_raises_its_own_error_after_the_others_are_written(
    project: ScoringProject, registry: Registry, shards: list[Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for shard in shards[:2]:
        (data / shard.name).write_bytes(shard.read_bytes())
    (data / "part-9999.csv").write_bytes(b"\x00\xff not, a\n\x00csv")
    out = tmp_path / "out"
    # Its own class (DataError), not only the base: the class travels in the pool's outcome.
    said = r"part-9999\.csv' does not look like delimited text.*\(1 of 3 shards failed; the"
    with pytest.raises(DataError, match=said):
        _run(project, registry, data=str(data), out=str(out), engine=IN_PROCESS)
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        f"{s.stem}.parquet" for s in shards[:2]
    ]
