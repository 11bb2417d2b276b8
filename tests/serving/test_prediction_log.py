"""The server's prediction log buffers whole requests as columns and writes them off the loop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from mooring.formats.columns import columns_from_rows, loads
from mooring.formats.log_chunks import rows_schema
from mooring.formats.model import TensorInfo
from mooring.formats.predictions import read_prediction_log
from mooring.serving import log as serving_log
from mooring.serving.log import CATCH_UP, PredictionLog


def test_the_server_log_writes_chunks_that_read_back_as_rows(tmp_path: Path) -> None:
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=64, flush_s=0.05)
    plog.start()
    for i in range(10):
        plog.record(
            model="income",
            version=1,
            request_id=f"q{i}",
            columns={"age": np.full(16, 30.0 + i, dtype=np.float32), "sex": ["Male"] * 16},
            outputs={"score": np.full(16, 0.5)},
            rows=16,
        )
    plog.close()
    table = read_prediction_log(str(tmp_path), "income")
    assert plog.written == table.num_rows == 160 and plog.dropped == 0
    assert sorted(set(table["request_id"].to_pylist())) == sorted(f"q{i}" for i in range(10))
    # Whole requests per file (16 rows each); a backlog is written in larger files, up to
    # CATCH_UP × flush_rows rows.
    files = sorted(tmp_path.rglob("*.parquet"))
    sizes = [pq.read_metadata(f).num_rows for f in files]
    assert sum(sizes) == 160 and all(n % 16 == 0 and n <= CATCH_UP * 64 for n in sizes)


def test_a_backlog_is_written_in_fewer_larger_files(tmp_path: Path) -> None:
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=100, buffer_rows=10_000)
    for i in range(200):  # the writer is not started: a backlog of 2,000 rows builds up
        plog.record(
            model="income",
            version=1,
            request_id=f"b{i}",
            columns={"age": np.full(10, float(i), dtype=np.float32)},
            outputs={"score": np.full(10, 0.5)},
            rows=10,
        )
    plog.start()
    plog.close()
    sizes = sorted(pq.read_metadata(f).num_rows for f in tmp_path.rglob("*.parquet"))
    assert sum(sizes) == 2000 and max(sizes) == CATCH_UP * 100
    assert len(sizes) < 2000 // 100  # fewer files than flush_rows alone would make
    table = read_prediction_log(str(tmp_path), "income")
    assert table["request_id"].to_pylist()[::10] == [f"b{i}" for i in range(200)]


def _single_rows(plog: PredictionLog, count: int, prefix: str) -> None:
    for i in range(count):
        plog.record(
            model="income",
            version=1,
            request_id=f"{prefix}{i}",
            columns={"age": [float(i)]},
            outputs={"score": np.array([0.5])},
            rows=1,
        )


def test_a_file_holds_at_most_file_requests_requests_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Single-row requests: the request cap, not flush_rows, bounds each file.
    monkeypatch.setattr(serving_log, "FILE_REQUESTS", 50)
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=1000, buffer_rows=10_000)
    _single_rows(plog, 230, "s")  # a backlog: the writer is not started
    plog.start()
    plog.close()
    files = sorted(tmp_path.rglob("*.parquet"))
    sizes = sorted(pq.read_metadata(f).num_rows for f in files)
    assert sizes == [30, 50, 50, 50, 50]
    table = read_prediction_log(str(tmp_path), "income")
    assert table["request_id"].to_pylist() == [f"s{i}" for i in range(230)]
    assert table["age"].to_pylist() == [float(i) for i in range(230)]


def test_the_writer_wakes_for_file_requests_before_flush_rows_or_flush_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving_log, "FILE_REQUESTS", 40)
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=10_000, flush_s=600.0)
    plog.start()
    try:
        _single_rows(plog, 100, "w")
        deadline = time.monotonic() + 30
        while plog.written < 80 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Two files of 40 written long before flush_s; the last 20 wait for more.
        assert plog.written == 80
    finally:
        plog.close()
    assert plog.written == 100 and plog.dropped == 0


def test_the_log_writes_without_importing_pandas_which_still_imports_on_demand(
    tmp_path: Path,
) -> None:
    # A fresh interpreter: this one may have pandas imported already.
    script = f"""
import sys
import numpy as np
from mooring.serving.log import PredictionLog
log = PredictionLog({str(tmp_path)!r}, sample_rate=1.0, flush_rows=1)
log.start()
log.record(model="m", version=1, request_id="r1", columns={{"a": [1.5], "b": ["x"]}},
           outputs={{"p": np.array([0.25], np.float32)}}, rows=1)
