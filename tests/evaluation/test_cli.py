"""``mooring evaluate`` end to end on a real trained and exported SavedModel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.cli import main
from mooring.config import load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.evaluation._model import evaluate_model_dir

pytestmark = pytest.mark.slow


def _write_data(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "blue", "green"], n)
    signal = 2.0 * x + (color == "red") * 1.0 + rng.normal(0, 0.7, n)
    label = np.where(signal > 0.3, "yes", "no")
    pacsv.write_csv(pa.table({"x": x, "color": color, "label": label}), path)


def _project(tmp_path: Path, gates: str) -> Path:
    _write_data(tmp_path / "train.csv", 600, 0)
    _write_data(tmp_path / "eval.csv", 400, 1)
    config = tmp_path / "mooring.toml"
    config.write_text(
        f"""
[project]
name = "tiny"
home = "home"

[data]
train = "train.csv"
eval = "eval.csv"
label = "label"
positive = "yes"

[model]
task = "binary"
hidden = [8]
epochs = 15
learning_rate = 0.01
batch_size = 64
parity_records = 0

[evaluation]
slices = ["color"]
slice_buckets = {{ x = [0.0] }}
min_slice_size = 20
bootstrap = {{ samples = 50 }}
cost = {{ false_positive = 1.0, false_negative = 3.0 }}
threshold = "cost_optimal"
{gates}
""",
        encoding="utf-8",
    )
    return config


def _train(config: Path, out: Path) -> Path:
    from mooring.training._train import train_model

    cfg = load_config(config)
    stats = compute_statistics(cfg.path(cfg.data.train), ReadOptions.from_config(cfg.data))
    result = train_model(cfg, statistics=stats, schema=None, output_dir=out, tensorboard=False)
    return Path(result.model_dir)


def test_evaluate_exit_codes_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passing = _project(tmp_path, '[[evaluation.gates]]\nmetric = "auc"\nlower = 0.75\n')
    model = _train(passing, tmp_path / "run")

    code = main(["evaluate", "--config", str(passing), "--model", str(model), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["blessed"] is True
    report = Path(out["report"])
    assert report.parent == tmp_path / "home" / "reports"
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert data["metrics"]["auc"] > 0.75
    assert data["threshold_source"] == "cost_optimal"
    assert {s["name"] for s in data["slices"]} >= {"color=red", "x=[0, inf)"}
    assert "<svg" in (report / "report.html").read_text(encoding="utf-8")

    # Evaluating chooses an operating threshold but never rewrites the trained artifact:
    # the threshold is registration metadata (the pipeline registers it with the version).
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    before = (copy / "mooring.json").read_bytes()
    cfg = load_config(passing)
    table = read_table(cfg.path("eval.csv"), ReadOptions.from_config(cfg.data))
    run = evaluate_model_dir(cfg, copy, table, out=tmp_path / "r1")
    assert run.result.operating_threshold == data["operating_threshold"]
    assert run.result.threshold_source == "cost_optimal"
    assert (copy / "mooring.json").read_bytes() == before

    # The same model as production: change gates apply, flip rate is 0.
    failing = _project(
        tmp_path,
        '[[evaluation.gates]]\nmetric = "auc"\nlower = 0.999\n'
        '[[evaluation.gates]]\nmetric = "flip_rate"\nupper = 0.0\n'
        '[[evaluation.gates]]\nmetric = "auc"\nchange = { direction = "higher", absolute = 0.0 }\n',
    )
    code = main(
        [
            "evaluate",
            "-c",
            str(failing),
            "-m",
            str(model),
            "-b",
            str(model),
            "-o",
            str(tmp_path / "r2"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "not blessed: 1 gate(s) failed" in captured.err
    decision = json.loads((tmp_path / "r2" / "report.json").read_text(encoding="utf-8"))["decision"]
    assert [g["passed"] for g in decision["gates"]] == [False, True, True]

    # No gates declared: the default gates judge, and say so; turned off: ungated, exit 1.
    defaults = _project(tmp_path, "")
    assert (
        main(["evaluate", "-c", str(defaults), "-m", str(model), "-o", str(tmp_path / "r3")]) == 0
    )
    out = capsys.readouterr().out
    assert "PASS auc " in out and "passed:" not in out and "(default gate)" in out
    assert "blessed by the default gates: auc beats chance beyond its interval" in out
    ungated = _project(tmp_path, "default_gates = false\n")
    code = main(["evaluate", "-c", str(ungated), "-m", str(model), "-o", str(tmp_path / "r4")])
    captured = capsys.readouterr()
    assert code == 1 and "blessed" not in captured.out.replace("not blessed", "")
    assert "ungated: no gate judged it, so it is not blessed" in captured.err
    assert json.loads((tmp_path / "r4" / "report.json").read_bytes())["decision"]["ungated"]


def test_evaluate_without_eval_data_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "t"\n[data]\ntrain = "t.csv"\n', encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "mooring.json").write_text("{}", encoding="utf-8")
    code = main(["evaluate", "-c", str(config), "-m", str(model)])
    assert code == 2
    assert "pass --data FILE" in capsys.readouterr().err


def test_evaluate_without_a_model_takes_the_latest_trained_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path, "")
    assert main(["evaluate", "-c", str(config)]) == 2
    assert "(or `mooring train`) first" in " ".join(capsys.readouterr().err.split())
    model = _train(config, tmp_path / "home" / "runs" / "20260101T000000Z")
    assert main(["evaluate", "-c", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(model)
    assert main(["evaluate", "-c", str(config)]) == 0
    assert "evaluating the latest trained model" in capsys.readouterr().out
