"""A three-candidate Adult project (linear, mlp, gbt) with tiny training budgets."""

from __future__ import annotations

from pathlib import Path

from tests._support.project import MODEL, write_project

# The project's fast [model] keys, then one table per candidate; each trains in seconds.
CANDIDATES = (
    MODEL
    + """\
select = "auc"

[[model.candidates]]
name = "linear"
kind = "linear"

[[model.candidates]]
name = "mlp"
kind = "mlp"

[[model.candidates]]
name = "gbt"
kind = "gbt"
gbt = { num_trees = 10, max_depth = 3, early_stopping = false }

"""
)

BASELINE_GATE = '[[evaluation.gates]]\nkind = "baseline"\nmetric = "auc"\nbaseline = "linear"\n'


def write_candidates_project(
    root: Path, data: dict[str, Path], *, extra: str = "", baseline_gate: bool = True
) -> Path:
    """A project whose run trains the three candidates; ``extra`` ends its [pipeline].

    With ``baseline_gate`` every candidate must be no worse than the linear one, which is
    solved to its optimum: the tiny mlp and gbt budgets here do not pass it on Adult."""
    toml = write_project(root, data, model=CANDIDATES, extra=extra)
    if not baseline_gate:
        return toml
    # The baseline gate goes beside the project's AUC floor.
    text = toml.read_text(encoding="utf-8").replace("[rollout]", BASELINE_GATE + "[rollout]", 1)
    toml.write_text(text, encoding="utf-8")
    return toml
