"""``mooring ops k8s OUT``: the package's files, written with the running version, 0644,
atomically, never over a file of an earlier run unless ``--force``."""

from __future__ import annotations

import stat
from pathlib import Path

from mooring import __version__
from mooring.ops._k8s import VERSION_TOKEN, k8s_files
from tests._support.cli import mooring_in_process


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_ops_k8s_writes_the_package_files_with_the_running_version(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    done = mooring_in_process("ops", "k8s", str(out))
    assert done.returncode == 0, done.stderr
    written = _tree(out)
    assert written == k8s_files(__version__)
    assert {"Dockerfile", ".dockerignore", "README.md", "wheels/README.md"} <= set(written)
    assert len([n for n in written if n.startswith("kubernetes/")]) == 10
    for name, payload in written.items():
        assert VERSION_TOKEN.encode() not in payload, name
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
        assert f"wrote {out / name}" in done.stdout
    assert f"ARG MOORING_VERSION={__version__}\n" in written["Dockerfile"].decode()
    assert f"docker build -t registry.example.com/mooring:{__version__} {out}" in done.stdout
    assert f"kubectl apply -k {out / 'kubernetes'} -n NAMESPACE" in done.stdout
    assert not list(out.rglob(".*.*"))  # no temporary file left beside them


def test_ops_k8s_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    assert mooring_in_process("ops", "k8s", str(out)).returncode == 0
    edited = out / "kubernetes" / "configmap.yaml"
    edited.write_text("mine\n")
    refused = mooring_in_process("ops", "k8s", str(out))
    assert refused.returncode == 2
    assert "already has Dockerfile" in refused.stderr
    assert "pass --force to overwrite them" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert edited.read_text() == "mine\n"
    forced = mooring_in_process("ops", "k8s", str(out), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert _tree(out) == k8s_files(__version__)


def test_ops_k8s_needs_no_project_and_refuses_a_file_as_out(tmp_path: Path) -> None:
    # No mooring.toml in the folder it runs in: the command reads none.
    afile = tmp_path / "deploy"
    afile.write_text("x")
    done = mooring_in_process("ops", "k8s", "deploy", cwd=tmp_path)
    assert done.returncode == 2
    assert "OUT deploy is a file, not a folder" in done.stderr
    assert "mooring.toml" not in done.stderr
