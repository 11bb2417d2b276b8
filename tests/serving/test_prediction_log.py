"""The server's prediction log buffers whole requests as columns and writes them off the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mooring.formats.predictions import read_prediction_log
from mooring.serving.log import PredictionLog


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
    # Whole requests per file: 64 rows = 4 requests.
    files = sorted(tmp_path.rglob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files].count(64) == 2
