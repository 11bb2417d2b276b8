"""Tables as teams bring them, generated (Hypothesis): names in any case and script with
spaces, dots and symbols, Python keywords and ``self``; numbers with nulls, small
integers, an int64 id beyond 2^53, booleans, categories, constant and all-null columns,
dates and timestamps; a binary text label that one numeric column explains; written as
Parquet or as CSV with ``,``, ``;`` or a tab.

Example::

    @given(spec=table_specs())
    def test(spec: TableSpec) -> None:
        path = spec.write(tmp_path)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
from hypothesis import strategies as st

#: The kinds of column a table holds beside its signal and its label.
KINDS = ("number", "integer", "id", "boolean", "category", "constant", "empty", "date", "time")
#: Letters of several scripts and cases, digits, spaces and symbols found in real headers;
#: never a field separator, a quote or a line break (a header holding one is another test).
_NAME_CHARS = st.characters(
    categories=("Lu", "Ll", "Lo", "Nd", "Zs"),
    include_characters=".%°()[]-_#/&+µ²",
    exclude_characters=",;\t|\"'\n\r\\\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029",
)
#: Names that are words of Python or of TensorFlow's own methods, which a signature's
#: arguments cannot take as they are (``self``, ``class``): real headers hold them too.
RESERVED = ("self", "class", "global", "lambda", "args", "kwargs", "None")
NAMES = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=14).map(str.strip).filter(bool),
    st.sampled_from(RESERVED),
)
FORMATS = ("parquet", ",", ";", "\t")


@dataclass(frozen=True)
class TableSpec:
    """One generated table: its columns (name → kind), the signal's and the label's names,
    its size, the share of nulls in the columns that take them, a seed and its format."""

    columns: tuple[tuple[str, str], ...]
    signal: str
    label: str
    rows: int
    nulls: float
    seed: int
    fmt: str

    def table(self) -> pa.Table:
        """The rows: the label is 'yes' where the signal (plus noise) is positive."""
        rng = np.random.default_rng(self.seed)
        n = self.rows
        signal = rng.normal(0, 1, n)
        label = np.where(signal + rng.normal(0, 0.4, n) > 0, "yes", "no")
        label[:2] = ["yes", "no"]  # both classes, whatever the draw
        data: dict[str, pa.Array] = {self.signal: pa.array(signal.round(4))}
        for name, kind in self.columns:
            data[name] = _column(kind, n, self.nulls, rng)
        data[self.label] = pa.array(label)
        return pa.table(data)

    def write(self, folder: Path) -> Path:
        """The table as ``folder/table.parquet`` or ``folder/table.csv``."""
        folder.mkdir(parents=True, exist_ok=True)
        table = self.table()
        if self.fmt == "parquet":
            path = folder / "table.parquet"
            pq.write_table(table, path)
        else:
            path = folder / "table.csv"
            pv.write_csv(table, path, pv.WriteOptions(delimiter=self.fmt))
        return path


def _column(kind: str, n: int, nulls: float, rng: np.random.Generator) -> pa.Array:
    missing = rng.random(n) < nulls
    start = dt.datetime(2023, 3, 1, tzinfo=dt.UTC)
    times = [start + dt.timedelta(hours=int(h)) for h in np.sort(rng.integers(0, 24 * 400, n))]
    places = np.array(["Nord", "Süd", "Ost-West", "Zentrum (alt)", "日本"])
    make = {
        "number": lambda: pa.array(rng.normal(50, 20, n).round(2), mask=missing),
        "integer": lambda: pa.array(rng.integers(0, 100, n), mask=missing),
        "id": lambda: pa.array(2**53 + 1 + rng.permutation(n).astype(np.int64) * 104729),
        "boolean": lambda: pa.array(rng.random(n) < 0.4, mask=missing),
        "category": lambda: pa.array(places[rng.integers(0, 5, n)], mask=missing),
        "constant": lambda: pa.array(np.full(n, 7.5)),
        "empty": lambda: pa.array([None] * n, pa.float64()),
        "date": lambda: pa.array([t.date() for t in times], pa.date32(), mask=missing),
        "time": lambda: pa.array(times, pa.timestamp("s", tz="UTC")),
    }
    return make[kind]()


@st.composite
def table_specs(draw: Any, *, max_columns: int = 6, max_rows: int = 400) -> TableSpec:
    """A table of 1 to ``max_columns`` generated columns beside its signal and label."""
    count = draw(st.integers(1, max_columns))
    names = draw(st.lists(NAMES, min_size=count + 2, max_size=count + 2, unique=True))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=count, max_size=count))
    return TableSpec(
        columns=tuple(zip(names[2:], kinds, strict=True)),
        signal=names[0],
        label=names[1],
        rows=draw(st.integers(60, max_rows)),
        nulls=draw(st.sampled_from([0.0, 0.1, 0.6])),
        seed=draw(st.integers(0, 2**16)),
        fmt=draw(st.sampled_from(FORMATS)),
    )


def request_row(row: dict[str, Any], label: str) -> dict[str, Any]:
    """A table row as a JSON client sends it: no label, dates and times as ISO text."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name == label:
            continue
        out[name] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def oip_input(name: str, kind: pa.DataType, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One column of request rows as an Open Inference Protocol JSON input, typed as the
    table holds it: booleans ``BOOL``, integers ``INT64``, numbers ``FP64``, the rest
    (text, dates and times as ISO text) ``BYTES``; a null stays ``null``."""
    if pa.types.is_boolean(kind):
        datatype = "BOOL"
    elif pa.types.is_integer(kind):
        datatype = "INT64"
    elif pa.types.is_floating(kind):
        datatype = "FP64"
    else:
        datatype = "BYTES"
    return {
        "name": name,
        "shape": [len(rows)],
        "datatype": datatype,
        "data": [r[name] for r in rows],
    }
