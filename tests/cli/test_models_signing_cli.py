"""``mooring models verify`` and ``mooring models sign``: a version's signature from the
command line, with the keys mooring.toml names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mooring.cli import main
from mooring.config import load_config
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import key_file
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir


def test_verify_prints_the_state_and_sign_signs_an_older_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signing.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "income"\nhome = "home"\n[data]\ntrain = "t.csv"\n'
        '[registry]\nsigning_key = "keys/signing.pem"\nrequire_signatures = true\n'
    )
    cfg = load_config(config)
    record = VersionRecord(lineage=LINEAGE, gate=BLESSED)
    with Registry.from_config(cfg) as reg:  # signs with the project's key
        register_judged(reg, "income", make_model_dir(tmp_path / "src", 0), record)
    url = f"sqlite:///{cfg.home / 'registry.db'}"
    with Registry.open(url, audit_key_file=key_file(cfg)) as reg:  # no signing key: unsigned
        register_judged(reg, "income", make_model_dir(tmp_path / "src", 1), record)

    assert main(["models", "verify", "income", "1", "-c", str(config)]) == 0
    assert "income@1: verified: signed by key sha256:" in capsys.readouterr().out

    assert main(["models", "verify", "income", "2", "-c", str(config), "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["key"]) == ("unsigned", None)
    assert "require_signatures = true; sign it (`mooring models sign income 2`" in shown["refused"]

    argv = ["models", "sign", "income", "2", "-c", str(config), "--actor", "ana", "-r", "late"]
    assert main(argv) == 0
    assert "income@2: verified" in capsys.readouterr().out
    assert main([*argv, "--json"]) == 2  # signed already: --replace signs it again
    assert "pass replace=True (CLI: --replace)" in " ".join(capsys.readouterr().err.split())
    assert main(["models", "promote", "income", "2", "-c", str(config)]) == 0
