"""Benchmark: the ops a corpus of real models uses, and whether the allow-list admits them.

The corpus (``tests/_support/op_corpus.py``) is what the op allow-list
(``mooring.formats._ops_allowed``) was collected from: every Keras 3 layer family and
preprocessing layer exported with ``model.export``, four Keras applications, networks
written with plain TensorFlow (``tf.Module`` and ``tf.function``: math, linear algebra,
shapes, control flow and variables, strings and lookup tables, sparse and ragged
tensors, signal processing, image decoding, random ops, ``tf.nn``, gradients), the
imported models the suite serves, YDF's inference (``to_tensorflow_saved_model``) and
mooring's own exports (the training layer's signature; the Adult project's MLP with its
explain signature, linear model and trees, trained briefly). Each model is exported into
a temporary folder and walked with the vetting's own walk (:func:`walk_ops`: the
top-level graph, every function, graphs carried in string constants), then vetted with
no ``--allow-op``.

Writes ``--out`` (``benchmarks/results/op_corpus.json``): per model its family, the
seconds its export took, its ops, and the vetting's verdict; per op the models that use
it and whether the allow-list holds it (``allowed``, ``checked``: an allocation sized
against the probe's memory, an asset read or the saver's checkpoint ops, or ``refused``);
and the ops of the allow-list no corpus model uses. Exits 1 when a model is refused or
fails to export.

Usage::

    python benchmarks/bench_op_corpus.py                        # every model (about 10 minutes)
    python benchmarks/bench_op_corpus.py --only tf-math --only keras-lstm
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def export_and_vet(name: str, work: Path) -> dict[str, Any]:
    """Export one model of the corpus into ``work``, walk it and vet it: its record."""
    from tests._support.op_corpus import CORPUS

    from mooring.errors import ModelLoadError
    from mooring.formats._vetting import vet_saved_model, walk_ops

    family, build = CORPUS[name]
    started = time.perf_counter()
    record: dict[str, Any] = {"family": family}
    try:
        folder = build(work / name)
        record["export_s"] = round(time.perf_counter() - started, 2)
        record["ops"] = sorted({op for op, _, _ in walk_ops(folder)})
        try:
            vet_saved_model(folder, what=f"'{name}'")
            record["vetted"] = "passed"
        except ModelLoadError as exc:
            record["vetted"] = f"refused: {exc}"
    except Exception as exc:
        record["error"] = "".join(traceback.format_exception_only(exc)).strip()
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], help="a model of the corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/op_corpus.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one model, in a process of its own: its record on the last line
        print(json.dumps(export_and_vet(args.child, args.work)))
        return 0

    from tests._support.op_corpus import CORPUS

    from mooring.formats._vetting import ALLOWED_OPS, ASSET_READERS, CHECKPOINT_OPS

    names = args.only or list(CORPUS)
    models: dict[str, dict[str, Any]] = {}
    users: dict[str, set[str]] = defaultdict(set)
    with tempfile.TemporaryDirectory(prefix="op-corpus-") as work:
        for name in names:
            # Each model in a fresh process: what one export leaves in TensorFlow's or
            # Keras's state cannot change the next one's graph.
            child = [sys.executable, __file__, "--child", name, "--work", work]
            done = subprocess.run(child, capture_output=True, text=True, check=False)
            lines = done.stdout.strip().splitlines()
            try:
                record = json.loads(lines[-1])
            except (IndexError, json.JSONDecodeError):
                record = {"family": CORPUS[name][0], "error": done.stderr[-2000:]}
            for op in record.get("ops", []):
                users[op].add(name)
            models[name] = record
            print(
                f"{name:32} {record.get('export_s', '-'):>7} s "
                f"{len(record.get('ops', [])):4} ops  "
                f"{record.get('vetted', record.get('error', ''))[:300]}",
                flush=True,
            )
    failed = sum(1 for m in models.values() if m.get("vetted") != "passed")

    def status(op: str) -> str:
        if op in CHECKPOINT_OPS or op in ASSET_READERS:
            return "checked"
        return "allowed" if op in ALLOWED_OPS else "refused"

    table = {op: {"status": status(op), "models": sorted(users[op])} for op in sorted(users)}
    unused = sorted(set(ALLOWED_OPS) - set(users)) if not args.only else []
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.platform(),
        "models": models,
        "ops": table,
        "allow_list_size": len(ALLOWED_OPS),
        "ops_used": len(table),
        "allow_list_unused": unused,
        "passed": sum(1 for m in models.values() if m.get("vetted") == "passed"),
        "failed": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(
        f"{result['passed']} of {len(models)} models pass with no --allow-op; "
        f"{len(table)} ops used, {len(ALLOWED_OPS)} on the allow-list ({len(unused)} unused)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
