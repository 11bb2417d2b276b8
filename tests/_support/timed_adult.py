"""Small Adult files with an event-time column, as ``mooring init`` meets them in the wild."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from pathlib import Path

from tests._support.project import ADULT

START = datetime(2026, 3, 1, 8, 0, 0)


def write_timed_adult(
    folder: Path,
    name: str = "orders_train.csv",
    *,
    source: str = "adult.data.csv.gz",
    rows: int = 400,
    columns: tuple[str, ...] = ("event_time",),
) -> Path:
    """The first ``rows`` rows of a bundled Adult file as ``folder/name``, each with the
    ``columns`` added: ISO timestamps an hour apart (a column named like a date holds
    dates only, a day apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    with gzip.open(ADULT / source, "rt") as src, target.open("w") as dst:
        for index, line in enumerate(src):
            if index > rows:
                break
            if index == 0:
                extra = columns
            else:
                at = START + timedelta(hours=index)
                extra = tuple(
                    (START + timedelta(days=index)).date().isoformat()
                    if "date" in column
                    else at.isoformat()
                    for column in columns
                )
            dst.write(line.rstrip("\n") + "".join(f",{value}" for value in extra) + "\n")
    return target
