"""Benchmark: normal predictions while clients flood ``:explain``, on two source trees.

An explanation costs tens of model calls; the server runs them on their own thread,
outside the inference permits, and (since ``[serving] explain_nice``) at a lower CPU
priority. This measures what a prediction client sees: each tree (``NAME=PATH``, a
source tree whose ``src/mooring`` is run, as in ``bench_trees.py``) serves the Adult
model of ``bench_serving.py`` (``--model-dir --schema --workers 1``); all servers run at
once. In interleaved cells, per tree:

* **quiet**: one client sends single-row ``:predict`` requests back to back (a
  keep-alive connection, ``--seconds``); its answers' latencies, p50 and p99;
* **explain flood**: the same client while ``--explainers`` clients (a separate
  process, one thread each, a connection each) send single-row ``:explain`` requests
  back to back (a 503 is sent again at once, as a careless client would); the
  prediction client's p50/p99 and its 200s, the explanations answered 200 and 503.

``--rounds`` rounds, the trees' order alternating. The report (median over rounds, every
round's values) goes to ``benchmarks/results/explain-priority-<time>.json``; nothing is
asserted. The machine is shared: the load average before and after is recorded.

Usage::

    git archive <commit> src | tar -x -C ../before
    python benchmarks/bench_explain_priority.py before=../before now=. --rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_serving as bs
import bench_trees as bt

RESULTS = bs.RESULTS


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> int:
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    return answer.status


def predict_loop(port: int, body: bytes, seconds: float) -> dict[str, Any]:
    """Single-row predictions back to back on one connection: latencies of the 200s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = f"/v1/models/{bs.NAME}:predict"
    took: list[float] = []
    statuses: dict[int, int] = {}
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        start = time.perf_counter()
        status = _post(conn, path, body)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            took.append(time.perf_counter() - start)
    conn.close()
    took.sort()
    return {
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "p50_ms": 1000 * statistics.median(took) if took else None,
        "p99_ms": 1000 * took[int(0.99 * (len(took) - 1))] if took else None,
    }


def _explainer(port: int, body: bytes, stop: Any, counts: Any, index: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/v1/models/{bs.NAME}:explain"
    while not stop.is_set():
        status = _post(conn, path, body)
        counts[2 * index + (0 if status == 200 else 1)] += 1


def explain_flood(port: int, body: bytes, clients: int, stop: Any, counts: Any) -> None:
    """``clients`` threads sending ``:explain`` back to back until ``stop`` (in a process of
    its own, so the prediction client's timing shares no interpreter with them)."""
    threads = [
        threading.Thread(target=_explainer, args=(port, body, stop, counts, i), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def flooded(port: int, body: bytes, seconds: float, clients: int) -> dict[str, Any]:
    """:func:`predict_loop` while :func:`explain_flood` runs."""
    stop = multiprocessing.Event()
    counts = multiprocessing.Array("i", 2 * clients)
    flood = multiprocessing.Process(
        target=explain_flood, args=(port, body, clients, stop, counts), daemon=True
    )
    flood.start()
    time.sleep(1.0)  # the explanations are running before the predictions are timed
    result = predict_loop(port, body, seconds)
    stop.set()
    flood.join(timeout=60)
    result["explained_200"] = sum(counts[0::2])
    result["explained_other"] = sum(counts[1::2])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="NAME=PATH source trees")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--explainers", type=int, default=8)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "mooring-bench-explain-priority"
    )
    args = parser.parse_args()
    trees = bt.parse_trees(args.trees)
    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = bs.adult_model(args.work)
    row = bs.request_rows(model_dir, 1)[0]
    body = json.dumps({"instances": [row]}).encode()
    config = bt.serving_config(args.work, [])
    servers = {tree.name: bt.spawn(tree, model_dir, args.work, config, 1) for tree in trees}
    load_before = os.getloadavg()
    report: dict[str, Any] = {"trees": {t.name: str(t.root) for t in trees}, "rounds": []}
    try:
        for server in servers.values():
            bs.wait_ready(server.probe, server.proc)
        for name, server in servers.items():  # warm: the explainer is made on first use
            predict_loop(server.port, body, 1.0)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            status = _post(conn, f"/v1/models/{bs.NAME}:explain", body)
            print(f"{name}: warm-up :explain answered {status}", flush=True)
        for index in range(args.rounds):
            order = trees if index % 2 == 0 else trees[::-1]
            cells: dict[str, Any] = {}
            for tree in order:
                port = servers[tree.name].port
                cells[tree.name] = {
                    "quiet": predict_loop(port, body, args.seconds),
                    "explain_flood": flooded(port, body, args.seconds, args.explainers),
                }
                print(tree.name, json.dumps(cells[tree.name]), flush=True)
            report["rounds"].append(cells)
    finally:
        for server in servers.values():
            server.proc.terminate()
            server.proc.wait(timeout=60)
    summary: dict[str, Any] = {}
    for tree in trees:
        runs = [r[tree.name] for r in report["rounds"]]
        summary[tree.name] = {
            cell: {
                key: statistics.median(run[cell][key] for run in runs)
                for key in ("p50_ms", "p99_ms")
                if all(run[cell][key] is not None for run in runs)
            }
            for cell in ("quiet", "explain_flood")
        }
    report["summary"] = summary
    report["load_average"] = {"before": load_before, "after": os.getloadavg()}
    report["cpus"] = os.cpu_count()
    report["python"] = sys.version.split()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"explain-priority-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
    sys.exit(0)
