"""``mooring models import``: models built elsewhere into the registry, through the real CLI
entry point; what it refuses leaves the registry as it was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from mooring.cli import main
from mooring.registry import Registry
from tests._support.byom import (
    TABULAR_ROWS,
    custom_layer_keras,
    expected_scores,
    ranker_module,
    tabular_keras,
)
from tests._support.serve_process import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'home' / 'registry.db'}"


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_import_a_keras_file_then_promote_it_with_force_and_a_reason(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tabular_keras(tmp_path / "income.keras")
    args = ["--registry", url]
    why = ["-r", "built by the research team", "--actor", "ana"]
    options = ["--task", "binary", "--no-eval", *why, *args, "--json"]
    assert main(["models", "import", "income", str(source), *options]) == 0
    shown = _json(capsys)
    assert (shown["name"], shown["version"], shown["blessed"], shown["gate"]) == (
        "income",
        1,
        False,
        None,
    )
    assert shown["created_by"] == "ana"
    lineage = shown["lineage"]
    assert isinstance(lineage, dict)
    assert lineage["origin"] == "imported" and lineage["source_format"] == "keras"
    assert lineage["source_path"] == str(source.resolve())
    assert lineage["reason"] == "built by the research team" and lineage["task"] == "binary"
    assert main(["models", "show", "income", "--card", *args]) == 0
    assert "Model card: income version 1" in capsys.readouterr().out
    assert main(["models", "promote", "income", "1", *args]) == 1
    assert "income@1 is unevaluated" in capsys.readouterr().err
    assert main(["models", "promote", "income", "1", "--force", *args]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert (
        main(["models", "promote", "income", "1", "--force", "-r", "checked by hand", *args]) == 0
    )
    assert "production 1" in capsys.readouterr().out
    with Registry.open(url) as registry:
        assert registry.deployment("income").production == 1
        [promoted] = [e for e in registry.history("income") if e.action == "promote"]
        assert promoted.forced and promoted.reason == "checked by hand"


def test_import_a_module_with_its_own_signature_and_input_shape(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = ranker_module(tmp_path / "ranker")
    code = main(["models", "import", "ranker", str(source), "--signature", "predict",
                 "--input-shape", "ids=6", "--registry", url])  # fmt: skip
    assert code == 0
    said = capsys.readouterr().out
    assert "ranker@1: imported from" in said and "signature 'predict'" in said
    assert "--force -r REASON" in said
    with Registry.open(url) as registry:
        stored = registry.load("ranker", version=1)
    meta = json.loads((stored / "mooring.json").read_text())
    assert meta["signature"]["inputs"]["ids"] == {
        "dtype": "int64",
        "shape": [None, None],
        "example_shape": [6],
    }
    assert sorted(meta["signature"]["outputs"]) == ["count", "doubled", "score"]


def test_an_imported_version_promoted_by_force_is_served_from_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ServeProcess(tmp_path, None, name="income")  # writes the project's mooring.toml
    config = ["-c", str(server.config)]
    source = tabular_keras(tmp_path / "income.keras")
    assert main(["models", "import", "income", str(source), *config]) == 0
    assert main(["models", "promote", "income", "1", "--force", "-r", "by hand", *config]) == 0
    capsys.readouterr()
    with server:
        answer = httpx.post(
            f"{server.url}/v1/models/income:predict", json={"instances": TABULAR_ROWS}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Model-Version"] == "1"
    scores = [row[0] for row in answer.json()["predictions"]]
    np.testing.assert_allclose(scores, expected_scores(TABULAR_ROWS), rtol=1e-5)


@pytest.mark.parametrize(
    ("build", "extra", "says"),
    [
        ("summing", ["--signature", "predict"], "output 'total' has shape [] for a batch of 3"),
        ("ranker", [], "has no signature 'serving_default'; it has 'predict'"),
        ("ranker", ["--signature", "predict", "--input-shape", "ids"], "expected NAME=d1,d2"),
        ("custom", [], "uses the custom class 'Doubler'"),
        ("empty", [], "a folder without saved_model.pb"),
        ("ranker", ["--task", "ranking"], "--task 'ranking' is not one of"),
    ],
)
def test_what_cannot_be_imported_exits_2_and_leaves_the_registry_as_it_was(
    tmp_path: Path,
    url: str,
    capsys: pytest.CaptureFixture[str],
    build: str,
    extra: list[str],
    says: str,
) -> None:
    (tmp_path / "empty").mkdir()
    paths = {
        "summing": lambda: ranker_module(tmp_path / "summing", batch_sum=True),
        "ranker": lambda: ranker_module(tmp_path / "ranker"),
        "custom": lambda: custom_layer_keras(tmp_path / "custom.keras"),
        "empty": lambda: tmp_path / "empty",
    }
    source = paths[build]()
    assert main(["models", "import", "m", str(source), *extra, "--registry", url]) == 2
    err = capsys.readouterr().err
    assert says in " ".join(err.split()), err
    assert "Traceback" not in err
    with Registry.open(url) as registry:
        assert registry.models() == []
        assert registry.artifacts.list_keys() == []
        assert registry.history() == []


def _holdout(folder: Path, *, agreeing: bool) -> Path:
    """200 labelled rows for the tabular model: labels that follow its score (the model's
    score falls with hours and rises with age), or labels against it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ages = np.linspace(18, 80, 200)
    hours = np.tile([20.0, 40.0, 60.0, 30.0], 50)
    scores = np.array(
        expected_scores([{"age": a, "hours-per-week": h} for a, h in zip(ages, hours, strict=True)])
    )
    high, low = ("yes", "no") if agreeing else ("no", "yes")
    labels = np.where(scores > np.median(scores), high, low)
    path = folder / "holdout.parquet"
    pq.write_table(pa.table({"age": ages, "hours-per-week": hours, "bought": labels}), path)
    return path


def test_import_with_data_evaluates_and_blesses_it_outside_a_project(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no mooring.toml here: defaults, the report under .mooring
    source = tabular_keras(tmp_path / "income.keras")
    _holdout(tmp_path, agreeing=True)
    args = ["--registry", url, "--task", "binary", "--data", "holdout.parquet"]
    assert main(["models", "import", "buyers", str(source), *args, "--label", "bought"]) == 0
    out = capsys.readouterr().out
    assert "buyers@1: imported and evaluated on holdout.parquet: blessed" in out
    assert re.search(r"^PASS .*auc", out, flags=re.M), out  # each gate, as evaluate prints it
    assert list((tmp_path / ".mooring" / "reports").glob("import-buyers-*/report.html"))
    assert main(["models", "promote", "buyers", "1", "--registry", url]) == 0
    both = ["--data", "holdout.parquet", "--no-eval"]
    assert main(["models", "import", "buyers", str(source), *both, "--registry", url]) == 2
    assert "pass one of them" in capsys.readouterr().err


def test_an_import_its_gates_refuse_names_the_gate_that_failed(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tabular_keras(tmp_path / "income.keras")
    _holdout(tmp_path, agreeing=False)  # its AUC far below the default gate's floor
    args = ["--registry", url, "--task", "binary", "--data", "holdout.parquet", "--label", "bought"]
    assert main(["models", "import", "buyers", str(source), *args]) == 0
    out = capsys.readouterr().out
    assert "buyers@1: imported and evaluated on holdout.parquet: not blessed" in out
    assert re.search(r"^FAIL .*auc = 0\b.*not above chance", out, flags=re.M), out
    assert "--force -r REASON" in out
