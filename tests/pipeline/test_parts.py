"""The pipeline's small parts: fingerprints, the step cache, cost, label guessing, the log tail."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring._scaffold import guess_label
from mooring.errors import UsageError
from mooring.pipeline._cache import StepCache
from mooring.pipeline._cost import run_cost
from mooring.pipeline._fingerprint import code_version, digest
from mooring.pipeline._record import STEPS, Meter
from mooring.pipeline._replay import read_prediction_tail
from mooring.pipeline._steps import PIPELINE, step_name

# Fingerprint inputs are JSON values from configs and hashes: 64-bit integers at most.
ints = st.integers(min_value=-(2**62), max_value=2**62)
json_values = st.recursive(
    st.none() | st.booleans() | ints | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_digest_ignores_key_order(mapping: dict[str, object]) -> None:
    reordered = dict(reversed(list(mapping.items())))
    assert digest(mapping) == digest(reordered)


@given(st.dictionaries(st.text(max_size=8), ints, min_size=1, max_size=6))
def test_digest_sees_every_value(mapping: dict[str, int]) -> None:
    key = next(iter(mapping))
    assert digest(mapping) != digest({**mapping, key: mapping[key] + 1})


def test_code_version_names_the_package_and_the_source() -> None:
    source = code_version("source")
    package = code_version("package")
    assert package["code_version"] == source["mooring"]
    assert source["code_version"] == f"{source['mooring']}+src.{source['source_sha256'][:12]}"
    assert len(source["source_sha256"]) == 64


def test_step_cache_round_trip_and_misses(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    assert cache.get("train", "k1") is None
    cache.put("train", "k1", {"model_dir": "m"}, run_id="r1")
    entry = cache.get("train", "k1")
    assert entry is not None and entry["outputs"] == {"model_dir": "m"} and entry["run_id"] == "r1"
    (tmp_path / "train" / "k2.json").write_text("{not json")
    assert cache.get("train", "k2") is None  # an unreadable entry is a miss, not an error
    assert StepCache(tmp_path, enabled=False).get("train", "k1") is None


def test_run_cost_prices_cpu_hours() -> None:
    cost = run_cost(cpu_seconds=7200.0, train_cpu_seconds=1800.0, price=0.04)
    assert cost["cpu_hours"] == 2.0
    assert cost["run_cost"] == pytest.approx(0.08)
    assert cost["training_cost"] == pytest.approx(0.02)
    unpriced = run_cost(cpu_seconds=10.0, train_cpu_seconds=5.0, price=None)
    assert unpriced["run_cost"] is None and unpriced["training_cost"] is None


def test_meter_counts_cpu_of_this_process() -> None:
    meter = Meter().start()
    sum(i * i for i in range(300_000))
    wall, cpu = meter.stop()
    assert wall > 0 and cpu > 0


def test_guess_label() -> None:
    assert guess_label(["a", "income", "b"]) == ("income", "named like a label ('income')")
    assert guess_label(["x", "Y"]) == ("Y", "named like a label ('y')")
    assert guess_label(["a", "b", "c"]) == ("c", "the last column")
    with pytest.raises(UsageError, match="no columns"):
        guess_label([])


def _log_file(folder: Path, day: str, stamp: int, model: str, rows: range) -> None:
    part = folder / f"date={day}"
    part.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "request_id": [f"r{i}" for i in rows],
            "timestamp": [datetime(2030, 1, 1, tzinfo=UTC)] * len(rows),
            "model": [model] * len(rows),
            "model_version": [1] * len(rows),
            "age": [float(i) for i in rows],
        }
    )
    pq.write_table(table, part / f"part-{stamp}-abcd1234.parquet")


def test_prediction_tail_reads_the_newest_rows_of_one_model(tmp_path: Path) -> None:
    assert read_prediction_tail(str(tmp_path / "none"), "income", rows=10) is None
    _log_file(tmp_path, "2030-01-01", 1000, "income", range(0, 50))
    _log_file(tmp_path, "2030-01-02", 1000, "income", range(50, 80))
    _log_file(tmp_path, "2030-01-02", 2000, "other", range(80, 90))
    _log_file(tmp_path, "2030-01-02", 3000, "income", range(90, 100))
    tail = read_prediction_tail(str(tmp_path), "income", rows=25)
    assert tail is not None
    assert tail.column("age").to_pylist() == [float(i) for i in [*range(65, 80), *range(90, 100)]]
    everything = read_prediction_tail(str(tmp_path), "income", rows=1000)
    assert everything is not None and everything.num_rows == 90
    assert read_prediction_tail(str(tmp_path), "missing", rows=5) is None


def test_the_pipeline_is_its_steps_in_order() -> None:
    assert tuple(step_name(step) for step in PIPELINE) == STEPS


def test_library_entry_point_exits_2_with_one_line_on_a_bad_config(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    done = subprocess.run(
        [sys.executable, "-m", "mooring.pipeline", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "absent.toml" in lines[0]
