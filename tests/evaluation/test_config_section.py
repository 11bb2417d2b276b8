"""The [evaluation] section of mooring.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.config._evaluation import EvaluationConfig
from mooring.errors import ConfigError


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mooring.toml"
    path.write_text(
        '[project]\nname = "income"\n[data]\ntrain = "t.csv"\nlabel = "y"\n' + body,
        encoding="utf-8",
    )
    return path


def test_full_section_round_trips(tmp_path: Path) -> None:
    cfg = load_config(
        _write(
            tmp_path,
            """
[evaluation]
slices = ["sex", "race"]
slice_buckets = { age = [25, 35, 50], hours = 4 }
crosses = [["sex", "race"]]
min_slice_size = 50
threshold = "cost_optimal"
calibration_bins = 15
cost = { false_positive = 1.0, false_negative = 5.0, true_positive_benefit = 0.5 }
bootstrap = { samples = 500, seed = 7 }
windows = { column = "ts", freq = "month" }

[[evaluation.gates]]
metric = "auc"
lower = 0.88

[[evaluation.gates]]
metric = "auc"
slice = "sex=Female"
change = { direction = "higher", absolute = -0.01, relative = -0.02 }
""",
        )
    )
    ev = cfg.evaluation
    assert ev.slice_buckets == {"age": [25.0, 35.0, 50.0], "hours": 4}
    assert ev.threshold == "cost_optimal"
    assert ev.cost is not None and ev.cost.false_negative == 5.0
    assert ev.bootstrap.samples == 500 and ev.bootstrap.seed == 7
    assert ev.windows is not None and ev.windows.freq == "month"
    assert ev.gates[1].change is not None and ev.gates[1].change.relative == -0.02
    assert ev.gates[1].slice == "sex=Female"


def test_defaults() -> None:
    ev = EvaluationConfig()
    assert ev.threshold == 0.5
    assert ev.bootstrap.samples == 1000
    assert ev.gates == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[evaluation.gates]]\nmetric = 'auc'\n", "has no threshold"),
        ("[[evaluation.gates]]\nmetric = 'auc'\nlower = 0.9\nupper = 0.8\n", "swap them"),
        (
            "[[evaluation.gates]]\nmetric = 'auc'\nchange = { direction = 'higher' }\n",
            "needs 'absolute' or 'relative'",
        ),
        (
            "[[evaluation.gates]]\nmetric = 'auc'\nchange = { direction = 'up', absolute = 0 }\n",
            "direction",
        ),
        ("[evaluation]\nthreshold = 'cost_optimal'\n", "needs costs"),
        ("[evaluation]\nthreshold = 1.5\n", "between 0 and 1"),
        ("[evaluation]\ncrosses = [['sex']]\n", "two different columns"),
        ("[evaluation]\nslicez = ['sex']\n", "did you mean 'slices'"),
        ("[evaluation.windows]\nfreq = 0\n", "at least 1"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, body))
