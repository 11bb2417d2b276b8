"""Several candidates of one run, evaluated on the same records, gated and compared.

Each candidate (``[[model.candidates]]``) is evaluated exactly as a single model is, on
the same rows; then its gates are checked (baseline gates compare it with the candidate
they name), its latency per 1,000 predictions is measured in-process on the loaded
SavedModel and its size on disk summed. The pick is the best candidate that passes
every gate by ``[model] select`` (in the metric's direction), ties going to the lower
cost per 1,000 predictions. When no gate judged any candidate (every one *ungated*:
``[evaluation] default_gates = false`` and no gate that applies), the best by ``select``
is picked all the same, ungated: the run registers it and deploys nothing. Every
candidate's report carries the side-by-side table.

Examples:
    >>> run = evaluate_candidates(cfg, {"linear": dir1, "gbt": dir2}, table,
    ...                           out=folder)  # doctest: +SKIP
    >>> run.chosen.name, [c.reason for c in run.candidates]  # doctest: +SKIP
    ('gbt', ["passed; auc 0.871 is behind 'gbt' (0.902)",
             'chosen: best auc (0.902) of 2 passing candidate(s)'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mooring.config import MooringConfig
from mooring.config._model import METRIC_HIGHER_IS_BETTER
from mooring.evaluation._compare import compare
from mooring.evaluation._gates import Waiver, decide
from mooring.evaluation._metrics import HEADLINE
from mooring.evaluation._model import attribution_summary, evaluate_loaded_model
from mooring.evaluation._result import EvaluationResult, RenderEvaluation
from mooring.features._inputs import predict_saved_model
from mooring.formats._candidate import CandidateRecord
from mooring.formats._gate import DecisionRecord
from mooring.formats._model import SavedModelFolder, load_saved_model, served_bytes

__all__ = [
    "CandidateEvaluation",
    "CandidatesRun",
    "evaluate_candidates",
    "measure_latency",
    "pick",
]

LATENCY_ROWS = 1000
LATENCY_REPEATS = 3


@dataclass
class CandidateEvaluation:
    """One candidate: its evaluation, gate decision, serving figures and the verdict."""

    name: str
    model_dir: Path
    result: EvaluationResult
    seconds_per_1000: float
    size_bytes: int
    cost_per_1000: float | None = None
    decision: DecisionRecord | None = None
    chosen: bool = False
    reason: str = ""

    @property
    def kind(self) -> str:
        return str(self.result.model.get("kind", "mlp"))

    @property
    def blessed(self) -> bool:
        return self.decision is not None and self.decision.blessed

    @property
    def ungated(self) -> bool:
        """No gate judged this candidate (see :attr:`DecisionRecord.ungated`)."""
        return self.decision is not None and self.decision.ungated

    def summary(self) -> CandidateRecord:
        """The candidate's row of the side-by-side table."""
        result = self.result
        metrics = {m: result.metrics.get(m) for m in HEADLINE[result.task] if m in result.metrics}
        return CandidateRecord(
            name=self.name,
            kind=self.kind,
            model_dir=str(self.model_dir),
            metrics=metrics,
            intervals={k: v.to_dict() for k, v in result.intervals.items()},
            calibration_ece=result.metrics.get("ece"),
            decision_cost_per_1000=None if result.cost is None else result.cost.cost_per_1000,
            seconds_per_1000=self.seconds_per_1000,
            cost_per_1000=self.cost_per_1000,
            size_bytes=self.size_bytes,
            blessed=self.blessed,
            ungated=self.ungated,
            failures=tuple(g.message for g in self.decision.failures) if self.decision else (),
            chosen=self.chosen,
            reason=self.reason,
        )


@dataclass
class CandidatesRun:
    """Every candidate, the metric they were compared on and the one picked (if any)."""

    candidates: list[CandidateEvaluation]
    select: str
    #: The production model evaluated on the same records, when there is one.
    production: EvaluationResult | None
    folder: Path | None

    @property
    def chosen(self) -> CandidateEvaluation | None:
        return next((c for c in self.candidates if c.chosen), None)

    @property
    def lead(self) -> CandidateEvaluation:
        """The chosen candidate, else the best by ``select`` (what a rejection reports)."""
        ranked = sorted(self.candidates, key=lambda c: _rank(c, self.select))
        return self.chosen or ranked[0]

    def summaries(self) -> tuple[CandidateRecord, ...]:
        return tuple(c.summary() for c in self.candidates)


def measure_latency(
    model: SavedModelFolder,
    table: pa.Table,
    *,
    rows: int = LATENCY_ROWS,
    repeats: int = LATENCY_REPEATS,
) -> float:
    """Wall seconds per 1,000 predictions of the loaded model, in-process, one batch.

    The first ``rows`` rows of ``table`` (repeated when there are fewer) are predicted
    once to warm up, then ``repeats`` times; the fastest pass counts.
    """
    if table.num_rows == 0:
        return math.nan
    sample = table.slice(0, rows)
    while sample.num_rows < rows:
        sample = pa.concat_tables([sample, table.slice(0, rows - sample.num_rows)])
    predict_saved_model(model, sample)
    best = math.inf
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        predict_saved_model(model, sample)
        best = min(best, time.perf_counter() - started)
    return float(best * 1000.0 / sample.num_rows)


