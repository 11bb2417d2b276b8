"""Drift of columns of thousands of values, judged by their own variation, on a real table.

New York's 2013 departures with their airport's weather (tests/_support/flights.py):
trained on January to April, judged month by month from May to December. ``tailnum``
(4,043 aircraft) meets aircraft training never saw every month — 1.0% of May's rows,
4.2% of December's — at the pace training itself did: blocks of 10,000 rows (the largest
calibrated window, held for a month's) from the later half of the training period
(March–April) hold up to 3.5% aircraft the earlier half (January–February) never saw.
So it is never flagged, while the weather that moved with the seasons (temperature, dew
point) still is, and a burst of aircraft never seen is.
Against the training period's own new values per block alone (the rule before), tailnum
was flagged from July on, beside the weather: the alarm that mattered was drowned.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.formats._drift import DriftReport
from mooring.monitoring._calibration import Calibration, calibrate
from mooring.monitoring._drift import compute_drift
from tests._support.flights import TIMESTAMP, by_month, flights_weather

COLUMNS = [TIMESTAMP, "tailnum", "dest", "temp", "dewp"]
CONFIG = MonitoringConfig()


@pytest.fixture(scope="module")
def period() -> tuple[DatasetStatistics, Calibration, dict[int, pa.Table]]:
    table = flights_weather().select([*COLUMNS, "month"])
    train, months = by_month(table, train_months=4)
    stats = compute_statistics(train)
    calibration = calibrate(train, stats, CONFIG, order="ordered", timestamp=TIMESTAMP)
    assert calibration is not None and calibration.novelty_split == "time"
    return stats, calibration, months


@pytest.fixture(scope="module")
def reports(
    period: tuple[DatasetStatistics, Calibration, dict[int, pa.Table]],
) -> dict[int, DriftReport]:
    stats, calibration, months = period
    return {
        m: compute_drift(stats, t, CONFIG, calibration=calibration, timestamp=TIMESTAMP)
        for m, t in months.items()
    }


def test_aircraft_arriving_at_trainings_own_pace_are_never_drift(
    period: tuple[DatasetStatistics, Calibration, dict[int, pa.Table]],
    reports: dict[int, DriftReport],
) -> None:
    calibration = period[1]
    unseen = [reports[m].feature("tailnum").measured["unseen_share"] or 0.0 for m in reports]
    # The scenario: every month meets aircraft training never saw, more as time goes on …
    assert 0.005 < unseen[0] < 0.02 and 0.035 < unseen[-1] < 0.05
    # … and no more than blocks of the training period's later half met against its
    # earlier half (measured at registration, at the window's size).
    own = calibration.own_novelty("tailnum", 28_000)
    assert own is not None and 0.03 < own < 0.04 and max(unseen) < CONFIG.calibration_margin * own
    for report in reports.values():
        tailnum = report.feature("tailnum")
        assert tailnum.status == "ok", tailnum.reasons
        assert tailnum.natural_kind["unseen"] == "own_time"
        assert report.feature("dest").status == "ok"
    # The weather that moved with the seasons is still flagged, by distances and ranges.
    for month in (5, 6, 7, 8, 9):
        assert {"temp", "dewp"} <= set(reports[month].drifted), month
    assert all("tailnum" not in r.drifted for r in reports.values())


def test_a_burst_of_aircraft_never_seen_is_drift_and_says_which_test_fired(
    period: tuple[DatasetStatistics, Calibration, dict[int, pa.Table]],
) -> None:
    stats, calibration, months = period
    may = months[5].select(["tailnum"])
    burst = pa.array(np.random.default_rng(0).random(may.num_rows) < 0.05)
    codes = pa.array([f"NEW{i}" for i in range(may.num_rows)])
    changed = may.set_column(0, "tailnum", pc.if_else(burst, codes, may["tailnum"]))
    report = compute_drift(stats, changed, CONFIG, calibration=calibration, timestamp=TIMESTAMP)
    assert report.drifted == ["tailnum"]
    tailnum = report.feature("tailnum")
    (reason,) = tailnum.reasons
    unseen = tailnum.measured["unseen_share"] or 0.0
    own = calibration.own_novelty("tailnum", tailnum.rows) or 0.0
    assert 0.055 < unseen < 0.065 and unseen > 1.5 * own
    assert reason.startswith(f"unseen_share {unseen * 100:.3g}% vs training's own {own * 100:.3g}%")
    assert f"(limit {1.5 * own * 100:.3g}%; floor 2%; the training period's own" in reason
    assert "later half by time against its earlier half" in reason


def test_a_calibration_stored_before_the_own_rate_is_read_as_it_was(
    period: tuple[DatasetStatistics, Calibration, dict[int, pa.Table]],
) -> None:
    stats, calibration, months = period
    stored = calibration.to_dict()
    del stored["novelty"], stored["novelty_split"]
    old = Calibration.from_dict(stored)
    assert old.novelty is None and old.own_novelty("tailnum", 28_000) is None
    report = compute_drift(stats, months[12], CONFIG, calibration=old, timestamp=TIMESTAMP)
    # Judged against new values per block of training, as before: December's 4.2% of
    # aircraft never seen pass 1.5 × 1.5%, and the report says why.
    tailnum = report.feature("tailnum")
    assert tailnum.status == "drift" and tailnum.natural_kind["unseen"] == "later"
    assert any("predates the training period's own rate of new values" in n for n in report.notes)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
