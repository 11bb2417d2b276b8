"""``bench_training.py --workers``: one process against several data-parallel workers.

The Adult training set resampled to ``--rows`` rows (``make_data``), the example
project's network, ``--epochs`` epochs, in two batch settings: ``global`` (the example
config's batch of 256, split across the workers) and ``per_worker`` (``--big-batch``
rows per worker a step, the learning rate scaled by the workers). Each cell is a fresh
process running ``train_model``; every worker has a core of its own:

* ``process``: plain one-process training (``[training] workers = 1``), pinned to one
  core, one TensorFlow thread;
* ``workers-1``: the multi-worker path (shards, supervisor, ``MultiWorkerMirroredStrategy``
  and the custom loop) with one worker, pinned to one core;
* ``local-2``: two local workers, each pinned to its own core;
* ``ray-2``: two Ray actors (one CPU each) on a private Ray cluster on this machine;
* ``pair``: two one-worker jobs at once, each on its own core, sharing nothing: the
  slower core's rate is what a synchronous two-worker job can reach on this machine
  (its steps wait for the slower worker), whatever the communication costs.

Reported per cell: examples/s of the fit (examples trained ÷ fit seconds, validation
included), per-worker examples/s, seconds to join, the final validation AUC and the
seconds until the validation AUC first came within 0.003 of the one-process run's final
AUC (epoch seconds summed). Derived:

* per-worker efficiency against one worker of the same path (÷ ``workers-1``'s rate;
  floor 0.80), against one process (÷ ``process``'s) and against the slower core
  (÷ ``pair``'s);
* the multi-worker path's overhead with one worker (``workers-1``'s fit seconds ÷
  ``process``'s − 1; floor 0.10);
* the communication cost per step: ``local-2``'s seconds per step − ``pair``'s, at the
  same rows per worker (what the all-reduce and the wait add to the slower core's own
  step), and the efficiency it projects for 8 and 32 workers with a ring all-reduce
  whose cost grows with the hops, N − 1 times the two-worker cost (an upper bound on
  one machine's loopback; a network's bandwidth term grows more slowly).

``--rounds`` interleaved rounds (the cells' order rotated each round), medians of
per-round figures. Floors are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult"
CELLS = ("process", "workers-1", "pair", "local-2", "ray-2")


def run_cell(cell: str, path: Path, epochs: int, batch: str, big_batch: int) -> dict[str, Any]:
    """One cell in this (fresh) process; the run's figures."""
    if cell == "process":
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from mooring.config import load_config
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._distributed import DistributedTrainer, launch_local
    from mooring.training._fit import Run
    from mooring.training._labels import resolve_label
    from mooring.training._train import train_model

    cfg = load_config(ADULT / "mooring.toml")
    cfg.data.train = str(path)
    cfg.data.eval = None
    cfg.model.epochs = epochs
    cfg.model.threads = 1
    cfg.model.parity_records = 100
    workers = 2 if cell.endswith("-2") else 1
    cfg.model.batch_size = 256  # the example project's
    if batch == "per_worker":
        cfg.training.batch = "per_worker"
        cfg.model.batch_size = big_batch
    cfg.training.workers = workers
    cfg.training.engine = "ray" if cell == "ray-2" else "local"  # type: ignore[assignment]
    options = ReadOptions.from_config(cfg.data)
    stats = compute_statistics(path, options)
    schema = infer_schema(stats, label=cfg.data.label, contract=cfg.contract)

    def pinned(job: Any, callbacks: Any) -> dict[str, Any]:
        return launch_local(job, callbacks, pin_cores=True)

    with tempfile.TemporaryDirectory() as out:
        if cell == "workers-1":
            from datetime import UTC, datetime

            from mooring.features._infer import build_feature_spec

            label = resolve_label(cfg, stats, schema)
            spec = build_feature_spec(
                cfg.features, statistics=stats, schema=schema, label=label.column
            )
            run = Run(
                cfg,
                spec,
                label,
                source=path,
                options=options,
                seed=int(cfg.model.seed or 0),
                started=datetime.now(UTC).isoformat(),
                output_dir=Path(out),
                clock=(time.perf_counter(), time.process_time()),
            )
            result = DistributedTrainer(pinned).train(run)
        else:
            launcher = None  # process: one process, no launcher
            if cell == "local-2":
                launcher = pinned
            elif cell == "ray-2":
                from mooring.scale._training import training_launcher

                launcher = training_launcher(cfg)
            result = train_model(
                cfg, statistics=stats, schema=schema, output_dir=Path(out), launcher=launcher
            )
    record = result.record
    steps = record.data["steps_per_epoch"] * len(result.epochs)
    distributed = record.distributed or {}
    return {
        "cell": cell,
        "batch": batch,
        "workers": workers,
        "global_batch": distributed.get("global_batch", record.plan["batch_size"]),
        "fit_seconds": result.timings["fit_seconds"],
        "examples_per_second": result.timings["examples_per_second"],
        "per_worker_examples_per_second": result.timings["examples_per_second"] / workers,
        "seconds_per_step": result.timings["fit_seconds"] / steps,
        "steps": steps,
        "join_seconds": (distributed.get("join_seconds") or [None])[0],
        "epochs": [{"seconds": e["seconds"], "val_auc": e.get("val_auc")} for e in result.epochs],
        "final_val_auc": result.epochs[-1].get("val_auc"),
    }


