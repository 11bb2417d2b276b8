"""The explainers' cache: one per folder and export, the four used last."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from mooring.explain import _explainers, load_explainer
from mooring.formats._model import METADATA_FILE


def test_the_cache_keeps_the_four_explainers_used_last(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_explainers, "_CACHE", OrderedDict())
    monkeypatch.setattr(_explainers, "read_metadata", lambda path, what: {})
    monkeypatch.setattr(_explainers, "_open", lambda path, metadata, what=None: object())
    folders = []
    for n in range(6):
        (tmp_path / str(n)).mkdir()
        (tmp_path / str(n) / METADATA_FILE).write_text("{}")
        folders.append(tmp_path / str(n))
    loaded = [load_explainer(folder) for folder in folders[:4]]
    assert load_explainer(folders[0]) is loaded[0]  # used again: now the newest
    load_explainer(folders[4])
    load_explainer(folders[5])
    assert len(_explainers._CACHE) == 4
    assert load_explainer(folders[0]) is loaded[0]
    assert load_explainer(folders[3]) is loaded[3]
    assert load_explainer(folders[1]) is not loaded[1]  # the oldest went, loaded again
