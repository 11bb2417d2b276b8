"""Statistics and validation of sharded Adult data: local, a process pool, and a Ray cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mooring._project import Project
from mooring.cli import main
from mooring.contract._io import ParquetPiece, ReadOptions, read_table
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.contract._validation import validate
from mooring.errors import DataError, MooringError, NotFoundError
from mooring.scale import _shards as shards_module
from mooring.scale._engine import Engine
from mooring.scale._shards import list_shards, plan_pieces
from mooring.scale._statistics import sharded_statistics, sharded_validate
from tests._support.broken_adult import ADULT_TRAIN, adult_sample, csv_bytes
from tests._support.project import edit, write_adult, write_project
from tests._support.ray_cluster import GROUP
from tests._support.s3 import moto_s3
from tests._support.shards import write_csv_shards
from tests._support.waiting import wait_until

OPTIONS = ReadOptions(na_values=("?", ""))


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adult-shards")
    write_csv_shards(folder, 16)
    return folder


@pytest.fixture(scope="module")
def whole() -> DatasetStatistics:
    return compute_statistics(ADULT_TRAIN, OPTIONS)


def assert_same_statistics(a: DatasetStatistics, b: DatasetStatistics, *, exact: bool) -> None:
    """Counts equal; moments equal (to float rounding unless ``exact``); quantiles in bound."""
    assert a.num_rows == b.num_rows
    assert list(a.columns) == list(b.columns)
    for name, x in a.columns.items():
        y = b.columns[name]
        assert (x.type, x.count, x.missing) == (y.type, y.count, y.missing), name
        if x.numeric is not None:
            assert y.numeric is not None
            for key in ("count", "min", "max", "zeros"):
                assert getattr(x.numeric, key) == getattr(y.numeric, key), (name, key)
            if exact:
                assert x.numeric.to_dict() == y.numeric.to_dict(), name
            else:
                assert x.numeric.mean == pytest.approx(y.numeric.mean, rel=1e-12), name
                assert x.numeric.std == pytest.approx(y.numeric.std, rel=1e-9), name
                bound = x.numeric.sketch.rank_error() + y.numeric.sketch.rank_error()
                qs = [i / 20 for i in range(1, 20)]
                # A quantile of one is within the bound's rank distance of the other's.
                cdf = x.numeric.sketch.cdf(y.numeric.quantiles(qs))
                assert all(c >= q - bound for c, q in zip(cdf, qs, strict=True)), name
        if x.strings is not None:
            assert y.strings is not None
            assert x.strings.top(1000) == y.strings.top(1000), name
            assert x.strings.distinct == y.strings.distinct, name


def test_a_folder_lists_its_data_files_in_order(shards: Path) -> None:
    (shards / "_SUCCESS").write_text("")
    (shards / ".part-0000.csv.tmp").write_text("")
    found = list_shards(str(shards))
    assert [Path(p).name for p in found] == [f"part-{i:04d}.csv" for i in range(16)]
    assert list_shards(str(shards / "part-000[0-3].csv")) == found[:4]
    assert list_shards([found[3], found[1], found[3]]) == [found[1], found[3]]


def test_sources_that_name_no_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no file matches"):
        list_shards(str(tmp_path / "*.parquet"))
    with pytest.raises(NotFoundError, match="holds no CSV or Parquet file"):
        list_shards(str(tmp_path))
    with pytest.raises(NotFoundError, match="does not exist"):
        list_shards(str(tmp_path / "nowhere"))


def test_sixteen_shards_on_a_process_pool_equal_one_file(
    shards: Path, whole: DatasetStatistics
) -> None:
    local = sharded_statistics(str(shards), OPTIONS, engine=Engine("local", workers=2))
    assert local.source.endswith("(16 shards)")
    assert_same_statistics(whole, local, exact=False)


def test_shards_on_an_object_store_equal_local_shards(
    shards: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_s3() as endpoint:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,  # read by the pool's processes too
        }.items():
            monkeypatch.setenv(key, value)
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        fs.mkdir("lake")
        for path in sorted(shards.glob("part-000[0-3].csv")):
            fs.put_file(str(path), f"lake/features/{path.name}")
        fs.pipe_file("lake/features/_SUCCESS", b"")
        remote = sharded_statistics("s3://lake/features/", OPTIONS, engine=Engine(workers=2))
        assert remote.source == "s3://lake/features/ (4 shards)"
    local = sharded_statistics(str(shards / "part-000[0-3].csv"), OPTIONS, engine=Engine())
    assert remote.to_dict()["columns"] == local.to_dict()["columns"]


def test_a_large_parquet_file_is_read_in_pieces_by_several_workers(
    tmp_path: Path, whole: DatasetStatistics, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "adult.parquet"
    pq.write_table(read_table(ADULT_TRAIN, OPTIONS), path, row_group_size=4000)  # 9 groups
    monkeypatch.setattr(shards_module, "PIECE_ROWS", 10_000)
    pieces = plan_pieces([str(path)])
    assert pieces == [
        ParquetPiece(str(path), (0, 1, 2)),
        ParquetPiece(str(path), (3, 4, 5)),
        ParquetPiece(str(path), (6, 7, 8)),
    ]
    pooled = sharded_statistics(str(path), OPTIONS, engine=Engine(workers=2))
    assert_same_statistics(whole, pooled, exact=False)
    # A small file, or one row group, stays whole.
    monkeypatch.setattr(shards_module, "PIECE_ROWS", 1_000_000)
    assert plan_pieces([str(path)]) == [str(path)]


def test_shards_with_numbers_in_one_and_text_in_another_are_refused(tmp_path: Path) -> None:
    header, rows = adult_sample(40)
    (tmp_path / "a.csv").write_bytes(csv_bytes(header, rows[:20]))
    bad = [["forty", *r[1:]] for r in rows[20:]]
    (tmp_path / "b.csv").write_bytes(csv_bytes(header, bad))
    with pytest.raises(DataError, match=r"column 'age' holds number values in shard .*a\.csv"):
        sharded_statistics(str(tmp_path), OPTIONS, engine=Engine("local", workers=2))


def test_an_unreadable_shard_is_named(tmp_path: Path) -> None:
    header, rows = adult_sample(40)
    (tmp_path / "a.csv").write_bytes(csv_bytes(header, rows))
    (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"b\.parquet' is not a readable Parquet file"):
        sharded_statistics(str(tmp_path), OPTIONS, engine=Engine("local", workers=2))


def test_the_cli_validates_shards_on_a_process_pool(
    shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "schema.yaml"
    stats = tmp_path / "stats.json"
    assert main(["stats", str(ADULT_TRAIN), "--na-value", "?", "--out", str(stats)]) == 0
    assert main(["schema", "infer", str(stats), "--label", "class", "--out", str(schema)]) == 0
    capsys.readouterr()
    pattern = str(shards / "part-000[0-7].csv")
    argv = ["validate", pattern, str(shards / "part-0015.csv"), "--schema", str(schema)]
    assert main([*argv, "--na-value", "?", "--workers", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["source"].endswith("(9 shards)")
    assert main(["stats", str(shards / "nothing-*.csv")]) == 2
    assert "no file matches" in capsys.readouterr().err


class Rendezvous:
    """Records its process, then waits (up to two minutes) until ``parties`` processes have.

    An item only returns once that many distinct processes each hold one, so a pool
    that ran every item in one process times out instead of passing by luck.
    """

    def __init__(self, folder: Path, parties: int) -> None:
        self.folder = folder
        self.parties = parties

    def __call__(self, item: int) -> int:
        (self.folder / str(os.getpid())).touch()

        def arrived() -> int:
            return len(list(self.folder.iterdir()))

        wait_until(lambda: arrived() >= self.parties, f"{self.parties} worker processes",
                   interval=0.01, seen=arrived)  # fmt: skip
        return os.getpid()


def test_a_two_worker_pool_runs_items_in_two_processes(tmp_path: Path) -> None:
    pids = Engine("local", workers=2).map(Rendezvous(tmp_path, parties=2), [0, 1])
    assert len(set(pids)) == 2
    assert os.getpid() not in pids
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(str(p) for p in pids)


class DiesOnce:
    """Squares a number; the first time it meets ``3``, kills its own worker process."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, item: int) -> int:
        if item == 3 and not self.marker.exists():
            self.marker.write_text("died once")
            os._exit(1)
        return item * item


