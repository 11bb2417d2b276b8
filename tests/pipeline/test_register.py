"""The register step warns when ``[data] eval`` predates the traffic the version will meet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mooring.config import load_config
from mooring.formats._predictions import append_request_rows, log_rows_table, write_log_table
from mooring.pipeline._cache import StepCache
from mooring.pipeline._context import RunContext
from mooring.pipeline._steps.register import _stale_evaluation
from mooring.pipeline._workspace import Workspace

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _rows(rng: np.random.Generator, n: int, shift: float, days: tuple[int, int]) -> pa.Table:
    """Two numbers and a category, moved by ``shift``; dated within ``days``."""
    when = [START + dt.timedelta(days=int(d)) for d in np.sort(rng.integers(*days, n))]
    return pa.table(
        {
            "when": pa.array(when, pa.timestamp("s", tz="UTC")),
            "age": rng.normal(40 + 15 * shift, 10, n).round(1),
            "hours": rng.normal(40 - 10 * shift, 5, n).round(1),
            "sector": np.where(rng.random(n) < 0.3 + 0.5 * shift, "private", "public"),
            "label": np.where(rng.random(n) < 0.4, "yes", "no"),
        }
    )


def _context(root: Path, train: pa.Table, evaluation: pa.Table, *, timed: bool) -> RunContext:
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(train, root / "train.parquet")
    pq.write_table(evaluation, root / "eval.parquet")
    timestamp = 'timestamp = "when"\n' if timed else ""
    (root / "mooring.toml").write_text(
        '[project]\nname = "income"\nhome = "state"\n'
        '[data]\ntrain = "train.parquet"\neval = "eval.parquet"\nlabel = "label"\n'
        f'positive = "yes"\n{timestamp}',
        encoding="utf-8",
    )
    cfg = load_config(root / "mooring.toml")
    return RunContext(workspace=Workspace(cfg), cache=StepCache(root / "cache"), code={})


def _log(ctx: RunContext, table: pa.Table, version: int) -> None:
    """Production's answers to ``table``'s rows, as the server logs them."""
    rows: list[dict[str, object]] = []
    columns = {c: table[c].to_pylist() for c in ("age", "hours", "sector")}
    append_request_rows(
        rows,
        model="income",
        version=version,
        request_id="r1",
        timestamp=dt.datetime.now(dt.UTC),
        columns=columns,
        outputs={"probabilities": np.full((table.num_rows, 2), 0.5)},
        rows=table.num_rows,
    )
    write_log_table(str(ctx.home / "predictions"), log_rows_table(rows), dt.datetime.now(dt.UTC))


def test_an_eval_file_older_than_the_training_data_is_named_with_the_fix(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = _rows(rng, 3000, 0.0, (0, 366))  # retrained on the whole year
    stale = _context(tmp_path / "stale", train, _rows(rng, 600, 0.0, (0, 180)), timed=True)
    warning = _stale_evaluation(stale, None)
    assert warning is not None
    assert "[data] eval 'eval.parquet' ends 2024-06-2" in warning
    assert "of the training rows (newest 2024-12-3" in warning
    assert "[data] timestamp 'when'" in warning
    assert "point [data] eval at labelled data as recent as the traffic" in warning
    assert "re-run `mooring run`" in warning
    # A holdout of the same period (or a later one) is not stale.
    same = _context(tmp_path / "same", train, _rows(rng, 600, 0.0, (0, 366)), timed=True)
    assert _stale_evaluation(same, None) is None
    later = _context(tmp_path / "later", train, _rows(rng, 600, 0.0, (300, 400)), timed=True)
    assert _stale_evaluation(later, None) is None


def test_without_timestamps_the_eval_file_is_compared_with_productions_traffic(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    old, year = _rows(rng, 3000, 0.0, (0, 366)), (0, 366)
    ctx = _context(tmp_path / "moved", _rows(rng, 3000, 1.0, year), old, timed=False)
    # No production (the first model) or no log yet: no evidence, no warning.
    assert _stale_evaluation(ctx, None) is None
    assert _stale_evaluation(ctx, 1) is None
    _log(ctx, _rows(rng, 800, 1.0, year), version=1)
    warning = _stale_evaluation(ctx, 1)
    assert warning is not None
    assert "[data] eval 'eval.parquet' no longer looks like production's recent traffic" in warning
    assert "3 of 3 features drifted over the last 800 logged requests" in warning
    assert "re-run `mooring run`" in warning
    # Traffic like the evaluation data: nothing to say.
    same = _context(tmp_path / "same", old, _rows(rng, 1000, 0.0, year), timed=False)
    _log(same, _rows(rng, 800, 0.0, year), version=1)
    assert _stale_evaluation(same, 1) is None