log.close()
assert log.written == 1, log.written
assert "pandas" not in sys.modules, "the log imported pandas"
from mooring.formats.predictions import read_prediction_log
frame = read_prediction_log({str(tmp_path)!r}, "m").to_pandas()
assert "pandas" in sys.modules and frame["a"].tolist() == [1.5], frame
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


class _Rows:
    """What a loaded version gives the log for its row-format bodies (``LoggedRows``)."""

    inputs: ClassVar[dict[str, TensorInfo]] = {
        "age": TensorInfo(name="age", dtype="float32", shape=(None,)),
        "sex": TensorInfo(name="sex", dtype="string", shape=(None,)),
    }
    log_schema = rows_schema({"age": "float32", "sex": "string"})

    def log_columns(self, body: bytes) -> dict[str, Any]:
        columns, _ = columns_from_rows(
            loads(body)["instances"], self.inputs, where="instances", arrays=False
        )
        return columns


def _body(i: int, rows: int = 1) -> bytes:
    return orjson.dumps({"instances": [{"age": i + r, "sex": f"s{i}"} for r in range(rows)]})


def test_row_bodies_are_buffered_in_runs_and_read_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies, column chunks and a second version interleave; every file holds at most
    FILE_REQUESTS requests and the log reads back request by request, in order."""
    monkeypatch.setattr(serving_log, "FILE_REQUESTS", 7)
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=12, buffer_rows=10_000)
    rows_of, expected = _Rows(), []
    for i in range(60):
        rows = 1 + i % 3
        outputs = {"p": np.full(rows, i / 100, np.float32), "c": np.array(["x"] * rows, object)}
        fields = {"model": "income", "request_id": f"q{i}", "outputs": outputs, "rows": rows}
        if i % 11 == 5:  # a request kept as its columns (a column-format body, gRPC)
            columns = {"age": [float(i + r) for r in range(rows)], "sex": [f"s{i}"] * rows}
            assert plog.record(version=1, columns=columns, **fields)
        else:
            version = 2 if i % 13 == 0 else 1
            assert plog.record(
                version=version, columns={}, body=_body(i, rows), rows_of=rows_of, **fields
            )
        expected += [(f"q{i}", float(i + r), f"s{i}", np.float32(i / 100)) for r in range(rows)]
    plog.start()  # a backlog: written in files of whole requests
    plog.close()
    assert plog.written == len(expected) and plog.dropped == 0
    for f in tmp_path.rglob("*.parquet"):
        assert len(set(pq.read_table(f, columns=["request_id"]).column(0).to_pylist())) <= 7
    table = read_prediction_log(str(tmp_path), "income")
    got = list(
        zip(
            table["request_id"].to_pylist(),
            table["age"].to_pylist(),
            table["sex"].to_pylist(),
            table["output.p"].to_pylist(),
            strict=True,
        )
    )
    assert got == [(q, a, s, pytest.approx(float(p))) for q, a, s, p in expected]
    assert table["output.c"].to_pylist() == ["x"] * len(expected)
    versions = dict(
        zip(table["request_id"].to_pylist(), table["model_version"].to_pylist(), strict=True)
    )
    assert {q for q, v in versions.items() if v == 2} == {"q0", "q13", "q26", "q39", "q52"}


def test_bodies_recorded_while_the_writer_takes_them_are_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes the run the event loop is still adding to (the lock between them):
    no request is lost, none is written twice."""
    monkeypatch.setattr(serving_log, "FILE_REQUESTS", 64)
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=10_000, flush_s=0.001)
    plog.start()
    rows_of = _Rows()
    try:
        for i in range(5_000):
            plog.record(
                model="income",
                version=1,
                request_id=f"w{i}",
                columns={},
                outputs={"p": np.array([0.5], np.float32)},
                rows=1,
                body=_body(i),
                rows_of=rows_of,
            )
            if i % 500 == 0:
                time.sleep(0.002)  # let the writer take a run being filled
    finally:
        plog.close()
    assert plog.written + plog.dropped == 5_000
    ids = read_prediction_log(str(tmp_path), "income")["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == plog.written
    numbers = [int(q[1:]) for q in ids]
    assert sorted(numbers) == numbers  # files in order, rows in order within each
    assert len(list(tmp_path.rglob("*.parquet"))) > 5_000 // 64
