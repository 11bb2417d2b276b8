"""The prediction log's files appear whole or not at all, whoever reads them and when."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mooring.errors import DataError, NotFoundError
from mooring.formats import _predictions
from mooring.formats._predictions import (
    CLIENT_REQUEST_ID,
    RequestIndex,
    append_request_rows,
    feature_table,
    find_request_ids,
    log_files,
    log_rows_table,
    read_log_file,
    read_prediction_log,
    request_rows,
    write_log_file,
    write_log_table,
)
from tests._support.waiting import wait_until


def batch(rows: int, tag: str, client: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(rows // 50):
        append_request_rows(
            out,
            model="income",
            version=1,
            request_id=f"{tag}-{i}",
            timestamp=datetime.now(UTC),
            columns={"age": np.arange(50, dtype=np.float32), "sex": ["Male"] * 50},
            outputs={"score": np.linspace(0, 1, 50)},
            rows=50,
            client_request_id=client,
        )
    return out


def test_a_log_written_before_client_request_ids_still_reads_everywhere(tmp_path: Path) -> None:
    """Files without the ``client_request_id`` column (written before it existed) read as
    they did; read with newer files, their rows have it null."""
    url = str(tmp_path / "predictions")
    old = log_rows_table(batch(100, "old")).drop_columns([CLIENT_REQUEST_ID])
    write_log_table(url, old, datetime.now(UTC))
    (old_file,) = log_files(url)
    assert CLIENT_REQUEST_ID not in read_log_file(old_file, "income").column_names
    alone = read_prediction_log(url, "income")
    assert alone.num_rows == 100 and set(alone["request_id"].to_pylist()) == {"old-0", "old-1"}
    assert feature_table(alone).column_names == ["age", "sex"]
    assert find_request_ids(url, "income", ["old-1", "nope"]) == {"old-1"}

    write_log_file(url, batch(100, "new", client="mine"))
    both = read_prediction_log(url, "income")
    assert both.num_rows == 200 and both.schema.field(CLIENT_REQUEST_ID).type == pa.string()
    by_request = dict(
        zip(both["request_id"].to_pylist(), both[CLIENT_REQUEST_ID].to_pylist(), strict=True)
    )
    assert by_request == {"old-0": None, "old-1": None, "new-0": "mine", "new-1": "mine"}
    # The client's id is a log column, not a feature drift would compare.
    assert feature_table(both).column_names == ["age", "sex"]
    # Labels join on the server's id only: a client's id is not one the log holds.
    assert find_request_ids(url, "income", ["new-0", "mine"]) == {"new-0"}


def test_a_reader_scanning_while_the_writer_writes_sees_only_whole_files(tmp_path: Path) -> None:
    url = str(tmp_path / "predictions")
    write_log_file(url, batch(2000, "first"))
    files = 40
    reads = 0
    done = threading.Event()

    def writer() -> None:
        for n in range(files):
            if n < 3:  # a read between the first files, however the threads are scheduled
                wait_until(lambda n=n: reads > n or done.is_set(), f"a read before file {n}",
                           interval=0.001)  # fmt: skip
            write_log_file(url, batch(2000, f"w{n}"))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # The newest files, the ones being written, are read first.
        while thread.is_alive():
            assert read_prediction_log(url, "income", last=4000).num_rows in (2000, 4000)
            reads += 1
    finally:
        done.set()
        thread.join()
    assert reads >= 3  # the reader did read while files were being added
    assert read_prediction_log(url, "income").num_rows == (files + 1) * 2000


def test_a_write_that_dies_before_its_rename_leaves_no_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "predictions")
    write_log_file(url, batch(100, "kept"))

    def dies(src: str, dst: str) -> None:
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(KeyboardInterrupt, match="killed before the rename"):
        write_log_file(url, batch(100, "lost"))
    monkeypatch.undo()
    assert sorted(
        {r.split("-")[0] for r in read_prediction_log(url, "income")["request_id"].to_pylist()}
    ) == ["kept"]
    assert len(list((tmp_path / "predictions").rglob("*"))) == 2  # the date folder, one file


def test_a_writer_killed_minus_nine_leaves_a_readable_log(tmp_path: Path) -> None:
    url = str(tmp_path / "predictions")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_predictions import batch
        from mooring.formats._predictions import write_log_file
        print("ready", flush=True)
        n = 0
        while True:
            write_log_file({url!r}, batch(5000, f"k{{n}}"))
            n += 1
        """
    )
    root = Path(__file__).resolve().parents[2]  # the script imports this module's imports
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def written() -> int:
        assert proc.poll() is None, "the writer died"
        return len(list((tmp_path / "predictions").rglob("*.parquet")))

    wait_until(lambda: written() >= 5, "five log files from the writer", seen=written)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = list((tmp_path / "predictions").rglob("*.parquet"))
    assert read_prediction_log(url, "income").num_rows == len(files) * 5000


