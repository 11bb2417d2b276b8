"""``mooring validate``'s distributions: against production's training statistics by default,
judged as the drift monitor judges a window (floors over sampling noise, never the time
axis, "too few rows" where a file cannot tell a shift from chance), and saying which
reference it used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pytest

from mooring.cli import main
from mooring.contract._io import ReadOptions, read_table
from tests._support.monitored import MonitoredProject, shared_project, shifted

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["validate", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.xdist_group("monitoring-project")
def test_a_file_is_compared_with_productions_training_statistics_by_default(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project: MonitoredProject = shared_project(tmp_path_factory)
    root, cfg = project.root, str(project.config_path)
    schema = root / "schema.yaml"
    assert main(["schema", "infer", str(root / "train.csv"), "-c", cfg, "--out", str(schema)]) == 0
    capsys.readouterr()
    month = root / "month.csv"
    pv.write_csv(shifted(project.eval_table, age=15, flip_sex=True), month)
    code, data = _validate(capsys, str(month), "--schema", str(schema), "-c", cfg)
    # Before, this month passed with no warning unless given --baseline.
    assert code == 0
    distributions = data["distributions"]
    assert distributions["reference"] == "production v1's training statistics (stored with it)"
    assert {"age", "sex"} <= set(distributions["drifted"])
    drift = [a for a in data["anomalies"] if a["kind"] == "distribution_drift"]
    assert sorted(a["column"] for a in drift) == sorted(distributions["drifted"])
    assert all(a["severity"] == "warning" for a in drift)
    assert "class" not in distributions["judged"]
    age = next(a for a in drift if a["column"] == "age")
    assert "drifted from production v1's training statistics" in age["message"]
    # The month as it came: nothing drifted.
    same = root / "same.csv"
    pv.write_csv(project.eval_table, same)
    code, data = _validate(capsys, str(same), "--schema", str(schema), "-c", cfg)
    assert code == 0 and data["distributions"]["drifted"] == []
    # --baseline still overrides: the shifted month against its own statistics.
    own = root / "month.json"
    assert main(["stats", str(month), "-c", cfg, "--out", str(own)]) == 0
    capsys.readouterr()
    code, data = _validate(
        capsys, str(month), "--schema", str(schema), "-c", cfg, "--baseline", str(own)
    )
    assert data["distributions"]["reference"] == f"--baseline {own}"
    assert data["distributions"]["drifted"] == []
    main(["validate", str(month), "--schema", str(schema), "-c", cfg])
    out = capsys.readouterr().out
    assert "distributions against production v1's training statistics" in out
    assert "features drifted (" in out


def test_without_a_project_or_baseline_only_the_contract_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = pa.table({"x": np.arange(500, dtype=np.float64), "c": ["a", "b"] * 250})
    pv.write_csv(rows, tmp_path / "rows.csv")
    assert main(["schema", "infer", "rows.csv", "--out", "schema.yaml"]) == 0
    assert main(["validate", "rows.csv", "--schema", "schema.yaml"]) == 0
    out = capsys.readouterr().out
    assert "distributions not compared: no project and no --baseline" in out.replace("\n", " ")
    code, data = _validate(capsys, "rows.csv", "--schema", "schema.yaml")
    assert code == 0 and data["distributions"]["status"] == "not_compared"


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """300 random Adult rows with a month column named as [data] timestamp: the first 180
    to train on, a random-looking 120 held out (the rows are shuffled) as eval data, and
    the same 120 dated a later month."""
    table = read_table(ADULT / "adult.data.csv.gz", ReadOptions(na_values=("?", "")))
    rows = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)[:300]))
    rows = rows.append_column("month", pa.array([f"m2024-{1 + i % 12:02d}" for i in range(300)]))
    pv.write_csv(rows.slice(0, 180), tmp_path / "train.csv")
    pv.write_csv(rows.slice(180), tmp_path / "eval.csv")
    later = rows.slice(180).set_column(
        rows.column_names.index("month"), "month", pa.array(["m2025-06"] * 120)
    )
    pv.write_csv(later, tmp_path / "later.csv")
    (tmp_path / "mooring.toml").write_text(
        '[project]\nname = "small"\nhome = ".mooring"\n'
        '[data]\ntrain = "train.csv"\neval = "eval.csv"\nlabel = "class"\n'
        'positive = ">50K"\nna_values = ["?", ""]\ntimestamp = "month"\n',
        encoding="utf-8",
    )
    return tmp_path


def test_a_random_120_row_holdout_is_too_few_rows_and_the_timestamp_never_drifts(
    small_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(small_project / "mooring.toml")
    # The project form: eval (the holdout) against train. It used to get 30 warnings.
    code, data = _validate(capsys, "-c", cfg)
    assert code == 0
    assert not [a for a in data["eval"]["anomalies"] if a["kind"] == "distribution_drift"]
    judged = data["eval"]["distributions"]
    assert judged["drifted"] == [] and "month" not in judged["judged"]
    assert judged["too_few_rows"]["age"].startswith("too few rows (120; ")
    assert "time columns, never judged for drift: month" in judged["notes"]
    # The file form, with no registry: the project's training statistics, named.
    schema = small_project / "schema.yaml"
    assert (
        main(["schema", "infer", str(small_project / "train.csv"), "-c", cfg, "-o", str(schema)])
        == 0
    )
    capsys.readouterr()
    later = str(small_project / "later.csv")
    code, data = _validate(capsys, later, "--schema", str(schema), "-c", cfg)
    assert code == 0
    assert data["distributions"]["reference"] == (
        "the project's training statistics (.mooring/statistics/train.json)"
    )
    assert data["distributions"]["drifted"] == [] and "month" not in data["distributions"]["judged"]
    main(["validate", later, "--schema", str(schema), "-c", cfg])
    out = capsys.readouterr().out
    assert "too few rows (120; " in out and "WARNING distribution_drift" not in out
