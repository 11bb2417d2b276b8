"""The server's prediction log buffers whole batches as columns and writes them off the loop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mooring.formats import _predictions
from mooring.formats._predictions import read_prediction_log, request_rows
from mooring.serving._log import ARROW_ROWS, CATCH_UP, LogTicket, PredictionLog


def test_the_server_log_writes_chunks_that_read_back_as_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    # The writer indexed every file's request ids when it stopped: a request is found
    # by reading the one file that holds it.
    assert len(list(tmp_path.rglob("_ids-*.arrow"))) == 1
    read = []
    real = _predictions._read_columns
    monkeypatch.setattr(
        _predictions, "_read_columns", lambda path, names: read.append(path) or real(path, names)
    )
    for i in range(10):
        read.clear()
        rows = request_rows(str(tmp_path), "income", f"q{i}")
        assert rows.num_rows == 16 and set(rows["age"].to_pylist()) == {30.0 + i}
        assert len(read) == 1


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


def test_the_log_writes_without_importing_pandas_which_still_imports_on_demand(
    tmp_path: Path,
) -> None:
    # A fresh interpreter: this one may have pandas imported already.
    script = f"""
import sys
import numpy as np
from mooring.serving._log import PredictionLog
log = PredictionLog({str(tmp_path)!r}, sample_rate=1.0, flush_rows=1)
log.start()
log.record(model="m", version=1, request_id="r1", columns={{"a": [1.5], "b": ["x"]}},
           outputs={{"p": np.array([0.25], np.float32)}}, rows=1)
log.close()
assert log.written == 1, log.written
assert "pandas" not in sys.modules, "the log imported pandas"
from mooring.formats._predictions import read_prediction_log
frame = read_prediction_log({str(tmp_path)!r}, "m").to_pandas()
assert "pandas" in sys.modules and frame["a"].tolist() == [1.5], frame
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _batch(first: int, requests: int, rows: int = 1) -> dict[str, Any]:
    """A batch as the batcher hands it on: requests ``first``.. of ``rows`` rows each, its
    merged columns (lists, as the decoder leaves them) and the model's outputs."""
    total = requests * rows
    age = [float(first * rows + r) for r in range(total)]
    return {
        "counts": [rows] * requests,
        "columns": {"age": age, "sex": [f"s{(first * rows + r) // rows}" for r in range(total)]},
        "outputs": {"p": np.array(age, np.float32) / 100, "c": np.array(["x"] * total, object)},
    }


def _read_rows(folder: Path) -> tuple[pa.Table, list[tuple[str, float, str]]]:
    """The log of model "income" under ``folder`` and its (request id, age, sex) rows."""
    table = read_prediction_log(str(folder), "income")
    rows = zip(
        table["request_id"].to_pylist(), table["age"].to_pylist(), table["sex"].to_pylist(),
        strict=True,
    )  # fmt: skip
    return table, list(rows)


def test_a_batch_is_one_append_of_its_logged_requests_rows_in_order(tmp_path: Path) -> None:
    """Batches whose requests are all logged, some logged (a sample rate below 1) or none:
    every logged request's rows come back under its id, in order, and its ticket says so."""
    plog = PredictionLog(str(tmp_path), sample_rate=0.5, flush_rows=10, buffer_rows=10_000)
    expected: list[tuple[str, float, str]] = []
    first = 0
    for b in range(20):
        requests, rows = 1 + b % 4, 1 + b % 3
        batch = _batch(first, requests, rows)
        tickets = [
            LogTicket(f"q{first + i}") if (b % 3 == 0 or (first + i) % 2 == 0) else None
            for i in range(requests)
        ]
        if b == 7:
            tickets = [None] * requests  # none of its requests is logged
        buffered = plog.record_batch(model="income", version=1 + b % 2, tickets=tickets, **batch)
        assert buffered == any(tickets)
        for i, ticket in enumerate(tickets):
            if ticket is None:
                continue
            assert ticket.buffered
            n = first + i
            expected += [(f"q{n}", float(n * rows + r), f"s{n}") for r in range(rows)]
        first += requests
    plog.start()  # a backlog: written in files of whole batches
    plog.close()
    assert plog.written == len(expected) and plog.dropped == 0
    table, got = _read_rows(tmp_path)
    assert got == expected
    assert table["output.p"].to_pylist() == pytest.approx([a / 100 for _, a, _ in expected])
    assert table["output.c"].to_pylist() == ["x"] * len(expected)


