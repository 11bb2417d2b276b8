"""The evaluation report's global view: each column's mean absolute attribution."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.dashboard._evaluation_report import _attributions
from mooring.evaluation._model import attribution_summary
from mooring.explain._explanation import EXPLAINED_ROWS
from mooring.formats._model import load_saved_model
from tests._support.shared import built_once, shared_root
from tests.explain.conftest import build_network, explain_table


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The binary network of tests/explain (the same shared build)."""
    root = shared_root(tmp_path_factory) / "explain-networks"
    return built_once(root / "binary", lambda out: build_network(out, "binary")) / "model"


def test_the_summary_ranks_the_columns_and_the_ignored_one_last(network: Path) -> None:
    summary = attribution_summary(load_saved_model(network, warn=False), explain_table(300))
    assert summary is not None
    assert summary["rows"] == EXPLAINED_ROWS and summary["method"] == "integrated_gradients"
    assert summary["completeness_error"] < 0.01
    ranked = list(summary["mean_abs_attribution"])
    assert sorted(ranked) == sorted(["Âge", "Income", "Colour", "city", "noise"])
    assert ranked[-1] == "noise" and summary["mean_abs_attribution"]["noise"] < 1e-7
    html = _attributions(summary)
    assert "<h2>Attributions</h2>" in html and "Âge" in html and "probability of yes" in html


def test_a_table_without_a_model_column_has_no_summary(network: Path) -> None:
    table = explain_table(50).drop_columns(["city"])
    assert attribution_summary(load_saved_model(network, warn=False), table) is None
    assert _attributions(None) == ""
