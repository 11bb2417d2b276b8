"""Benchmark: does one model's long call hold another model's requests in the same worker?

Two SavedModels served side by side by one process, each by its own
:class:`~mooring.serving._models.ModelManager`, as ``mooring serve --all-models`` does:

* ``slow``: ``y = 2x``, except that a row above 1,000 spins a loop of 256×256 matrix
  products (seconds of CPU in one graph op) before it answers: a model with a
  pathological input;
* ``fast``: ``y = 3x``.

In each run a child process loads both, sends one row of 2,000 to ``slow``, waits until
that call is running, then sends ``--requests`` single rows to ``fast`` one after the
other and times each. Three set-ups, each in fresh processes, interleaved over
``--rounds`` rounds:

* ``shared pool, inter-op 1``: every version's batches on one executor thread of the
  worker, TensorFlow's inter-op pool one thread (the set-up before versions had threads
  of their own);
* ``own threads, inter-op 1``: each version on its own executor, the pool one thread;
* ``own threads, inter-op 2``: what a worker runs now (:func:`tf_thread_env`: one
  inter-op thread per batch at once, and one more).

Intra-op threads are 1 in every set-up (a worker's share with ``--workers 2`` on two
cores). The report gives, per set-up, the median over rounds of the first ``fast``
answer's latency (the one sent while ``slow`` runs), of the median of the rest, and of the
slow call's own duration. Writes ``results/isolation-<time>.json`` (and ``.md``); nothing
is asserted.

Usage::

    python benchmarks/bench_isolation.py              # 3 rounds, ~2 minutes
    python benchmarks/bench_isolation.py --rounds 1 --spin 4000
"""

from __future__ import annotations

import argparse
import asyncio
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
SETUPS = {
    "shared pool, inter-op 1": {"shared": True, "inter": 1},
    "own threads, inter-op 1": {"shared": False, "inter": 1},
    "own threads, inter-op 2": {"shared": False, "inter": 2},
}


def build(folder: Path, spin: int) -> None:
    """Write the ``slow`` and ``fast`` SavedModels under ``folder``."""
    import tensorflow as tf

    class Slow(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])  # type: ignore[untyped-decorator]
        def serve(self, x: Any) -> dict[str, Any]:
            def loop() -> Any:
                step = tf.ones([256, 256]) * 1e-4

                def body(i: Any, acc: Any) -> tuple[Any, Any]:
                    return i + 1, tf.matmul(acc, step) + 1.0

                _, acc = tf.while_loop(
                    lambda i, _: i < spin, body, [tf.constant(0), tf.zeros([256, 256])]
                )
                return x * 2.0 + tf.reduce_mean(acc) * 0.0

            return {"y": tf.cond(tf.reduce_max(x) > 1000.0, loop, lambda: x * 2.0)}

    class Fast(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])  # type: ignore[untyped-decorator]
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": x * 3.0}

    for name, module in (("slow", Slow()), ("fast", Fast())):
        signatures = {"serving_default": module.serve}
        tf.saved_model.save(module, str(folder / name), signatures=signatures)


def child(folder: Path, shared: bool, requests: int) -> dict[str, Any]:
    """One run in this process (its TensorFlow pools already set by the environment)."""
    import concurrent.futures

    import numpy as np

    from mooring.config import ServingConfig
    from mooring.registry import Deployment
    from mooring.serving import _models
    from mooring.serving._metrics import ServingMetrics

    if shared:  # every version's batches on the one executor the worker had
        one = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="infer")
        setattr(_models, "ThreadPoolExecutor", lambda *_, **__: one)  # noqa: B010

    class Source:
        def __init__(self, name: str) -> None:
            self.name = name

        def fetch(self, version: int) -> Path:
            return folder / self.name

        def contract_schema(self, version: int) -> None:
            return None

    async def run() -> dict[str, Any]:
        cfg = ServingConfig(warmup_requests=1)
        slow, fast = (
            _models.ModelManager(Source(n), cfg, ServingMetrics())  # type: ignore[arg-type]
            for n in ("slow", "fast")
        )
        for manager in (slow, fast):
            await manager.apply(Deployment(name=manager.name, revision=1, production=1))
        start = time.perf_counter()
        spinning = asyncio.create_task(
            slow.route().predict({"x": np.array([2000.0], np.float32)}, 1, 600.0)
        )
        await asyncio.sleep(0.2)  # its batch is taken and its call runs
        latencies = []
        for _ in range(requests):
            t = time.perf_counter()
            await fast.route().predict({"x": np.array([1.0], np.float32)}, 1, 600.0)
            latencies.append(time.perf_counter() - t)
        fast_done = not spinning.done()
        await spinning
        slow_s = time.perf_counter() - start
        for manager in (slow, fast):
            await manager.close()
        return {
            "first_ms": latencies[0] * 1000,
            "rest_ms": statistics.median(latencies[1:]) * 1000 if requests > 1 else None,
            "slow_s": slow_s,
            "fast_answered_while_slow_ran": fast_done,
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--spin", type=int, default=20_000, help="slow's loop iterations")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.shared, args.requests)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.spin)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
        load = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            for name, setup in SETUPS.items():
                env = {
                    **os.environ,
                    "TF_NUM_INTEROP_THREADS": str(setup["inter"]),
                    "TF_NUM_INTRAOP_THREADS": "1",
                    "TF_CPP_MIN_LOG_LEVEL": "3",
                }
                command = [sys.executable, __file__, "--child", str(folder)]
                command += ["--requests", str(args.requests)]
                command += ["--shared"] if setup["shared"] else []
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs[name].append(result)
                print(f"round {round_ + 1} {name}: {result}", file=sys.stderr)
        load.append(os.getloadavg()[0])
    rows = []
    for name, results in runs.items():
        rows.append(
            {
                "setup": name,
                "first_fast_ms": statistics.median(r["first_ms"] for r in results),
                "rest_fast_ms": statistics.median(r["rest_ms"] for r in results),
                "slow_s": statistics.median(r["slow_s"] for r in results),
                "answered_while_slow_ran": sum(r["fast_answered_while_slow_ran"] for r in results),
                "rounds": len(results),
            }
        )
    lines = [
        "| set-up | first fast answer, ms | later fast answers, ms | slow call, s | "
        "fast answered while slow ran |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {row['first_fast_ms']:,.1f} | {row['rest_fast_ms']:,.2f} | "
            f"{row['slow_s']:.2f} | {row['answered_while_slow_ran']}/{row['rounds']} |"
        )
    table = "\n".join(lines)
    print(table)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / f"isolation-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": load,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {"rounds": args.rounds, "requests": args.requests, "spin": args.spin},
        "rows": rows,
        "runs": runs,
    }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