def _start(
    cell: str, path: Path, epochs: int, batch: str, big_batch: int, core: int | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, str(HERE / "bench_training.py"), "--cell", cell, "--path", str(path)]
    args += ["--epochs", str(epochs), "--cell-batch", batch, "--big-batch", str(big_batch)]
    if core is not None:
        args = ["taskset", "-c", str(core), *args]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _result(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{err[-4000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _measure(cell: str, path: Path, epochs: int, batch: str, big_batch: int) -> dict[str, Any]:
    if cell != "pair":
        return _result(_start(cell, path, epochs, batch, big_batch), f"{cell} ({batch})")
    # Two one-worker jobs at once, one per core, nothing shared: each core's own rate.
    cores = sorted(os.sched_getaffinity(0))[:2]
    procs = [_start("workers-1", path, epochs, batch, big_batch, core) for core in cores]
    pair = [_result(p, f"pair ({batch})") for p in procs]
    slowest = min(pair, key=lambda r: r["examples_per_second"])
    return {**slowest, "cell": "pair", "cores": [r["examples_per_second"] for r in pair]}


def _time_to(cell: dict[str, Any], target: float) -> float | None:
    elapsed = 0.0
    for epoch in cell["epochs"]:
        elapsed += epoch["seconds"]
        if epoch["val_auc"] is not None and epoch["val_auc"] >= target:
            return elapsed
    return None


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell over its rounds: medians of its rates, times and efficiencies."""
    first = rounds[0]
    return {
        "cell": first["cell"],
        "workers": first["workers"],
        "global_batch": first["global_batch"],
        "examples_per_second": _median([r["examples_per_second"] for r in rounds]),
        "per_worker_examples_per_second": _median(
            [r["per_worker_examples_per_second"] for r in rounds]
        ),
        "seconds_per_step": _median([r["seconds_per_step"] for r in rounds]),
        "fit_seconds": _median([r["fit_seconds"] for r in rounds]),
        "join_seconds": (
            _median([r["join_seconds"] for r in rounds])
            if first["join_seconds"] is not None
            else None
        ),
        "final_val_auc": _median([r["final_val_auc"] for r in rounds]),
        "seconds_to_auc": (
            _median([r["seconds_to_auc"] for r in rounds])
            if all(r["seconds_to_auc"] is not None for r in rounds)
            else None
        ),
        "efficiency_vs_one_worker": _median([r["efficiency_vs_one_worker"] for r in rounds]),
        "efficiency_vs_process": _median([r["efficiency_vs_process"] for r in rounds]),
        "efficiency_vs_slower_core": _median([r["efficiency_vs_slower_core"] for r in rounds]),
        "rounds": rounds,
    }


def run_workers_benchmark(
    path: Path, epochs: int, big_batch: int, out: Path, rounds: int
) -> dict[str, Any]:
    """Every cell in both batch settings, ``rounds`` interleaved rounds (the cells'
    order rotated each round); medians and the derived figures; written to ``out``."""
    started = time.time()
    settings: dict[str, Any] = {}
    for batch in ("global", "per_worker"):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CELLS}
        for index in range(rounds):
            order = CELLS[index % len(CELLS) :] + CELLS[: index % len(CELLS)]
            measured = {c: _measure(c, path, epochs, batch, big_batch) for c in order}
            process, one = measured["process"], measured["workers-1"]
            target = float(process["final_val_auc"]) - 0.003
            for cell in measured.values():
                cell["seconds_to_auc"] = _time_to(cell, target)
                per_worker = cell["per_worker_examples_per_second"]
                cell["efficiency_vs_one_worker"] = per_worker / one["examples_per_second"]
                cell["efficiency_vs_process"] = per_worker / process["examples_per_second"]
                cell["efficiency_vs_slower_core"] = (
                    per_worker / measured["pair"]["examples_per_second"]
                )
                cell["overhead_vs_process"] = cell["fit_seconds"] / process["fit_seconds"] - 1
                runs[cell["cell"]].append(cell)
        cells = {c: _summarize(runs[c]) for c in CELLS}
        one = cells["workers-1"]
        overhead = _median([r["overhead_vs_process"] for r in runs["workers-1"]])
        # The step's wait beyond the slower core's own step: the all-reduce and the sync.
        comm = cells["local-2"]["seconds_per_step"] - cells["pair"]["seconds_per_step"]
        compute = cells["pair"]["seconds_per_step"]
        same_rows = batch == "per_worker"  # the same rows per worker a step in both cells
        projected = {
            str(n): compute / (compute + max(0.0, comm) * (n - 1)) if same_rows else None
            for n in (8, 32)
        }
        local = cells["local-2"]["efficiency_vs_one_worker"]
        settings[batch] = {
            "cells": cells,
            "multi_worker_overhead_one_worker": overhead,
            "communication_seconds_per_step": comm if same_rows else None,
            "projected_efficiency": projected,
            "floors": {
                "per-worker efficiency >= 0.80 of one worker (local-2)": local >= 0.80,
                "per-worker efficiency >= 0.80 of the slower core (local-2)": cells["local-2"][
                    "efficiency_vs_slower_core"
                ]
                >= 0.80,
                "multi-worker path with one worker <= 10% slower than one process": overhead
                <= 0.10,
            },
        }
    report = {
        "benchmark": "training-workers",
        "data": path.name,
        "epochs": epochs,
        "big_batch": big_batch,
        "rounds": rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "seconds": time.time() - started,
        "settings": settings,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def print_workers(report: dict[str, Any]) -> None:
    """The report as tables, one per batch setting."""
    print(f"\n{report['rounds']} interleaved rounds, medians; {report['machine']['cpus']} CPUs")
    for batch, setting in report["settings"].items():
        print(f"\n[{batch} batch]")
        print(
            f"{'cell':10s} {'batch':>6s} {'ex/s':>9s} {'ex/s/wkr':>9s} {'eff/1w':>6s} "
            f"{'eff/pr':>6s} {'eff/sc':>6s} {'ms/step':>8s} {'join s':>6s} {'AUC':>7s} "
            f"{'s to AUC':>8s}"
        )
        for name, c in setting["cells"].items():
            join = f"{c['join_seconds']:.1f}" if c["join_seconds"] is not None else "-"
            to = f"{c['seconds_to_auc']:.1f}" if c["seconds_to_auc"] is not None else "never"
            print(
                f"{name:10s} {c['global_batch']:6d} {c['examples_per_second']:9,.0f} "
                f"{c['per_worker_examples_per_second']:9,.0f} "
                f"{c['efficiency_vs_one_worker']:6.2f} {c['efficiency_vs_process']:6.2f} "
                f"{c['efficiency_vs_slower_core']:6.2f} "
                f"{c['seconds_per_step'] * 1000:8.1f} {join:>6s} {c['final_val_auc']:7.4f} "
                f"{to:>8s}"
            )
        overhead = setting["multi_worker_overhead_one_worker"]
        print(f"multi-worker path with one worker vs one process (fit time): {overhead:+.1%}")
        comm = setting["communication_seconds_per_step"]
        if comm is not None:
            projected = setting["projected_efficiency"]
            print(
                f"communication per step (2 workers): {comm * 1000:.1f} ms; projected "
                f"efficiency 8 workers {projected['8']:.2f}, 32 workers {projected['32']:.2f}"
            )
        for name, ok in setting["floors"].items():
            print(f"  {'met   ' if ok else 'MISSED'} {name}")
