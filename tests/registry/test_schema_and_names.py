"""Migrations, names, manifests, config defaults and connection errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from mooring.config import MooringConfig
from mooring.errors import RegistryUnavailableError, UsageError
from mooring.registry import Registry
from mooring.registry._manifest import build_manifest, diff_folder
from mooring.registry._names import check_alias, check_model_name
from mooring.registry._sql.store import SqlStore, mask_url
from mooring.registry._sql.tables import metadata
from mooring.registry.migrations import HEAD, LOCATION
from tests._support.artifacts import make_model_dir


def test_head_constant_matches_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_migrated_schema_matches_tables(db_url: str) -> None:
    SqlStore(db_url).close()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_import_is_light() -> None:
    code = "import sys, mooring.registry; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@given(st.text(max_size=40))
def test_model_name_is_valid_or_refused(name: str) -> None:
    try:
        result = check_model_name(name)
    except UsageError:
        return
    assert result == name
    assert "/" not in name and "\\" not in name and ".." not in name and name.strip() == name


@given(st.text(max_size=70))
def test_alias_is_valid_or_refused(alias: str) -> None:
    try:
        result = check_alias(alias)
    except UsageError:
        return
    assert result == alias
    assert alias[0].isascii() and alias[0].isalpha() and len(alias) <= 64


def test_manifest_and_diff(tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path)
    manifest = build_manifest(folder)
    assert sorted(manifest.files) == [
        "mooring.json",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    assert manifest.dirs == ("assets", "variables")
    assert diff_folder(folder, manifest).ok
    (folder / "mooring.json").write_text("{}")
    (folder / "new.txt").write_text("x")
    diff = diff_folder(folder, manifest)
    assert (diff.changed, diff.extra) == (("mooring.json",), ("new.txt",))
    (folder / "link").symlink_to(folder / "new.txt")
    with pytest.raises(UsageError, match=r"contains 'link', which is not a regular file"):
        build_manifest(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=r"contains no files"):
        build_manifest(empty)


def test_from_config_defaults(tmp_path: Path) -> None:
    cfg = MooringConfig.from_mapping(
        {"project": {"name": "income", "home": "state"}, "data": {"train": "t.csv"}},
        root=tmp_path,
    )
    with Registry.from_config(cfg) as reg:
        assert reg.store.url == f"sqlite:///{tmp_path / 'state' / 'registry.db'}"
        assert Path(reg.artifacts.root) == tmp_path / "state" / "artifacts"
    assert (tmp_path / "state" / "registry.db").is_file()


def test_bad_urls_are_clear_and_masked(tmp_path: Path) -> None:
    with pytest.raises(
        RegistryUnavailableError, match=r"postgresql\+psycopg://ana:\*\*\*@"
    ) as info:
        Registry.open("postgresql+psycopg://ana:hunter2@127.0.0.1:1/reg", artifacts=tmp_path)
    assert "hunter2" not in str(info.value)
    with pytest.raises(UsageError, match=r"is not a database URL"):
        Registry.open("not a url", artifacts=tmp_path)
    with pytest.raises(UsageError, match=r"unsupported database 'mysql'"):
        Registry.open("mysql://u:pw@host/db", artifacts=tmp_path)
    with pytest.raises(UsageError, match=r"names no database file"):
        Registry.open("sqlite://", artifacts=tmp_path)
    with pytest.raises(UsageError, match=r"needs an artifacts location"):
        Registry.open("postgresql+psycopg://ana@127.0.0.1:1/reg")
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
