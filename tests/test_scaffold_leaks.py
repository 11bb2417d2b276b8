"""``mooring init`` leaves out a column that leaks the label, with one comment line and one
console line saying why: on Adult with ``reject`` = 1 − the label, and on scikit-learn's
diabetes with two columns that sum to the target; nothing on the honest tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn import datasets

from mooring._scaffold import scaffold_config
from mooring.config import load_config
from mooring.contract._io import ReadOptions, read_table
from tests._support.cli import mooring_in_process
from tests._support.project import ADULT


@pytest.fixture(scope="module")
def adult_with_reject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Adult's training file as Parquet, with ``reject`` = 1 − the label (a loan table's)."""
    table = read_table(ADULT / "adult.data.csv.gz", ReadOptions(na_values=("?", "")))
    positive = pc.equal(table["class"], ">50K").cast(pa.int64())
    path = tmp_path_factory.mktemp("loans") / "loans.parquet"
    pq.write_table(table.append_column("reject", pc.subtract(1, positive)), path)
    return path


def test_init_excludes_a_column_that_is_one_minus_the_label(
    adult_with_reject: Path, tmp_path: Path
) -> None:
    done = mooring_in_process("init", str(adult_with_reject), "--out", "mooring.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("leak:")]
    assert lines == [
        "leak: reject: alone it gives AUC 1.000 (a leak: the label, or derived from it); set "
        "as [features] exclude"
    ]
    text = (tmp_path / "mooring.toml").read_text(encoding="utf-8")
    assert '# "reject": alone it gives AUC 1.000 (a leak: the label, or derived from it)' in text
    cfg = load_config(tmp_path / "mooring.toml")
    assert cfg.features.exclude == ["reject"] and "reject" not in cfg.features.features


def _diabetes(folder: Path, *, parts: bool) -> Path:
    """scikit-learn's diabetes as CSV; with ``parts``, a rent's two parts that sum to it."""
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    if parts:
        share = np.random.default_rng(1).uniform(0.2, 0.8, len(frame))
        frame["base"] = np.round(frame["target"] * share, 2)
        frame["extras"] = np.round(frame["target"] - frame["base"], 2)
    path = folder / "rent.csv"
    frame.to_csv(path, index=False)
    return path


def test_init_excludes_two_columns_that_sum_to_the_label(tmp_path: Path) -> None:
    scaffold = scaffold_config(_diabetes(tmp_path, parts=True), out_dir=tmp_path, holdout=0)
    assert scaffold.task == "regression" and sorted(scaffold.leaks) == ["base", "extras"]
    assert "# \"base\": with 'extras' it gives the label (R² 1.0000: ≈ 1·base + 1·extras)" in (
        scaffold.text
    )
    assert 'exclude = ["base", "extras"]' in scaffold.text
    assert scaffold.to_dict()["leaks"] == scaffold.leaks


def test_init_excludes_nothing_on_the_honest_tables(tmp_path: Path) -> None:
    honest = scaffold_config(_diabetes(tmp_path, parts=False), out_dir=tmp_path, holdout=0)
    assert honest.leaks == {} and '# exclude = ["id"]' in honest.text
    adult = scaffold_config(
        ADULT / "adult.data.csv.gz", out_dir=tmp_path, na_values=["?"], holdout=0
    )
    assert adult.leaks == {} and "a leak" not in adult.text
