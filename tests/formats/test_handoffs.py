"""The records the pipeline hands on are read by attribute, their stored keys in formats/ only.

The steps hand the gate decision, the candidates and the trained model on as typed records
(``pipeline/_outputs.py`` holds no free ``dict[str, Any]``), and no module outside
``formats/`` reads a gate decision, a lineage, a training run's record or a candidate's
row by one of its stored keys (``decision["blessed"]``, ``lineage.get("run_id")``,
``record["epochs"]``): a reader goes through the record's attributes, so a key is named in
one place, beside its reader and writer.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

import mooring
from mooring.formats._candidate import CandidateRecord
from mooring.formats._gate import DecisionRecord, GateRecord
from mooring.formats._lineage import Lineage
from mooring.formats._training_run import TrainingRun
from tests._support.source import parse_file

SRC = Path(mooring.__file__).parent


def _keys(*records: type) -> frozenset[str]:
    return frozenset(f.name for r in records for f in fields(r)) - {"extra", "missing"}


#: (what a receiver's name looks like, the stored keys it must not be read by).
RULES = (
    (re.compile(r"decision|gate", re.IGNORECASE), _keys(DecisionRecord, GateRecord)),
    (re.compile(r"lineage", re.IGNORECASE), _keys(Lineage)),
    (re.compile(r"record|training|trainer", re.IGNORECASE), _keys(TrainingRun)),
    (re.compile(r"^c$|candidate", re.IGNORECASE), _keys(CandidateRecord)),
)
#: Reads that match a rule by name only, each with what it really reads.
NOT_THESE_RECORDS = {
    ("scale/_score.py", "record", "version"): "a scored shard's record of the version it used",
}


def _root(node: ast.expr) -> str:
    """The name a subscript or ``.get`` is read from: ``mv.lineage`` → ``lineage``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return ""


def _keyed_reads(tree: ast.AST) -> list[tuple[int, str, str]]:
    """Every ``x["key"]`` and ``x.get("key", ...)``: (line, receiver name, key)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            receiver, key = node.value, node.slice
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            receiver, key = node.func.value, node.args[0]
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            out.append((node.lineno, _root(receiver), key.value))
    return sorted(out)


def stored_key_reads(src: Path) -> list[str]:
    """The reads of a handed-on record's stored keys in ``src`` outside ``formats/``."""
    found = []
    for path in sorted(src.rglob("*.py")):
        where = path.relative_to(src).as_posix()
        if where.startswith("formats/"):
            continue
        for line, receiver, key in _keyed_reads(parse_file(path)):
            if (where, receiver, key) in NOT_THESE_RECORDS:
                continue
            if any(name.search(receiver) and key in keys for name, keys in RULES):
                found.append(f"{where}:{line}: {receiver}[{key!r}]")
    return found


def test_no_stored_key_of_a_handed_on_record_is_read_outside_formats() -> None:
    found = stored_key_reads(SRC)
    assert not found, (
        "read these records by attribute (DecisionRecord, Lineage, TrainingRun, "
        f"CandidateRecord), not by stored key: {found}"
    )


def test_the_scan_catches_keyed_reads(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    (tmp_path / "formats").mkdir()
    (tmp_path / "training" / "fit.py").write_text(
        'epochs = record["epochs"]\nworkers = mv.lineage.get("training_workers")\n'
        'ok = evaluated.decision["blessed"]\nshown = [c["name"] for c in rows]\n'
        'fine = record["anything_else"], config.get("epochs")\n'
    )
    (tmp_path / "formats" / "own.py").write_text('epochs = record["epochs"]\n')
    assert stored_key_reads(tmp_path) == [
        "training/fit.py:1: record['epochs']",
        "training/fit.py:2: lineage['training_workers']",
        "training/fit.py:3: decision['blessed']",
        "training/fit.py:4: c['name']",
    ]


def test_the_outputs_hand_on_no_free_dict() -> None:
    text = (SRC / "pipeline" / "_outputs.py").read_text("utf-8")
    assert "dict[str, Any]" not in text


@pytest.mark.parametrize("allowed", sorted(NOT_THESE_RECORDS))
def test_each_allowed_read_still_exists(allowed: tuple[str, str, str]) -> None:
    where, receiver, key = allowed
    reads = _keyed_reads(parse_file(SRC / where))
    assert any((r, k) == (receiver, key) for _, r, k in reads), f"{allowed} is gone: drop it"
