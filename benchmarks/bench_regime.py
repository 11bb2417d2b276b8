"""Check: rollouts on the default ``[rollout]`` through a population that moved, end to end.

Real models trained on the bundled Adult records on each side of a regime change
(``tests/_support/regime.py``: production learnt people under 35; traffic, labels and the
retrained candidate come from people 35 and over), a real server following the registry,
the prediction log and label feedback, and the rollout controller ticking between rounds
of ``--per-tick`` one-row requests (300: about a minute of traffic at 5 requests a
second). Nothing in ``[rollout]`` is set: steps 5 → 25 → 50 → 100, the default guardrails
and margins, the default policy (``bias_to_action``, a 30-minute budget a step, so a
2-hour horizon).

Scenarios: the retrained candidate evaluated on its own population's holdout, or on the
stale file of the old one (the ``[data] eval`` a project had before the move), each with
and without labels arriving; and two broken candidates of the same signature (trained on
flipped labels, or on shuffled ones). Reported per scenario: the decision, the ticks to
it (a tick is a round of requests, so ticks × per-tick / rate is the time it takes), the
weights it went through, and at each step the guardrails that held it and their last
message. A healthy candidate must be promoted within the horizon (120 ticks at a tick a
minute) and a broken one rolled back. The rules this replaced are compared in simulation
by ``bench_rollout.py``; they are not kept in the code, so they are not run here.

Usage::

    python benchmarks/bench_regime.py                  # all scenarios, ~15 minutes
    python benchmarks/bench_regime.py --only stale-labels --max-ticks 60

Writes ``results/regime-<time>.json``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._support.regime import NAME, build_regime, register, traffic_rows  # noqa: E402
from tests._support.server import following  # noqa: E402
from tests._support.traffic import Traffic  # noqa: E402

from mooring.monitoring._alerts import AlertManager  # noqa: E402
from mooring.monitoring._rollout import RolloutController  # noqa: E402
from mooring.registry import Registry  # noqa: E402

TOKEN = "labels-token"
# The server's own tuning for a quick check; [rollout] is left at its defaults.
SERVING = f"""
[serving]
poll_interval_s = 0.1
warmup_requests = 2
log_sample_rate = 1.0
log_flush_rows = 50
log_flush_s = 0.2
deadline_ms = 120_000
feedback_token = "{TOKEN}"
"""

# name: (candidate's training data, its evaluation data, labels arrive, healthy)
SCENARIOS: dict[str, tuple[str, str, bool, bool]] = {
    "retrain-labels": ("old_train", "old_eval", True, True),
    "retrain-no-labels": ("old_train", "old_eval", False, True),
    "stale-labels": ("old_train", "young_eval", True, True),
    "stale-no-labels": ("old_train", "young_eval", False, True),
    "flipped-labels": ("inverted_train", "old_eval", True, False),
    "shuffled-no-labels": ("shuffled_train", "old_eval", False, False),
}


def run_one(regime: Any, name: str, home: Path, per_tick: int, max_ticks: int) -> dict[str, Any]:
    train, eval_, labels, healthy = SCENARIOS[name]
    cfg = regime.config("young_train", "young_eval", home=home, extra=SERVING)
    registry = Registry.from_config(cfg)
    production = register(
        regime, registry, "production", train="young_train", eval_="young_eval", cfg=cfg
    )
    model = {"inverted_train": "inverted", "shuffled_train": "shuffled"}.get(train, "candidate")
    register(regime, registry, model, train=train, eval_=eval_, production=production, cfg=cfg)
    registry.deploy(NAME, production=1)
    rows = traffic_rows(regime)
    ticks: list[dict[str, Any]] = []
    started = time.perf_counter()
    with following(cfg, registry, NAME, feedback=True) as server:
        requests = (([row], label) for row, label in itertools.cycle(rows))
        feedback = (f"/v1/models/{NAME}:feedback", TOKEN) if labels else None
        predict = f"/v1/models/{NAME}:predict"
        with Traffic(
            server.url, predict, requests, feedback=feedback, log=home / "predictions"
        ) as traffic:
            traffic.send(per_tick)  # production met the new population first
            first = cfg.rollout.steps[0]
            registry.deploy(NAME, production=1, canary=2, weight=first, reason="retrained")
            controller = RolloutController(
                cfg, registry, metrics=[server.url + "/metrics"], alerts=AlertManager([])
            )
            decision = None
            for _ in range(max_ticks):
                decision = controller.tick()
                held = [
                    {"guardrail": g.name, "state": g.state, "message": g.message}
                    for g in decision.guardrails
                    if g.state in ("undecided", "fail") and not g.advisory
                ]
                ticks.append(
                    {
                        "action": decision.action,
                        "weight": decision.to_weight,
                        "reasons": decision.reasons,
                        "held_by": held,
                    }
                )
                if decision.action in ("promote", "rollback"):
                    break
                traffic.send(per_tick)
            failures = list(traffic.failures)
            seen = dict(traffic.seen)
    final = ticks[-1]["action"] if ticks else "none"
    weights = [first] + [t["weight"] for t in ticks if t["action"] == "advance"]
    holds: dict[str, dict[str, Any]] = {}
    weight = first
    for t in ticks:
        if t["action"] == "advance":
            weight = t["weight"]
        elif t["held_by"]:
            holds[str(weight)] = {"ticks": holds.get(str(weight), {}).get("ticks", 0) + 1,
                                  "last": t["held_by"]}  # fmt: skip
    right = final == ("promote" if healthy else "rollback")
    return {
        "scenario": name,
        "healthy": healthy,
        "labels": labels,
        "evaluated_on": eval_,
        "decision": final,
        "right": right,
        "ticks": len(ticks),
        "weights": weights,
        "final_reasons": ticks[-1]["reasons"] if ticks else [],
        "holds": holds,
        "answered": seen,
        "failed_requests": len(failures),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-tick", type=int, default=300)
    parser.add_argument(
        "--max-ticks", type=int, default=120, help="the 2-hour horizon at a tick a minute"
    )
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        regime = build_regime(Path(tmp) / "regime")
        print(f"models trained in {time.perf_counter() - t0:.0f} s", flush=True)
        for name in args.only or list(SCENARIOS):
            out = run_one(regime, name, Path(tmp) / name, args.per_tick, args.max_ticks)
            results.append(out)
            print(
                f"{name:20} {out['decision']:9} right={out['right']!s:5} ticks={out['ticks']:3} "
                f"weights={out['weights']} failed={out['failed_requests']} {out['seconds']} s",
                flush=True,
            )
            for weight, hold in out["holds"].items():
                last = "; ".join(f"{h['guardrail']}: {h['message']}" for h in hold["last"])
                print(f"    held at {weight}% for {hold['ticks']} tick(s): {last}", flush=True)
            print(f"    {' | '.join(out['final_reasons'])}", flush=True)
    report = {
        "benchmark": "regime",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "per_tick": args.per_tick,
        "max_ticks": args.max_ticks,
        "results": results,
    }
    path = (
        args.out
        or ROOT / "benchmarks" / "results" / f"regime-{time.strftime('%Y%m%dT%H%M%S')}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
