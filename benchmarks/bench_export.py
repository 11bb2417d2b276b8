"""Benchmark: TF Lite exports of the Adult model against its SavedModel, side by side.

One process trains the Adult model with ``examples/adult/mooring.toml`` (or the
``--epochs``/``--train-rows`` given), registers it in a fresh registry, and runs
``export_lite`` for each mode on the Adult test rows. Per mode it records:

* size of the SavedModel version (every file) and of the ``.tflite``;
* the evaluation layer's metrics of both on the same rows, and their deltas;
* per-row latency: the median of ``--latency-rows`` single-row calls of the LiteRT
  interpreter and of the SavedModel signature (TensorFlow), and the per-row time of
  one 1,024-row call of each;
* the gate's decision.

Two deliberately naive int8 variants run too, to show what the gate stops: int8
with ONE_HOT quantized as well (TF 2.21's default behaviour) and int8 calibrated on
a single repeated row.

Latencies are wall-clock on a shared machine and noisy; they are printed and written
to JSON (``benchmarks/results/bench_export.json``), never asserted in tests.

Usage::

    python benchmarks/bench_export.py                          # full Adult, 10 epochs
    python benchmarks/bench_export.py --epochs 1 --train-rows 5000 --latency-rows 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pyarrow as pa
import pyarrow.csv as pacsv

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.dashboard._card import render_model_card
from mooring.export._lite import export_lite
from mooring.formats._files import file_fingerprint
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged

HERE = Path(__file__).resolve().parent
ADULT = HERE.parent / "examples" / "adult"


def train(work: Path, epochs: int | None, train_rows: int | None) -> tuple[MooringConfig, Path]:
    """Train on Adult in ``work``; return the config and the model folder."""
    from mooring.training._train import train_model

    raw = tomllib.loads((ADULT / "mooring.toml").read_text(encoding="utf-8"))
    options = ReadOptions(na_values=("?", ""))
    table = read_table(ADULT / "adult.data.csv.gz", options)
    if train_rows is not None:
        table = table.slice(0, train_rows)
    pacsv.write_csv(table, work / "train.csv")
    raw["data"]["train"] = str(work / "train.csv")
    raw["data"]["eval"] = str(ADULT / "adult.test.csv.gz")
    raw["project"]["home"] = str(work / "home")
    raw["evaluation"] = {}
    if epochs is not None:
        raw["model"]["epochs"] = epochs
    cfg = MooringConfig.from_mapping(raw, root=work)
    stats = compute_statistics(work / "train.csv", ReadOptions.from_config(cfg.data))
    result = train_model(cfg, statistics=stats, schema=None, output_dir=work / "run")
    return cfg, Path(result.model_dir)


def summarize(result: Any, seconds: float) -> dict[str, Any]:
    data = result.to_dict()
    return {
        "passed": data["passed"],
        "reason": data["reason"],
        "size": data["size"],
        "metrics": data["metrics"],
        "deltas": data["deltas"],
        "agreement": data["agreement"],
        "latency": data["latency"],
        "float_ops": data["float_ops"],
        "calibration": data["calibration"],
        "warnings": data["warnings"],
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="Default: the example's.")
    parser.add_argument("--train-rows", type=int, default=None, help="Default: all rows.")
    parser.add_argument("--latency-rows", type=int, default=500)
    parser.add_argument("--modes", default="float16,dynamic,int8,int8-naive,int8-one-row")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_export.json")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {
        "benchmark": "export",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        cfg, model_dir = train(work, args.epochs, args.train_rows)
        report["train_seconds"] = time.perf_counter() - started
        cfg.export.latency_rows = args.latency_rows
        registry = Registry.from_config(cfg)
        version = register_judged(
            registry,
            name="income",
            artifact_dir=model_dir,
            record=VersionRecord(
                lineage={"data_fingerprint": file_fingerprint(work / "train.csv")},
                gate={"blessed": True, "gates": []},
            ),
            render_card=render_model_card,
        ).version
        train_table = read_table(work / "train.csv", ReadOptions.from_config(cfg.data))
        for variant in args.modes.split(","):
            settings = cfg.model_copy(deep=True)
            settings.root = cfg.root
            calibration: pa.Table | None = None
            mode = variant
            if variant == "int8-naive":
                mode = "int8"
                settings.export.int8_float_ops = []
            elif variant == "int8-one-row":
                mode = "int8"
                calibration = pa.concat_tables([train_table.slice(0, 1)] * 300)
            begin = time.perf_counter()
            result = export_lite(
                registry,
                "income",
                version=version,
                mode=mode,
                config=settings,
                calibration_data=calibration,
                register=variant == mode,
                out=work / "exports" / variant,
            )
            report["modes"][variant] = summarize(result, time.perf_counter() - begin)
        registry.close()

    print(f"Adult model, {report['train_seconds']:.0f} s to train; eval rows: adult.test")
    header = (
        f"{'variant':<14}{'SavedModel':>12}{'TF Lite':>10}{'ratio':>7}"
        f"{'ΔAUC pp':>9}{'Δacc pp':>9}{'SM ms/row':>11}{'TFL ms/row':>11}{'×':>7}  gate"
    )
    print(header)
    for variant, block in report["modes"].items():
        size, deltas, lat = block["size"], block["deltas"], block["latency"]

        def pp(key: str, deltas: dict[str, Any] = deltas) -> str:
            value = deltas.get(key)
            return "—" if value is None else f"{value * 100:+.2f}"

        print(
            f"{variant:<14}{size['savedmodel_bytes']:>12,}"
            f"{(size['tflite_bytes'] or 0):>10,}{(size['ratio'] or 0):>7.3f}"
            f"{pp('auc'):>9}{pp('accuracy'):>9}"
            f"{lat.get('savedmodel_ms_per_row', float('nan')):>11.3f}"
            f"{lat.get('interpreter_ms_per_row', float('nan')):>11.3f}"
            f"{(lat.get('speedup') or 0):>7.1f}  {'pass' if block['passed'] else 'REFUSED'}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