def _rank(candidate: CandidateEvaluation, select: str) -> tuple[float, float]:
    """Sort key: best ``select`` first, then the lower cost per 1,000 predictions."""
    value = candidate.result.metric(select)
    higher = METRIC_HIGHER_IS_BETTER.get(select, True)
    primary = math.inf if value is None or math.isnan(value) else (-value if higher else value)
    cost = candidate.cost_per_1000
    tie = candidate.seconds_per_1000 if cost is None else cost
    return primary, math.inf if math.isnan(tie) else tie


def pick(candidates: list[CandidateEvaluation], select: str) -> CandidateEvaluation | None:
    """Choose the best blessed candidate by ``select``; write every candidate's reason.

    When every candidate is ungated (no gate judged any), the best by ``select`` is chosen,
    ungated: nothing judged it unfit, and nothing blessed it.
    """
    if candidates and all(c.ungated for c in candidates):
        return _pick_ungated(candidates, select)
    passing = sorted((c for c in candidates if c.blessed), key=lambda c: _rank(c, select))
    best = passing[0] if passing else None
    for c in candidates:
        value = c.result.metric(select)
        shown = "n/a" if value is None else f"{value:.6g}"
        if c.ungated:
            c.reason = "not eligible: ungated (no gate judged it)"
        elif not c.blessed:
            failed = [] if c.decision is None else [g.name for g in c.decision.failures]
            c.reason = f"not eligible: failed {len(failed)} gate(s): {'; '.join(failed)}"
        elif c is best:
            c.chosen = True
            c.reason = f"chosen: best {select} ({shown}) of {len(passing)} passing candidate(s)"
            tied = [o for o in passing[1:] if _rank(o, select)[0] == _rank(c, select)[0]]
            if tied:
                c.reason += (
                    f"; tied with {', '.join(o.name for o in tied)}, lower cost per 1,000 "
                    "predictions"
                )
        elif best is not None:
            other = best.result.metric(select)
            best_shown = "n/a" if other is None else f"{other:.6g}"
            if _rank(c, select)[0] == _rank(best, select)[0]:
                c.reason = (
                    f"passed; {select} {shown} ties with '{best.name}', which costs less per "
                    "1,000 predictions"
                )
            else:
                c.reason = f"passed; {select} {shown} is behind '{best.name}' ({best_shown})"
    return best


def _pick_ungated(candidates: list[CandidateEvaluation], select: str) -> CandidateEvaluation:
    ranked = sorted(candidates, key=lambda c: _rank(c, select))
    best = ranked[0]
    for c in candidates:
        value = c.result.metric(select)
        shown = "n/a" if value is None else f"{value:.6g}"
        if c is best:
            c.chosen = True
            c.reason = (
                f"chosen, ungated: best {select} ({shown}) of {len(candidates)} candidate(s), "
                "none of which any gate judged; it is registered, not blessed"
            )
        else:
            c.reason = f"ungated; {select} {shown} is behind '{best.name}'"
    return best


def evaluate_candidates(
    config: MooringConfig,
    models: Mapping[str, str | Path],
    table: pa.Table,
    *,
    select: str,
    baseline_dir: str | Path | None = None,
    out: str | Path,
    html: RenderEvaluation | None = None,
    waiver: Waiver | None = None,
) -> CandidatesRun:
    """Evaluate every candidate on ``table``, gate each, pick one, save every report.

    ``models`` maps candidate names to model folders; ``baseline_dir`` is the production
    model (change gates and flip rate); ``waiver`` waives each candidate's failed gates
    that compare with it (:class:`~mooring.evaluation._gates.Waiver`), before the pick.
    Each report goes to ``out/<name>/``.
    """
    production = None
    if baseline_dir is not None:
        production = evaluate_loaded_model(load_saved_model(baseline_dir), table, config)
    price = config.pipeline.cpu_hour_price
    evaluated: list[CandidateEvaluation] = []
    for name, model_dir in models.items():
        model = load_saved_model(model_dir)
        result = evaluate_loaded_model(model, table, config)
        attributions = attribution_summary(model, table)
        if attributions is not None:
            result.model["attributions"] = attributions
        if production is not None:
            compare(result, production)
        seconds = measure_latency(model, table)
        evaluated.append(
            CandidateEvaluation(
                name=name,
                model_dir=Path(model_dir),
                result=result,
                seconds_per_1000=seconds,
                size_bytes=served_bytes(model_dir),
                cost_per_1000=None if price is None else seconds / 3600.0 * price,
            )
        )
    by_name = {c.name: c.result for c in evaluated}
    for c in evaluated:
        c.decision = decide(
            c.result, baseline=production, name=c.name, candidates=by_name, waiver=waiver
        )
    pick(evaluated, select)
    run = CandidatesRun(evaluated, select, production, Path(out))
    table_rows = run.summaries()
    for c in evaluated:
        c.result.candidates = table_rows
        c.result.model = {**c.result.model, "candidate": c.name, "select": select}
        c.result.save(Path(out) / c.name, c.decision, html=html)
    return run
