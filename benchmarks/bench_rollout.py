"""Benchmark: sequential rollout guardrails against the rules they replaced.

Every rule set judges the same simulated rollouts (same scenarios, same seeds) through
:func:`mooring.monitoring._simulation.summarise`: requests split between canary and
production at a traffic share, errors, inference latency with a slowdown both versions
share on each tick, bucketed into the server's histogram, and labels with known AUC.
For each scenario the table gives the false rollback rate (an equal or better canary
rolled back), the false promotion rate (a worse one advanced) and the median and p95
ticks to a decision; one single step at each share, whole rollouts (5 → 25 → 50 →
100%) at 300 requests a tick, and the latency shapes of real models
(:func:`~mooring.monitoring._simulation.latency_shapes`: a slower median with a faster
tail, a heavier tail, two modes, a shifted mix of batch sizes, 20 ms slower) at 5% and
25%, whose truth is the per-quantile latency rule.

``sequential``: the rules of today (latency judged at p50, p90 and p99, each on
production's plus the margin).

``strict_tail``: the same, but a p99 that leans within its margin holds the step until
it is shown there (the guardrail lets such a step go on: see ``_tail_leans_within``).

``rank``: the same, but latency judged as before the per-quantile rule — a Mann–Whitney
rank test against production made slower by a 20% multiplicative margin
(``latency_margin_ms`` turned into a share of production's p99).

``fixed``: the rules before sequential testing, kept as the oldest baseline — errors
judged from 5 canary errors (increase > 0.01 or above 2x production's smoothed rate),
the p99 judged from 1,000 timed batches per version at the buckets' edges (1.5x and
5 ms) on 3 consecutive ticks, the live metric from 200 labels per version (drop > 0.02
and > 2.58 standard errors), and a step advancing after 200 canary requests and 300 s
(34 ticks of 9 s, the tick of the scenario these rules stalled in).

Floors (``sequential``): false rollback of an equal or better canary <= 2%; promotion of
a canary 10% beyond the latency margin, or with 10 points more failing requests, <= 1%,
and of a harmful latency shape <= 1%; a broken canary rolled back within 2 ticks;
median ticks to pass a healthy canary's 5% step at 300 requests a tick <= 10; a healthy
whole rollout within 20 ticks (median). The last two were set for the rank test: a p99
shown within 20% of production's takes thousands of canary batches when the tails are
alike.

Outputs on drifted traffic (``outputs_rows``): the label-free output guardrails on a
population that moved (:func:`~mooring.monitoring._simulation.output_scenarios`:
covariate shift, concept shift, a concept shift on the moved input; a skewed and an
inverted canary; no drift), production trained on the old population, the canary on
the new, both evaluated on the stale file of the old one, at 5% and 25%.
``moved_like_production``: the rule of today (once production's own outputs moved, the
canary passes like production on the same traffic or moved like production);
``production_only``: the same without the comparison of moves (canary vs production
alone once the traffic moved); ``own_evaluation``: the rule before production's
evaluation outputs were read (the canary against its own evaluation outputs only).
Floors (``moved_like_production``): no false promotion of a skewed or inverted canary;
no false rollback of a retrain on the covariate and concept shifts or without drift.

Usage::

    python benchmarks/bench_rollout.py --runs 200 --out benchmarks/results/bench_rollout.json
    python benchmarks/bench_rollout.py --runs 5 --out b.json      # smoke run
    python benchmarks/bench_rollout.py --part outputs --runs 100   # outputs alone
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._guardrails import (
    GuardrailResult,
    Status,
)
from mooring.monitoring._scrape import VersionCounters
from mooring.monitoring._sequential import SequentialTest, rank_probability, shifted
from mooring.monitoring._simulation import (
    Judge,
    LivePair,
    OutputJudge,
    Scenario,
    Summary,
    latency_shapes,
    output_judge,
    output_scenarios,
    sequential_judge,
    summarise,
    summarise_outputs,
)

HERE = Path(__file__).resolve().parent
SHARES = (0.01, 0.05, 0.25, 0.5)
ROLLOUT = (0.05, 0.25, 0.5, 1.0)
SHAPE_SHARES = (0.05, 0.25)
OUTPUT_SHARES = (0.05, 0.25)
TICK_SECONDS = 9.0

# ---------------------------------------------------------------- the replaced rules


def fixed_judge(_rules: GuardrailsConfig) -> Judge:
    """The fixed-horizon guardrails and step rule, as they were before sequential tests."""

    def judge(
        canary: VersionCounters,
        production: VersionCounters,
        _rollout: VersionCounters,
        live: LivePair | None,
        state: dict[str, Any],
    ) -> list[GuardrailResult]:
        state["ticks"] = state.get("ticks", 0) + 1
        results = [_errors(canary, production), _latency(canary, production, state)]
        if live is not None:
            results.append(_live(live))
        if canary.requests < 200 or state["ticks"] * TICK_SECONDS < 300:
            results.append(GuardrailResult("step", "insufficient_data", "200 requests, 300 s"))
        return results

    return judge


def _errors(canary: VersionCounters, production: VersionCounters) -> GuardrailResult:
    c_rate = canary.errors / canary.requests if canary.requests else 0.0
    p_rate = production.errors / production.requests if production.requests else 0.0
    if canary.errors < 5:
        return GuardrailResult("errors", "insufficient_data" if canary.errors else "ok", "")
    smoothed = (production.errors + 1.0) / (production.requests + 1.0)
    if c_rate - p_rate > 0.01 or c_rate > 2.0 * smoothed:
        return GuardrailResult("errors", "breach", f"{c_rate:.4f} vs {p_rate:.4f}")
    return GuardrailResult("errors", "ok", "")


def _latency(
    canary: VersionCounters, production: VersionCounters, state: dict[str, Any]
) -> GuardrailResult:
    c, p = canary.latency, production.latency
    c_n = c.count if c is not None else 0.0
    p_n = p.count if p is not None else 0.0
    if p_n == 0 and c_n >= 1000:
        return GuardrailResult("latency", "unavailable", "")
    if c is None or p is None or min(c_n, p_n) < 1000:
        return GuardrailResult("latency", "insufficient_data", f"{c_n:g} of 1000")
    c_low, _ = c.quantile_bucket(0.99)
    _, p_high = p.quantile_bucket(0.99)
    if c_low > 1.5 * p_high and c_low - p_high > 0.005:
        state["strikes"] = state.get("strikes", 0) + 1
        if state["strikes"] >= 3:
            return GuardrailResult("latency", "breach", "p99")
        return GuardrailResult("latency", "insufficient_data", "strike")
    state["strikes"] = 0
    return GuardrailResult("latency", "ok", "")


def _live(live: LivePair) -> GuardrailResult:
    (c_value, c_rows, c_se), (p_value, p_rows, p_se) = live
    if c_rows == 0 and p_rows == 0:
        return GuardrailResult("live_metric", "unavailable", "")
    if c_value is None or p_value is None or min(c_rows, p_rows) < 200:
        return GuardrailResult("live_metric", "insufficient_data", "")
    drop = p_value - c_value
    se = math.sqrt((c_se or 0.0) ** 2 + (p_se or 0.0) ** 2)
    if drop > 0.02 and drop > 2.58 * se:
        return GuardrailResult("live_metric", "breach", f"{drop:.4f}")
    return GuardrailResult("live_metric", "ok", "")


# ---------------------------------------------------------------- the tail held to proof


def strict_tail_judge(rules: GuardrailsConfig) -> Judge:
    """The sequential guardrails with a p99 that holds the step until it is shown within
    its margin (the guardrail's leaning tail made binding)."""
    base = sequential_judge(rules)

    def judge(
        canary: VersionCounters,
        production: VersionCounters,
        rollout: VersionCounters,
        live: LivePair | None,
        state: dict[str, Any],
    ) -> list[GuardrailResult]:
        return [
            replace(r, advisory=False) if r.name == "latency" else r
            for r in base(canary, production, rollout, live, state)
        ]

    return judge


# ---------------------------------------------------------------- the rank test of latency

#: The least rank margin of the rank rule: where the buckets cannot resolve the latency
#: margin, a canary passes once shown slower than production in fewer than 55% of pairs.
MIN_RANK_MARGIN = 0.05


def rank_judge(rules: GuardrailsConfig) -> Judge:
    """The sequential guardrails with latency judged by the rank rule they replaced."""
    return sequential_judge(rules, latency=rank_latency_guardrail)


def rank_latency_guardrail(
    canary: VersionCounters, production: VersionCounters, rules: GuardrailsConfig
) -> GuardrailResult:
    """Latency as a Mann–Whitney rank test against production made slower by the margin.

    Passes when ``P(canary slower)`` is shown below what production made slower by the
    margin (``latency_margin`` of production's p99, or ``latency_margin_ms`` where more)
    would give; fails when the canary is shown slower than production made slower in
    over half the pairs.
    """
    assert rules.latency_margin is not None
    c_hist, p_hist = canary.latency, production.latency
    c_n = c_hist.count if c_hist is not None else 0.0
    p_n = p_hist.count if p_hist is not None else 0.0
    if c_hist is None or c_n <= 0:
        return GuardrailResult("latency", "insufficient_data", "no canary batches")
    if p_hist is None or p_n <= 0 or p_hist.bounds != c_hist.bounds:
        return GuardrailResult("latency", "unavailable", "no production batches")
    prod = [c - b for c, b in zip(p_hist.counts, (0.0, *p_hist.counts[:-1]), strict=True)]
    cand = [c - b for c, b in zip(c_hist.counts, (0.0, *c_hist.counts[:-1]), strict=True)]
    theta, variance = rank_probability(cand, prod)
    p_p99 = p_hist.quantile(0.99)
    floor = rules.latency_margin_ms / 1e3 / p_p99 if p_p99 > 0 else 0.0
    share = max(rules.latency_margin, floor)
    slower = shifted(p_hist.bounds, p_hist.counts, share, 0.0)
    beyond, beyond_variance = rank_probability(cand, slower)
    failing = SequentialTest(
        pass_below=-math.inf, fail_above=0.0, tau=MIN_RANK_MARGIN, alpha=rules.alpha
    ).judge(beyond - 0.5, beyond_variance)
    theta_margin, _ = rank_probability(slower, prod)
    boundary = max(theta_margin - 0.5, MIN_RANK_MARGIN)
    judgement = SequentialTest(
        pass_below=boundary, fail_above=math.inf, tau=boundary, alpha=rules.alpha
    ).judge(theta - 0.5, variance)
    if failing.state == "fail":
        judgement = replace(judgement, state="fail")
    statuses: dict[str, Status] = {"pass": "ok", "fail": "breach", "undecided": "insufficient_data"}
    status = statuses[judgement.state]
    return GuardrailResult(
        "latency",
        status,
        f"slower in {theta:.1%} of pairs",
        value=theta,
    )


# ---------------------------------------------------------------- scenarios


def scenarios(rules: GuardrailsConfig) -> list[Scenario]:
    """Equal, better, within-margin, beyond-margin and broken canaries; each share; labels."""
    assert rules.latency_margin is not None
    beyond = (1.0 + rules.latency_margin) * 1.1
    out = []
    for share in SHARES:
        for labels in (False, True):
            tag = f"{share:.0%}{' labels' if labels else ''}"
            out += [
                Scenario(f"equal {tag}", "equal", share, labels=labels),
                Scenario(
                    f"better {tag}",
                    "better",
                    share,
                    canary_error_rate=0.001,
                    canary_latency_factor=0.9,
                    canary_auc=0.90,
                    labels=labels,
                ),
                Scenario(
                    f"{beyond - 1:.0%} slower (10% beyond margin) {tag}",
                    "worse",
                    share,
                    canary_latency_factor=beyond,
                    labels=labels,
                ),
                Scenario(
                    f"+10 points errors {tag}",
                    "worse",
                    share,
                    canary_error_rate=0.102,
                    labels=labels,
                ),
                Scenario(f"broken {tag}", "worse", share, canary_error_rate=1.0, labels=labels),
            ]
            if labels:
                out.append(
                    Scenario(f"AUC -0.08 {tag}", "worse", share, canary_auc=0.80, labels=True)
                )
    for labels in (False, True):
        tag = " labels" if labels else ""
        out += [
            Scenario(f"rollout equal{tag}", "equal", 0.05, labels=labels, steps=ROLLOUT),
            Scenario(
                f"rollout better{tag}",
                "better",
                0.05,
                canary_error_rate=0.001,
                canary_latency_factor=0.9,
                canary_auc=0.90,
                labels=labels,
                steps=ROLLOUT,
            ),
            Scenario(
                f"rollout 10% slower (within margin){tag}",
                "equal",
                0.05,
                canary_latency_factor=1.1,
                labels=labels,
                steps=ROLLOUT,
            ),
        ]
    out.append(
        Scenario(
            "rollout AUC -0.08 labels", "worse", 0.05, canary_auc=0.80, labels=True, steps=ROLLOUT
        )
    )
    for share in SHAPE_SHARES:
        out += latency_shapes(share)
    return out


# ---------------------------------------------------------------- outputs on drifted traffic


def production_only_judge(rules: GuardrailsConfig) -> OutputJudge:
    """The outputs rule before moves were compared: once production's own outputs moved,
    the canary passes only within ``prediction_js`` of production on the same traffic."""
    today = output_judge(rules)

    def judge(*args: Any) -> list[GuardrailResult]:
        results = today(*args)
        return [
            replace(r, status="breach")
            if r.name == "outputs"
            and r.numbers.get("reference_used") == "production's move on the same traffic"
            else r
            for r in results
        ]

    return judge


def own_evaluation_judge(rules: GuardrailsConfig) -> OutputJudge:
    """The outputs rule before production's evaluation outputs were read."""
    return output_judge(rules, production_reference=False)


OUTPUT_RULES = (
    ("moved_like_production", output_judge),
    ("production_only", production_only_judge),
    ("own_evaluation", own_evaluation_judge),
)


def run_outputs(args: argparse.Namespace, rules: GuardrailsConfig) -> list[dict[str, Any]]:
    """Every drifted-traffic scenario under each outputs rule, with the same seeds."""
    rows = []
    for share in OUTPUT_SHARES:
        for scenario in output_scenarios(share):
            for name, judge_for in OUTPUT_RULES:
                summary = summarise_outputs(
                    scenario, rules, runs=args.runs, seed=args.seed, judge_for=judge_for
                )
                rows.append({"rules": name, **summary.to_dict()})
                _print(name, summary)
    return rows


def output_floors(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The outputs floors with the numbers behind them (the rule of today)."""
    today = [r for r in rows if r["rules"] == "moved_like_production"]
    harmful = max(r["false_promotion_rate"] for r in today if r["truth"] == "worse")
    healthy = max(
        r["false_rollback_rate"]
        for r in today
        if r["truth"] != "worse" and "on the moved input" not in r["scenario"]
    )
    return {
        "outputs_false_promotion_skewed_inverted_eq_0": {"value": harmful, "met": harmful == 0},
        "outputs_false_rollback_retrain_covariate_concept_no_drift_le_2pct": {
            "value": healthy,
            "met": healthy <= 0.02,
        },
    }


def floors(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The floors with the numbers behind them (sequential rules)."""
    seq = [r for r in rows if r["rules"] == "sequential"]

    def worst(key: str, pick: Any) -> float:
        values = [r[key] for r in seq if pick(r) and r[key] is not None]
        return max(values) if values else math.nan

    def single(r: dict[str, Any]) -> bool:
        return not r["scenario"].startswith("rollout")

    false_rollback = worst("false_rollback_rate", lambda r: True)
    # The floor is on errors and latency (the AUC rows are reported beside it).
    false_promotion = worst(
        "false_promotion_rate",
        lambda r: single(r) and ("beyond margin" in r["scenario"] or "errors" in r["scenario"]),
    )
    quality = worst("false_promotion_rate", lambda r: r["scenario"].startswith("rollout AUC"))
    broken = worst("p95_ticks", lambda r: r["scenario"].startswith("broken") and r["share"] >= 0.05)
    broken_1 = worst(
        "p95_ticks", lambda r: r["scenario"].startswith("broken") and r["share"] < 0.05
    )
    shapes = {s.name for share in SHAPE_SHARES for s in latency_shapes(share)}
    harmful_shape = worst("false_promotion_rate", lambda r: r["scenario"] in shapes)
    healthy_shape = worst("false_rollback_rate", lambda r: r["scenario"] in shapes)
    healthy5 = [r["median_ticks"] for r in seq if r["scenario"] in ("equal 5%", "equal 5% labels")]
    rollout = [r["median_ticks"] for r in seq if r["scenario"].startswith("rollout equal")]
    return {
        "false_rollback_le_2pct": {"value": false_rollback, "met": false_rollback <= 0.02},
        "false_promotion_errors_latency_le_1pct": {
            "value": false_promotion,
            "met": false_promotion <= 0.01,
        },
        "rollout_promotion_auc_minus_0.08_le_1pct": {"value": quality, "met": quality <= 0.01},
        "latency_shapes_false_promotion_le_1pct": {
            "value": harmful_shape,
            "met": harmful_shape <= 0.01,
        },
        "latency_shapes_false_rollback_le_2pct": {
            "value": healthy_shape,
            "met": healthy_shape <= 0.02,
        },
        "broken_rolled_back_within_2_ticks_p95_at_5pct_and_more": {
            "value": broken,
            "met": broken <= 2,
        },
        "broken_rolled_back_within_2_ticks_p95_at_1pct": {"value": broken_1, "met": broken_1 <= 2},
        "healthy_5pct_median_ticks_le_10": {
            "value": max(healthy5),
            "met": max(healthy5) <= 10,
        },
        "healthy_rollout_median_ticks_le_20": {"value": max(rollout), "met": max(rollout) <= 20},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rules = GuardrailsConfig()
    rows: list[dict[str, Any]] = []
    start, commit = time.perf_counter(), _commit()  # the code the numbers come from
    for scenario in scenarios(rules) if args.part in ("all", "latency") else []:
        for name, judge_for in (
            ("sequential", sequential_judge),
            ("strict_tail", strict_tail_judge),
            ("rank", rank_judge),
            ("fixed", fixed_judge),
        ):
            summary: Summary = summarise(
                scenario,
                rules,
                runs=args.runs,
                seed=args.seed,
                judge_for=judge_for,
                max_ticks=args.max_ticks,
            )
            rows.append({"rules": name, **summary.to_dict()})
            _print(name, summary)
    outputs = run_outputs(args, rules) if args.part in ("all", "outputs") else []
    return {
        "benchmark": "rollout",
        "runs": args.runs,
        "seed": args.seed,
        "max_ticks": args.max_ticks,
        "requests_per_tick": 300,
        "rules": rules.model_dump(),
        "part": args.part,
        "rows": rows,
        "outputs_rows": outputs,
        "floors": {
            **(floors(rows) if rows else {}),
            **(output_floors(outputs) if outputs else {}),
        },
        "seconds": time.perf_counter() - start,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }


def _commit() -> str:
    """The checkout's commit, marked when it has changes (the numbers belong to it)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "benchmarks"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' (with changes)' if dirty else ''}" or "unknown"


def _print(name: str, summary: Summary) -> None:
    print(
        f"{name:21s} {summary.scenario:48s} "
        f"rollback {_pct(summary.false_rollback_rate)} "
        f"promote {_pct(summary.false_promotion_rate)} "
        f"undecided {summary.undecided_rate:6.1%} "
        f"ticks median {summary.median_ticks:5.1f} p95 {summary.p95_ticks:5.1f}",
        flush=True,
    )


def _pct(value: float | None) -> str:
    return "     -" if value is None else f"{value:6.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="Seeds per scenario and rules.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-ticks", type=int, default=200)
    parser.add_argument(
        "--part",
        choices=("all", "latency", "outputs"),
        default="all",
        help="The latency and label scenarios, the drifted-traffic outputs ones, or both.",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_rollout.json")
    args = parser.parse_args(argv)
    report = run(args)
    print("\nfloors (sequential rules):")
    for name, floor in report["floors"].items():
        print(f"  {'met   ' if floor['met'] else 'MISSED'} {name} ({floor['value']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
