"""A run's gates, ``select`` and model kinds are checked against its task before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.config import MooringConfig
from mooring.errors import ConfigError
from mooring.evaluation._evaluate import evaluate
from mooring.pipeline._checks import check_settings, metric_names, metric_problem
from tests._support.blocked_import import run_without

TASKS = ("binary", "multiclass", "regression")


def _config(
    gates: list[dict[str, Any]], *, model: dict[str, Any] | None = None, **evaluation: Any
) -> MooringConfig:
    return MooringConfig.from_mapping(
        {
            "project": {"name": "prices"},
            "data": {"train": "train.csv", "label": "price"},
            "model": model or {},
            "evaluation": {"gates": gates, **evaluation},
        }
    )


def test_a_typo_in_a_gate_is_named_with_its_number_and_the_metric_meant() -> None:
    cfg = _config(
        [
            {"metric": "r2", "lower": 0.0},
            {"metric": "rsme", "upper": 10.0},
            {"metric": "auc", "lower": 0.7},
            {"metric": "flip_rate", "upper": 0.1},
        ]
    )
    with pytest.raises(ConfigError, match=r"^\[\[evaluation.gates\]\] 2: metric 'rsme'") as info:
        check_settings(cfg, "regression")
    lines = str(info.value).splitlines()
    assert lines == [
        "[[evaluation.gates]] 2: metric 'rsme' is not a regression metric; did you mean 'rmse'?",
        "[[evaluation.gates]] 3: metric 'auc' is a binary metric, not a regression one; the "
        "regression metrics are rmse, mae, r2, mape, mape_zero_targets, mean_label, "
        "mean_prediction, flip_rate, mean_abs_diff",
    ]
    # The same gates on a binary model: r2 and rsme are not its metrics, auc is.
    with pytest.raises(ConfigError, match="1: metric 'r2' is a regression metric") as info:
        check_settings(cfg, "binary")
    assert [line.split(":")[0] for line in str(info.value).splitlines()] == [
        "[[evaluation.gates]] 1",
        "[[evaluation.gates]] 2",
    ]


def test_select_and_bootstrap_metrics_fit_the_task() -> None:
    cfg = _config(
        [{"metric": "accuracy", "lower": 0.5}],
        model={"select": "f1"},
        bootstrap={"metrics": ["accuracy", "top_k_acuracy"]},
    )
    check_settings(_config([{"metric": "f1", "lower": 0.5}], model={"select": "f1"}), "binary")
    with pytest.raises(ConfigError, match="did you mean 'macro_f1'") as info:
        check_settings(cfg, "multiclass")
    assert str(info.value).splitlines() == [
        "[model] select = 'f1' is not a multiclass metric; did you mean 'macro_f1'?",
        "[evaluation.bootstrap] metrics: 'top_k_acuracy' is not a multiclass metric; did you "
        "mean 'top_k_accuracy'?",
    ]


@pytest.mark.parametrize("task", TASKS)
def test_the_names_are_the_metrics_an_evaluation_reports(task: str) -> None:
    # The reference: what a real evaluation of this task's predictions returns.
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3 if task == "multiclass" else 2, 200)
    if task == "regression":
        targets = rng.normal(5.0, 2.0, 200)
        result = evaluate(task="regression", labels=targets, values=rng.normal(5.0, 2.0, 200))
    elif task == "binary":
        result = evaluate(task="binary", labels=classes, scores=rng.uniform(0.0, 1.0, 200))
    else:
        probabilities = rng.dirichlet(np.ones(3), 200)
        result = evaluate(task="multiclass", labels=classes, probabilities=probabilities)
    assert set(metric_names(task)) == set(result.metrics)
    for name in result.metrics:
        assert metric_problem(name, task) is None


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12))
def test_every_other_name_is_refused_naming_the_task(name: str) -> None:
    for task in TASKS:
        problem = metric_problem(name, task, comparisons=True)
        known = (*metric_names(task), "flip_rate", "mean_abs_diff")
        assert (problem is None) == (name in known)
        if problem is not None:
            assert problem.startswith(f"{name!r} is ") and task in problem


def test_a_kind_whose_extra_is_missing_is_named_before_anything_trains(tmp_path: Path) -> None:
    script = (
        "from mooring.config import MooringConfig\n"
        "from mooring.errors import MissingExtraError\n"
        "from mooring.pipeline._checks import check_settings\n"
        "cfg = MooringConfig.from_mapping({'project': {'name': 'p'}, 'data': {'train': 't.csv',"
        " 'label': 'y'}, 'model': {'candidates': [{'name': 'lin', 'kind': 'linear'},"
        " {'name': 'trees', 'kind': 'gbt'}]}})\n"
        "try:\n"
        "    check_settings(cfg, 'binary')\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    done = run_without(("ydf", "ydf_tf"), script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "[[model.candidates]] 'trees': kind = 'gbt' needs the 'trees' extra, which is not "
        "installed (no module 'ydf'): pip install 'mooring-ml[trees]', or remove the candidate"
    )