def test_a_damaged_log_file_is_named_with_the_fix(tmp_path: Path) -> None:
    url = str(tmp_path / "predictions")
    path = Path(write_log_file(url, batch(100, "whole")))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"'{path}' is not a readable Parquet file.*move it out"):
        read_prediction_log(url, "income")
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        read_prediction_log(url, "income")


def test_a_request_is_found_reading_only_the_files_its_index_names_and_those_it_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 files over two days, 16 indexed (index files of 8) and 8 not (written since, or
    by another writer): a request is found reading the files no index covers and the one
    that holds it; an absent one reads only the uncovered files; a damaged index file or
    keys that collide cost reads, never a wrong answer."""
    url = str(tmp_path / "predictions")
    index = RequestIndex(url, files=8)
    paths = []
    for i in range(24):
        day = datetime(2026, 11, 20 + i // 12, 12, i, tzinfo=UTC)
        rows: list[dict[str, Any]] = []
        for r in range(3):
            append_request_rows(
                rows, model="income", version=1, request_id=f"req-{i}-{r}", timestamp=day,
                columns={"age": [float(i)]}, outputs={"score": np.array([0.5])}, rows=1,
            )  # fmt: skip
        path = write_log_table(url, log_rows_table(rows), day)
        paths.append(path)
        if i % 12 < 8:  # the first 8 files of each day are indexed, in one index file each
            index.add(path, [f"req-{i}-{r}" for r in range(3)])
    assert index.flush() is None  # every index file was written when its 8th file came
    read: list[str] = []
    real = _predictions._read_columns
    monkeypatch.setattr(
        _predictions, "_read_columns", lambda path, names: read.append(path) or real(path, names)
    )
    uncovered_newest_day = [p for i, p in enumerate(paths) if i >= 20]
    found = request_rows(url, "income", "req-13-2")  # day 2, indexed
    assert found["age"].to_pylist() == [13.0] and found["request_id"].to_pylist() == ["req-13-2"]
    assert sorted(read) == sorted([*uncovered_newest_day, paths[13]])
    read.clear()
    assert request_rows(url, "income", "req-2-0")["age"].to_pylist() == [2.0]  # day 1
    assert len(read) == 4 + 4 + 1  # the uncovered files of both days, and its own
    read.clear()
    with pytest.raises(NotFoundError, match="holds no answer of model 'income' to request"):
        request_rows(url, "income", "never")
    assert len(read) == 8  # the uncovered files only, not the 24

    # A damaged index file covers nothing: its files are read again, and found.
    damaged = sorted((tmp_path / "predictions" / "date=2026-11-21").glob("_ids-*.arrow"))[0]
    damaged.write_bytes(b"not an arrow file")
    read.clear()
    assert request_rows(url, "income", "req-12-1")["age"].to_pylist() == [12.0]
    assert sorted(read) == sorted(paths[12:])  # the whole day: its oldest file holds it
    # Keys that collide name every file they index: read, and still the right rows.
    monkeypatch.setattr(_predictions, "request_key", lambda request_id: 7)
    colliding = RequestIndex(url)
    for i in range(8):
        colliding.add(paths[i], [f"req-{i}-{r}" for r in range(3)])
    colliding.flush()
    read.clear()
    assert request_rows(url, "income", "req-0-1")["request_id"].to_pylist() == ["req-0-1"]
    assert paths[0] in read
