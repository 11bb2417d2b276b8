"""The rows an export needs: a seeded calibration sample and the labelled evaluation rows."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.contract._io import ReadOptions, iter_batches
from mooring.errors import DataError

__all__ = ["distinct_rows", "sample_rows"]


def sample_rows(
    source: Any, options: ReadOptions, rows: int, *, seed: int, columns: Sequence[str]
) -> pa.Table:
    """A uniform random sample of ``rows`` rows (all of them when fewer), in file order.

    Streams the source in record batches and keeps the ``rows`` rows with the
    smallest random keys, so memory stays bounded by the sample and one batch
    whatever the file's size; the same seed gives the same sample.

    Examples:
        >>> t = pa.table({"x": list(range(100))})
        >>> sample_rows(t, ReadOptions(), 5, seed=0, columns=["x"]).num_rows
        5
    """
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    keys = np.empty(0)
    positions = np.empty(0, dtype=np.int64)
    offset = 0
    for batch in iter_batches(source, options):
        absent = [c for c in columns if c not in batch.schema.names]
        if absent:
            raise DataError(
                f"the calibration data has no column(s) {absent} that the model takes "
                f"(columns: {', '.join(batch.schema.names)}); calibrate on data shaped like "
                "the training data"
            )
        table = pa.Table.from_batches([batch.select(list(columns))])
        batch_keys = rng.random(table.num_rows)
        merged = table if kept is None else pa.concat_tables([kept, table])
        all_keys = np.concatenate([keys, batch_keys])
        all_positions = np.concatenate(
            [positions, offset + np.arange(table.num_rows, dtype=np.int64)]
        )
        offset += table.num_rows
        if merged.num_rows > rows:
            best = np.argpartition(all_keys, rows - 1)[:rows]
            best.sort()
            merged = merged.take(pa.array(best))
            all_keys, all_positions = all_keys[best], all_positions[best]
        kept, keys, positions = merged.combine_chunks(), all_keys, all_positions
    if kept is None or kept.num_rows == 0:
        raise DataError("the calibration data has no rows; point it at the training data")
    order = np.argsort(positions, kind="stable")
    return kept.take(pa.array(order))


def distinct_rows(columns: Mapping[str, Any]) -> int:
    """How many different rows ``columns`` (name → rank-1 array) hold."""
    if not columns:
        return 0
    names = sorted(columns)
    count = len(columns[names[0]])
    seen = set()
    for i in range(count):
        digest = hashlib.sha256()
        for name in names:
            digest.update(repr(columns[name][i]).encode())
            digest.update(b"\x00")
        seen.add(digest.digest())
    return len(seen)