def test_a_large_batch_is_buffered_as_arrow_and_reads_back_like_a_small_one(
    tmp_path: Path,
) -> None:
    """Batches of at least ARROW_ROWS logged rows are buffered with Arrow columns (no
    Python value per row), smaller ones as the decoder's lists; mixed in one file, every
    row reads back under its request, in order."""
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=10_000)
    expected: list[tuple[str, float, str]] = []
    first = 0
    for b, (requests, rows) in enumerate([(2, 40), (3, 1), (1, ARROW_ROWS), (4, 5), (1, 63)]):
        batch = _batch(first, requests, rows)
        tickets: list[LogTicket | None] = [LogTicket(f"q{first + i}") for i in range(requests)]
        if b == 0:
            tickets[1] = None  # 40 of its 80 rows logged: below ARROW_ROWS
        assert plog.record_batch(model="income", version=1, tickets=tickets, **batch)
        for i, ticket in enumerate(tickets):
            n = first + i
            if ticket is not None:
                expected += [(f"q{n}", float(n * rows + r), f"s{n}") for r in range(rows)]
        first += requests
    kinds = [type(chunk.columns["sex"]) for chunk in plog._chunks]
    assert [k is pa.StringArray for k in kinds] == [False, False, True, False, False]
    assert type(plog._chunks[2].columns["age"]) is pa.DoubleArray
    plog.start()
    plog.close()
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    table, got = _read_rows(tmp_path)
    assert got == expected
    assert table.schema.field("age").type == pa.float64()


def test_a_full_buffer_drops_a_batch_and_its_tickets_say_so(tmp_path: Path) -> None:
    dropped: list[int] = []
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, buffer_rows=10, on_dropped=dropped.append)
    kept = [LogTicket("a"), LogTicket("b")]
    assert plog.record_batch(model="income", version=1, tickets=kept, **_batch(0, 2, 4))
    lost = [LogTicket("c")]
    assert not plog.record_batch(model="income", version=1, tickets=lost, **_batch(2, 1, 4))
    assert [t.buffered for t in kept + lost] == [True, True, False]
    assert plog.dropped == 4 and dropped == [4]


def test_wants_samples_requests_at_the_rate_and_always_takes_a_sampled_one(
    tmp_path: Path,
) -> None:
    plog = PredictionLog(str(tmp_path), sample_rate=0.25, seed=7)
    picks = [plog.wants("income") for _ in range(4000)]
    assert 800 < sum(picks) < 1200
    assert all(plog.wants("income", sampled=True) for _ in range(100))
    off = PredictionLog(str(tmp_path), sample_rate=0.0)
    assert not off.wants("income", sampled=True)  # a log that is off takes nothing
    per_model = PredictionLog({"income": str(tmp_path)}, sample_rate=1.0)
    assert per_model.wants("income") and not per_model.wants("other", sampled=True)
    assert not per_model.record_batch(
        model="other", version=1, tickets=[LogTicket("z")], **_batch(0, 1)
    )


def test_batches_recorded_while_the_writer_takes_them_are_written_once(tmp_path: Path) -> None:
    """The writer takes chunks while the event loop appends (the lock between them): no
    request is lost, none is written twice, and files come in order."""
    plog = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=64, flush_s=0.001)
    plog.start()
    try:
        for b in range(1_000):
            tickets: list[LogTicket | None] = [LogTicket(f"w{b * 5 + i}") for i in range(5)]
            plog.record_batch(model="income", version=1, tickets=tickets, **_batch(b * 5, 5))
            if b % 100 == 0:
                time.sleep(0.002)  # let the writer take chunks meanwhile
    finally:
        plog.close()
    assert plog.written + plog.dropped == 5_000
    ids = read_prediction_log(str(tmp_path), "income")["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == plog.written
    numbers = [int(q[1:]) for q in ids]
    assert sorted(numbers) == numbers  # files in order, rows in order within each
    assert len(list(tmp_path.rglob("*.parquet"))) >= 5_000 // (64 * 8)
