"""A window's summary merges across any split of its rows, and survives JSON."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.monitoring._window import WindowSummary, summarize_window
from tests._support.broken_adult import adult_sample

HEADER, ROWS = adult_sample(400)
AGE, SEX, WORK = HEADER.index("age"), HEADER.index("sex"), HEADER.index("workclass")


def logged(rows: list[list[str]], start: int) -> pa.Table:
    """Adult rows as the server logs them ('' for a missing text value)."""
    index = range(start, start + len(rows))
    return pa.table(
        {
            "request_id": [f"r{start + i}" for i in range(len(rows))],
            "timestamp": [
                datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=start + i)
                for i in range(len(rows))
            ],
            "model": ["income"] * len(rows),
            "model_version": [1] * len(rows),
            "age": [float(r[AGE]) for r in rows],
            "sex": [r[SEX] for r in rows],
            "workclass": ["" if r[WORK] == "?" else r[WORK] for r in rows],
            "output.probabilities": [[1 - (i % 10) / 10, (i % 10) / 10] for i in index],
            "output.classes": ["<=50K" if i % 10 < 5 else ">50K" for i in index],
        }
    )


PLAN = {"segments": ["sex", "race"], "output_names": ["output.score", "output.class"]}


@settings(max_examples=30)
@given(st.lists(st.integers(min_value=1, max_value=399), max_size=6, unique=True))
def test_merged_summaries_of_any_split_count_what_the_whole_counts(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), 400]
    parts = [summarize_window(logged(ROWS[a:b], a), **PLAN) for a, b in itertools.pairwise(bounds)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    whole = summarize_window(logged(ROWS, 0), **PLAN)
    assert (merged.rows, merged.start, merged.end) == (whole.rows, whole.start, whole.end)
    assert merged.columns == whole.columns and merged.segment_columns == ["sex"]
    assert merged.segment_values("sex") == whole.segment_values("sex")
    for name, col in whole.features.columns.items():
        got = merged.features[name]
        assert (got.count, got.missing) == (col.count, col.missing), name
    assert merged.outputs is not None and whole.outputs is not None
    assert merged.outputs["output.score"].to_dict() != {}
    assert merged.outputs["output.class"].strings.top(2) == whole.outputs[  # type: ignore[union-attr]
        "output.class"
    ].strings.top(2)


def test_a_summary_reads_back_from_json_identically() -> None:
    summary = summarize_window(logged(ROWS, 0), **PLAN)
    again = WindowSummary.from_json(summary.to_json())
    assert again.to_json() == summary.to_json()
    assert again.segments["sex"]["Male"][0] == summary.segments["sex"]["Male"][0] > 0
