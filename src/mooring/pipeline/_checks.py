"""The run's settings checked against its task before anything trains.

A gate on a metric the evaluation never computes (a typo, ``rsme``; a metric of another
task, ``auc`` on a regression) would otherwise fail only after every candidate trained,
and a candidate whose kind needs an extra that is not installed only after the others
trained. The train step calls :func:`check_settings` first, once the task is known
(``[model] task``, or what ``task = "auto"`` decides from the label), so the run stops
in seconds with every such problem listed, each naming its field, the value and a
close name (``difflib``) where there is one.

The metric names are the evaluation's own: what its metric suite computes for the task
(:func:`mooring.evaluation._metrics.prepare`), and the comparisons with production
(``flip_rate``, ``mean_abs_diff``) any gate may read.

Examples:
    >>> metric_names("regression")[:4]
    ('rmse', 'mae', 'r2', 'mape')
    >>> metric_problem("rsme", "regression")
    "'rsme' is not a regression metric; did you mean 'rmse'?"
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from typing import cast

import numpy as np

from mooring.config import MooringConfig
from mooring.errors import ConfigError, MissingExtraError
from mooring.evaluation._gates import COMPARISON_METRICS
from mooring.evaluation._metrics import Task, prepare

__all__ = ["check_settings", "metric_names", "metric_problem"]

TASKS = ("binary", "multiclass", "regression")

#: The modules a model kind needs beyond the core, and the extra that installs them.
KIND_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {"gbt": ("trees", ("ydf", "ydf_tf"))}


@functools.cache
def metric_names(task: str) -> tuple[str, ...]:
    """Every scalar metric the evaluation computes for ``task``, in the suite's order."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is none of {TASKS}")
    labels = np.array([0.0, 1.0, 2.0] if task == "multiclass" else [0.0, 1.0])
    predictions = np.eye(3) if task == "multiclass" else np.array([0.25, 0.75])
    return prepare(cast("Task", task), labels=labels, predictions=predictions).names


def metric_problem(name: str, task: str, *, comparisons: bool = False) -> str | None:
    """Why ``name`` is no metric of ``task`` (with the closest one), or None when it is.

    ``comparisons``: the comparisons with production (``flip_rate``) count as metrics.
    """
    known = metric_names(task) + (COMPARISON_METRICS if comparisons else ())
    if name in known:
        return None
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close = close or [k for k in known if name in k.split("_")]  # f1: macro_f1
    if close:
        return f"{name!r} is not a {task} metric; did you mean {close[0]!r}?"
    other = [t for t in TASKS if t != task and name in metric_names(t)]
    why = f"a {other[0]} metric, not a {task} one" if other else f"not a {task} metric"
    return f"{name!r} is {why}; the {task} metrics are {', '.join(known)}"


def check_settings(cfg: MooringConfig, task: str) -> None:
    """Refuse, before training, settings the run would trip over after it.

    Raises:
        MissingExtraError: a model kind needs an extra that is not installed (alone).
        ConfigError: a gate, ``[model] select`` or ``[evaluation.bootstrap] metrics``
            names no metric of ``task``; every problem on its own line.
    """
    problems: list[str] = []
    for number, gate in enumerate(cfg.evaluation.gates, start=1):
        problem = metric_problem(gate.metric, task, comparisons=True)
        if problem is not None:
            problems.append(f"[[evaluation.gates]] {number}: metric {problem}")
    select = cfg.model.select
    if select is not None:
        problem = metric_problem(select, task)
        if problem is not None:
            problems.append(f"[model] select = {problem}")
    for name in cfg.evaluation.bootstrap.metrics or ():
        problem = metric_problem(name, task)
        if problem is not None:
            problems.append(f"[evaluation.bootstrap] metrics: {problem}")
    missing = _missing_extras(cfg)
    if missing and not problems:
        raise MissingExtraError("\n".join(missing))
    problems += missing
    if problems:
        raise ConfigError("\n".join(problems))


def _missing_extras(cfg: MooringConfig) -> list[str]:
    """One line per model that needs an extra that is not installed."""
    out: list[str] = []
    for name, model in cfg.model.resolved_candidates():
        if model.kind not in KIND_EXTRAS:
            continue
        extra, modules = KIND_EXTRAS[model.kind]
        absent = [m for m in modules if not _importable(m)]
        if not absent:
            continue
        where = (
            f"[[model.candidates]] {name!r}: kind = {model.kind!r}"
            if cfg.model.candidates
            else f"[model] kind = {model.kind!r}"
        )
        instead = "remove the candidate" if cfg.model.candidates else 'use kind = "mlp"'
        out.append(
            f"{where} needs the {extra!r} extra, which is not installed (no module "
            f"{absent[0]!r}): pip install 'mooring-ml[{extra}]', or {instead}"
        )
    return out


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
