"""Atomic writes: the new file's mode is what the umask allows (a secret's is the owner's
only), and a failed write leaves neither the file nor its temporary behind."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.formats._files import atomic_write, temporary_folder


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@settings(max_examples=40, deadline=None)
@given(mask=st.integers(0, 0o777))
def test_modes_follow_the_umask_and_secrets_stay_the_owners(
    tmp_path_factory: pytest.TempPathFactory, mask: int
) -> None:
    folder = tmp_path_factory.mktemp("modes")
    with _umask(mask):
        shared = atomic_write(folder / "mooring.toml", b"[project]\n")
        secret = atomic_write(folder / "audit.key", b"00\n", private=True)
        made = temporary_folder(folder, ".model.partial-")
    assert _mode(shared) == 0o666 & ~mask
    assert _mode(secret) == 0o600 & ~mask
    assert _mode(made) == 0o777 & ~mask
    assert made.name.startswith(".model.partial-") and not any(made.iterdir())


def test_a_replaced_file_takes_the_new_mode_and_its_bytes(tmp_path: Path) -> None:
    with _umask(0o022):
        target = tmp_path / "rules.yml"
        target.write_bytes(b"old")
        target.chmod(0o600)  # as an earlier release wrote every file
        atomic_write(target, b"new")
        assert (_mode(target), target.read_bytes()) == (0o644, b"new")
        atomic_write(target, b"key", private=True)
        assert (_mode(target), target.read_bytes()) == (0o600, b"key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.yml"]


def test_a_failed_write_leaves_no_temporary_and_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "schema.yaml"
    atomic_write(target, b"old")

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["schema.yaml"]
    assert target.read_bytes() == b"old"
