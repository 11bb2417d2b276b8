"""A table as a team brings it, not as Adult has it: capitalised, accented, dotted and
spaced column names, an int64 id beyond 2^53, a boolean, a zoned timestamp and a text
label, written as Parquet or as a `;` CSV (a spreadsheet's export)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

#: The label column and the feature columns a client sends (the id and time are not features).
LABEL = "Ausfall"
FEATURES = ("Alter (Jahre)", "Größe.cm", "Stadt Name", "Aktiv")
ID_BASE = 2**53 + 1  # not a float64: 2**53 + 1 has no float64 of its own


def stranger_table(rows: int = 500, seed: int = 0) -> pa.Table:
    """The table: the label depends on the age, the flag and one city, so a model learns it."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    city = rng.choice(["München", "Köln", "Zürich", "Wien", "Graz"], rows)
    active = rng.random(rows) < 0.6
    logit = 0.08 * (age - 45) + 2.0 * active - 1.0 + 1.5 * (city == "Wien")
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "ja", "nein")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "Kunden-ID": pa.array(ID_BASE + np.arange(rows, dtype=np.int64) * 7919, pa.int64()),
            "Alter (Jahre)": age,
            "Größe.cm": rng.normal(172, 9, rows).round(1),
            "Stadt Name": city,
            "Aktiv": active,
            "Erstellt am": pa.array(
                [start + dt.timedelta(hours=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            LABEL: label,
        }
    )


def write_stranger_table(folder: Path, fmt: str, rows: int = 500) -> Path:
    """The table as ``folder/kunden.parquet`` (``fmt="parquet"``) or ``kunden.csv`` (``";"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = stranger_table(rows)
    if fmt == "parquet":
        path = folder / "kunden.parquet"
        pq.write_table(table, path)
    else:
        path = folder / "kunden.csv"
        pv.write_csv(table, path, pv.WriteOptions(delimiter=";"))
    return path


def request_rows(count: int) -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: numbers, text and JSON booleans, the id too."""
    table = stranger_table(count, seed=1)
    rows = table.select(["Kunden-ID", *FEATURES]).to_pylist()
    assert any(r["Aktiv"] is True for r in rows) and any(r["Aktiv"] is False for r in rows)
    return rows
