"""What the commands write can be read by the others the umask lets in (0644 under umask
022), as every other program's files can; the audit key stays its owner's (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests._support.cli import mooring_in_process


def test_init_schema_and_rules_files_are_0644_and_the_audit_key_0600(tmp_path: Path) -> None:
    rows = ["plant,reading,shift,ok"] + [
        f"P-{i % 3},{(i * 7) % 23 / 2},{('day', 'night')[i % 2]},{('yes', 'no')[i % 3 == 0]}"
        for i in range(120)
    ]
    (tmp_path / "plants.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = os.umask(0o022)
    try:
        steps = (
            ("init", "plants.csv", "--label", "ok"),
            ("schema", "infer", "plants.csv", "--out", "contract/schema.yaml"),
            ("ops", "prometheus", "--no-check", "--out", "ops"),
        )
        for args in steps:
            done = mooring_in_process(*args, cwd=tmp_path)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        os.umask(before)
    modes = {
        str(path.relative_to(tmp_path)): stat.S_IMODE(path.stat().st_mode)
        for path in tmp_path.rglob("*")
        if path.is_file() and path.name != "plants.csv"
    }
    assert modes.pop(".mooring/audit.key") == 0o600  # made with the project's state
    assert {"mooring.toml", "contract/schema.yaml", "plants.holdout.parquet"} <= set(modes)
    assert any(name.startswith("ops/") and name.endswith(".rules.yml") for name in modes)
    assert {name: mode for name, mode in modes.items() if mode != 0o644} == {}
