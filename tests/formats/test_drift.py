"""The drift report's file: written and read back unchanged, older and partial shapes tolerated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from mooring.errors import DataError
from mooring.formats._drift import (
    LATEST,
    AttributionShift,
    DriftReport,
    FeatureDrift,
    Histogram,
    PredictionDrift,
    SegmentDrift,
    drift_folder,
    parse_time,
    read_report,
    report_stem,
    stem_time,
)


def _feature(name: str, status: str = "ok", psi: float | None = 0.01) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        kind="numeric",
        status=status,
        rows=1200,
        metrics={"psi": psi, "ks": None, "out_of_range_share": 0.0, "missing_change": 0.0},
        thresholds={"psi": 0.25, "ks": None, "out_of_range": 0.02, "missing": 0.05},
        reasons=["psi 0.4 >= 0.25"] if status == "drift" else [],
        baseline=Histogram(("< 0", "[0, 10)", ">= 10"), (0.0, 0.75, 0.25), (0, 900, 300)),
        current=Histogram(("< 0", "[0, 10)", ">= 10"), (0.1, 0.5, 0.4), (120, 600, 480)),
    )


def _report() -> DriftReport:
    categorical = FeatureDrift(
        name="city",
        kind="categorical",
        status="ok",
        rows=1200,
        metrics={"psi": 0.0, "unseen_share": 0.0},
        thresholds={"psi": 0.25, "unseen": 0.02},
    )
    return DriftReport(
        model="income",
        version=3,
        created_at="2024-05-01T12:00:00.000+00:00",
        window={"rows": 1200, "start": "2024-05-01T11:00:00+00:00", "end": None},
        status="drift",
        features=[_feature("age", "drift", 0.4), categorical],
        segments=[
            SegmentDrift("sex", "Female", 500, "drift", [_feature("age", "drift", 0.5)]),
            SegmentDrift("sex", "Other", 3, "no_baseline", note="value never seen in training"),
        ],
        prediction=PredictionDrift("ok", "evaluation", [_feature("output.score")]),
        settings={"min_samples": 1000, "bins": 10},
        notes=["a note"],
        attributions=AttributionShift(
            "probability of >50K", "probability", 200, 200, 0.07, {"age": 0.05, "city": 0.02}
        ),
    )


def test_a_report_reads_back_to_the_same_json() -> None:
    report = _report()
    data = report.to_dict()
    assert data["format"] == "mooring.drift"
    assert data["drifted"] == ["age"] and data["segments_drifted"] == ["sex=Female"]
    assert data["features"][0]["out_of_range_share"] == 0.0
    assert data["features"][1]["unseen_share"] == 0.0 and data["features"][1]["baseline"] == {}
    again = DriftReport.from_dict(orjson.loads(report.to_json()))
    assert again.to_json() == report.to_json()
    assert again.feature("output.score").baseline == report.feature("output.score").baseline
    assert isinstance(again.features[0].baseline.counts[1], int)  # type: ignore[union-attr]
    assert again.attributions is not None and again.attributions.largest(1) == [("age", 0.05)]
    # Reports written before the attribution shift read as without one.
    del data["attributions"]
    assert DriftReport.from_dict(data).attributions is None


def test_save_writes_the_stamped_pair_and_latest(tmp_path: Path) -> None:
    report = _report()
    files = report.save(drift_folder(tmp_path, "income"), html=lambda r: f"<p>{r.model}</p>")
    folder = tmp_path / "monitoring" / "income" / "drift"
    assert report.status == "drift"  # a flagged report: its stem says so
    assert files == {
        "json": str(folder / "20240501T120000Z-drift.json"),
        "html": str(folder / "20240501T120000Z-drift.html"),
    }
    assert report.files == files
    assert (folder / LATEST).read_bytes() == (folder / "20240501T120000Z-drift.json").read_bytes()
    assert (folder / "20240501T120000Z-drift.html").read_text(encoding="utf-8") == "<p>income</p>"
    assert read_report(folder / LATEST).to_dict() == report.to_dict()
    # Without a renderer (the layers below the dashboard render nothing): the JSON only.
    other = _report()
    assert other.save(tmp_path / "plain") == {
        "json": str(tmp_path / "plain" / "20240501T120000Z-drift.json")
    }
    assert not list((tmp_path / "plain").glob("*.html"))


def test_partial_and_early_shapes_are_read() -> None:
    data: dict[str, Any] = {
        "version": True,  # not a version number
        "window": "yesterday",
        "segments": {"region=north": {"status": "ok", "rows": 40}, "bad": 3},
        "prediction": {"name": "score", "metrics": {"psi": 0.3}, "thresholds": {"psi": 0.2}},
        "features": {
            "hours": {
                "status": "drift",
                "metrics": {"psi": 0.5, "ks": "n/a", "wasserstein": float("nan")},
                "thresholds": {"psi": 0.25, "out_of_range": 0.02},
                "baseline": {"edges": [0, 20, 40, 60], "counts": [10, 70, 20]},
                "current": {"edges": [20, 40], "counts": [5, 40, 55]},
            },
            "work": {
                "metrics": {"psi": 0.01},
                "thresholds": {"psi": 0.25},
                "baseline": {"values": ["Private", None], "counts": [90, 10]},
                "current": {"counts": [3, 1]},
            },
            "junk": "x",
        },
    }
    report = DriftReport.from_dict(data)
    assert (report.model, report.version, report.status) == ("", None, "unknown")
    assert report.window == {"rows": None, "start": None, "end": None}
    hours, work = report.features
    assert (hours.name, hours.kind, hours.rows) == ("hours", "unknown", 0)
    assert hours.metrics == {"psi": 0.5, "ks": None, "wasserstein": None}
    assert hours.measured == {"psi": 0.5}
    assert hours.bounds == {"psi": 0.25, "out_of_range_share": 0.02}
    assert hours.baseline is not None and hours.baseline.bins == ("0–20", "20–40", "40–60")
    assert hours.baseline.shares == (0.1, 0.7, 0.2)
    assert hours.current is not None and hours.current.bins == ("< 20", "20–40", "≥ 40")
    assert work.baseline is not None and work.baseline.bins == ("Private", "(missing)")
    assert work.current is not None and work.current.bins == ("bin 1", "bin 2")
    assert hours.drifted and not work.drifted  # work has no verdict: psi under its threshold
    assert report.drifted == ["hours", "score"]
    assert [(s.column, s.value, s.rows, s.name) for s in report.segments] == [
        ("region", "north", 40, "region=north")
    ]
    assert report.prediction is not None and report.prediction.features[0].name == "score"


def test_a_feature_without_a_verdict_drifts_past_a_threshold() -> None:
    feature = FeatureDrift.from_dict(
        {"metrics": {"out_of_range_share": 0.1}, "thresholds": {"out_of_range": 0.05}}
    )
    assert feature.name == "?" and feature.status == "unknown" and feature.drifted
    assert not FeatureDrift.from_dict({**feature.to_dict(), "status": "insufficient_data"}).drifted
    assert Histogram.from_dict({"bins": ["a"]}) is None and Histogram.from_dict([1]) is None


def test_unreadable_files_raise_data_error(tmp_path: Path) -> None:
    broken = tmp_path / "20240101T000000Z.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"^20240101T000000Z\.json: not readable as JSON \("):
        read_report(broken)
    broken.write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(DataError, match=r"^20240101T000000Z\.json: expected a JSON object$"):
        read_report(broken)
    with pytest.raises(DataError, match="not readable as JSON"):
        read_report(tmp_path / "missing.json")


def test_times_and_stems() -> None:
    noon = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert report_stem("2024-05-01T14:00:00.5+02:00") == "20240501T120000Z"
    assert parse_time("2024-05-01T12:00:00Z") == noon
    assert parse_time("2024-05-01T12:00:00") == noon  # naive times are UTC
    assert parse_time("20240501T120000.000Z") == noon
    assert parse_time("soon") is None and parse_time(3) is None
    assert stem_time("drift-20240501T120000Z") == noon and stem_time("latest") is None


def _write_reports(folder: Path, start: datetime, count: int, flagged_every: int) -> list[str]:
    """``count`` small reports one minute apart; every ``flagged_every``-th found drift."""
    from mooring.formats._drift import FLAGGED, report_stem

    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for i in range(count):
        at = (start + timedelta(minutes=i)).isoformat()
        stem = report_stem(at) + (FLAGGED if (i + 1) % flagged_every == 0 else "")
        status = "drift" if stem.endswith(FLAGGED) else "ok"
        payload = orjson.dumps({"format": "mooring.drift", "created_at": at, "status": status})
        (folder / f"{stem}.json").write_bytes(payload)
        (folder / f"{stem}.html").write_text("<html></html>")
        stems.append(stem)
    (folder / "latest.json").write_bytes(payload)
    return stems


def test_retention_keeps_the_newest_the_flagged_and_the_latest(tmp_path: Path) -> None:
    from mooring.formats._drift import prune_reports

    folder = tmp_path / "drift"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stems = _write_reports(folder, start, 3000, flagged_every=100)
    now = start + timedelta(minutes=3000)
    # 2,000 files at most, and nothing older than a day (1,440 minutes).
    removed = prune_reports(folder, max_age_s=86400, max_files=2000, now=now)
    kept = {p.stem for p in folder.glob("*.json")} - {"latest"}
    flagged = {s for s in stems if s.endswith("-drift")}
    newest = set(stems[-1440:])
    assert kept == newest | flagged
    assert len(removed) == 2 * (3000 - len(kept))
    assert {p.stem for p in folder.glob("*.html")} == kept
    assert (folder / "latest.json").is_file()
    # A second pass has nothing left to do.
    assert prune_reports(folder, max_age_s=86400, max_files=2000, now=now) == []
    # Far in the future the newest report survives with the flagged ones.
    later = prune_reports(folder, max_age_s=60, max_files=1, now=now + timedelta(days=30))
    assert later and {p.stem for p in folder.glob("*.json")} - {"latest"} == flagged | {stems[-1]}


def test_an_interrupted_prune_leaves_readable_reports_and_is_finished_next_time(
    tmp_path: Path,
) -> None:
    from mooring.formats._drift import prune_reports, read_report

    folder = tmp_path / "drift"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stems = _write_reports(folder, start, 10, flagged_every=1000)
    # A crash between the page and the JSON of the oldest report: its JSON is left, and
    # an orphan page of another run lies beside.
    (folder / f"{stems[1]}.html").unlink()
    (folder / "20250101T000000Z.html").write_text("<html>orphan</html>")
    assert read_report(folder / f"{stems[1]}.json").status == "ok"
    prune_reports(folder, max_age_s=1e9, max_files=5, now=start + timedelta(hours=1))
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted([*stems[-5:], "latest"])
    assert not (folder / "20250101T000000Z.html").exists()


@pytest.mark.parametrize("crash_after", [1, 2, 3, 8])
def test_a_prune_that_crashes_mid_way_leaves_whole_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_after: int
) -> None:
    from mooring.formats._drift import prune_reports, read_report

    folder = tmp_path / "drift"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stems = _write_reports(folder, start, 12, flagged_every=4)
    now = start + timedelta(hours=1)
    real_unlink = Path.unlink
    calls = {"n": 0}

    def crash(self: Path, missing_ok: bool = False) -> None:
        calls["n"] += 1
        if calls["n"] > crash_after:
            raise OSError("the process died here")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(OSError, match="died"):
        prune_reports(folder, max_age_s=1e9, max_files=3, now=now)
    monkeypatch.undo()
    # Every page left has its JSON (pages go first); every JSON left reads.
    jsons = {p.stem for p in folder.glob("*.json")} - {"latest"}
    assert {p.stem for p in folder.glob("*.html")} <= jsons
    assert all(read_report(folder / f"{stem}.json").created_at for stem in jsons)
    # The next prune finishes the job as if nothing had happened.
    prune_reports(folder, max_age_s=1e9, max_files=3, now=now)
    flagged = {s for s in stems if s.endswith("-drift")}
    assert {p.stem for p in folder.glob("*.json")} == set(stems[-3:]) | flagged | {"latest"}


def test_a_flagged_report_is_saved_under_a_drift_stem(tmp_path: Path) -> None:
    report = DriftReport.from_dict(
        {"status": "drift", "created_at": "2026-01-01T00:00:00+00:00", "window": {"rows": 5}}
    )
    files = report.save(tmp_path)
    assert Path(files["json"]).name == "20260101T000000Z-drift.json"
    assert read_report(Path(files["json"])).status == "drift"