def test_a_pool_worker_killed_mid_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MooringError, match=r"a worker process died \(killed, or out of memory\)"):
        Engine(workers=2).map(DiesOnce(tmp_path / "died"), list(range(8)))


@pytest.mark.slow
@pytest.mark.xdist_group(GROUP)
class TestRay:
    def test_a_task_whose_worker_dies_is_run_again(self, ray_address: str, tmp_path: Path) -> None:
        marker = tmp_path / "died"
        squares = Engine("ray", address=ray_address).map(DiesOnce(marker), list(range(8)))
        assert squares == [i * i for i in range(8)]
        assert marker.read_text() == "died once"

    def test_the_cli_computes_statistics_on_ray(
        self, ray_address: str, shards: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        argv = ["stats", str(shards), "--na-value", "?", "--json"]
        assert main([*argv, "--engine", "ray", "--ray-address", ray_address]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["num_rows"] == 32_561 and data["columns"]["workclass"]["missing"] == 1_836

    def test_sixteen_shards_on_ray_equal_the_local_engine_exactly(
        self, ray_address: str, shards: Path, whole: DatasetStatistics
    ) -> None:
        engine = Engine("ray", address=ray_address)
        on_ray = sharded_statistics(str(shards), OPTIONS, engine=engine)
        local = sharded_statistics(str(shards), OPTIONS, engine=Engine("local", workers=1))
        assert on_ray.to_dict() == local.to_dict()
        assert_same_statistics(whole, on_ray, exact=False)

    def test_validation_on_ray_flags_the_same_anomalies_as_one_file(
        self, ray_address: str, tmp_path: Path, whole: DatasetStatistics
    ) -> None:
        schema = infer_schema(whole, label="class")
        header, rows = adult_sample(4000)
        broken = [list(r) for r in rows]
        for r in broken[::7]:
            r[0] = "400"  # out of range
        for r in broken[::11]:
            r[4] = "ten"  # not a number
        for r in broken[::13]:
            r[9] = "Unknown"  # outside the domain
        one = tmp_path / "one.csv"
        one.write_bytes(csv_bytes(header, broken))
        folder = tmp_path / "shards"
        folder.mkdir()
        for i in range(16):
            part = broken[i * 250 : (i + 1) * 250]
            (folder / f"part-{i:02d}.csv").write_bytes(csv_bytes(header, part))
        expected = validate(one, schema, options=OPTIONS)
        got = sharded_validate(
            str(folder), schema, options=OPTIONS, engine=Engine("ray", address=ray_address)
        )
        assert not expected.ok
        assert [a.to_dict() for a in got.anomalies] == [a.to_dict() for a in expected.anomalies]

    def test_an_error_in_a_shard_comes_back_as_the_same_error(
        self, ray_address: str, tmp_path: Path
    ) -> None:
        header, rows = adult_sample(40)
        (tmp_path / "a.csv").write_bytes(csv_bytes(header, rows))
        (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not parquet")
        with pytest.raises(DataError, match=r"b\.parquet' is not a readable Parquet file"):
            sharded_statistics(str(tmp_path), OPTIONS, engine=Engine("ray", address=ray_address))

    def test_the_pipeline_validate_step_on_ray_equals_local(
        self, ray_address: str, tmp_path: Path
    ) -> None:
        data = write_adult(tmp_path / "data", train_rows=3000, test_rows=1000)
        toml = write_project(tmp_path / "local", data)
        local = Project.load(toml).validate()
        ray_toml = write_project(tmp_path / "ray", data)
        edit(
            ray_toml,
            r'home = "state"',
            f'home = "state"\nengine = "ray"\nray_address = "{ray_address}"',
        )
        on_ray = Project.load(ray_toml).validate()
        assert on_ray.ok == local.ok
        assert on_ray.statistics.to_dict() == local.statistics.to_dict()
        for a, b in zip(on_ray.results, local.results, strict=True):
            assert [x.to_dict() for x in a.anomalies] == [x.to_dict() for x in b.anomalies]
