"""A model folder appears whole or not at all: what an interrupted export leaves behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mooring.errors import SchemaError
from mooring.training._export import staged_folder


def _model(folder: Path, text: str) -> None:
    (folder / "variables").mkdir()
    (folder / "saved_model.pb").write_text(text)
    (folder / "mooring.json").write_text("{}")


def _interrupted_export(target: Path) -> None:
    with staged_folder(target) as folder:
        (folder / "saved_model.pb").write_text("half")
        raise KeyboardInterrupt("Ctrl-C")


def test_an_interrupted_export_leaves_the_earlier_model_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with staged_folder(target) as folder:
        assert not target.exists() and folder.parent == tmp_path
        _model(folder, "first")
    assert (target / "saved_model.pb").read_text() == "first"
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        _interrupted_export(target)
    assert (target / "saved_model.pb").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_complete_export_replaces_the_earlier_model_and_clears_a_killed_ones_folder(
    tmp_path: Path,
) -> None:
    target = tmp_path / "model"
    target.mkdir()
    _model(target, "first")
    killed = tmp_path / ".model.partial-abc123"  # a process killed outright while writing
    killed.mkdir()
    (killed / "saved_model.pb").write_text("half")
    with staged_folder(target) as folder:
        assert not killed.exists()
        _model(folder, "second")
    assert (target / "saved_model.pb").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # The folder renamed into place has mkdir's mode (0755 under umask 022), not 0700.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


def test_a_folder_that_is_no_model_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "notes"
    target.mkdir()
    (target / "todo.txt").write_text("keep me")
    with (
        pytest.raises(SchemaError, match=r"'.*notes' exists and is not a mooring model folder"),
        staged_folder(target),
    ):
        pass
    assert (target / "todo.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_folder(empty) as folder:
        _model(folder, "new")
    assert (empty / "mooring.json").is_file()
