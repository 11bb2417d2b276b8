"""The replay test: recent production requests sent to the candidate and to production.

Before a new version takes traffic, the last N rows of the production prediction
log (written by the server under ``<home>/predictions/``) are replayed in process
through both SavedModels. The report holds how far the scores move (mean, p99 and
max absolute difference), the share of decisions that flip, the latency of each
model on the logged requests re-sent one by one, and the CPU time per 1,000
predictions. ``[pipeline] replay_max_*`` turn the figures into gates.

The flip gate (``replay_max_flip_rate``) judges flips against what the candidate was
trained to change: a candidate retrained on newer data is expected to disagree with
production on drifted traffic, and those flips are the fix, not the risk. It bounds
the *unexplained* flip rate (:func:`judge_flips`):

1. **Replayed rows with labels** (label feedback joined on the request id): a flip
   toward the label is a fix, one away from it a harm. When fixes outnumber harms
   beyond chance (a one-sided sign test at 5%: among the labelled flips, more fixes
   than a fair coin gives), only the harms count: ``harms ÷ labelled rows`` is held
   to the bound. When harms outnumber fixes beyond chance the gate fails, whatever the
   rate: the candidate is shown worse on recent traffic.
2. **No labels, or too few flips among them to tell**: the flip rate the candidate
   showed against this production model on its own evaluation data, where labels say
   its flips there are fixes (the same sign test), is the disagreement it was trained
   to have; only the flips beyond it count: ``max(0, replayed − evaluated)``.
3. **Neither**: every flip counts, as a plain bound on the flip rate.

A candidate that flips as much without being better (trained on shuffled labels, say)
has no fixes to show in either place, so its flips count in full.

Examples:
    >>> table = read_prediction_tail(".mooring/predictions", "income", rows=1000)  # doctest: +SKIP
    >>> report = replay(candidate, production, table, cfg.pipeline)  # doctest: +SKIP
    >>> report.flip_rate, report.passed  # doctest: +SKIP
    (0.012, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from mooring.config._pipeline import PipelineConfig
from mooring.formats._predictions import (
    MODEL_VERSION,
    REQUEST_ID,
    output_column,
    read_prediction_log,
)

if TYPE_CHECKING:
    from mooring.formats._model import SavedModelFolder

__all__ = [
    "FlipEvidence",
    "ReplayReport",
    "encode_feedback",
    "judge_flips",
    "read_prediction_tail",
    "replay",
    "sign_test",
]

#: The level of the sign tests that decide whether flips are fixes (or harms).
FLIP_TEST_LEVEL = 0.05


@dataclass
class ReplayReport:
    """The outcome of a replay test (``status``: compared, no_log or skipped)."""

    status: str
    message: str
    rows: int = 0
    requests: int = 0
    log: dict[str, Any] = field(default_factory=dict)
    mean_abs_diff: float | None = None
    p99_abs_diff: float | None = None
    max_abs_diff: float | None = None
    flip_rate: float | None = None
    flips: int | None = None
    #: Labelled replayed rows and, among their flips, the fixes and the harms.
    labelled: int | None = None
    fixes: int | None = None
    harms: int | None = None
    #: The flip rate counted against ``replay_max_flip_rate`` (see :func:`judge_flips`).
    unexplained_flip_rate: float | None = None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ratio_p95: float | None = None
    cpu_seconds_per_1000: dict[str, float] = field(default_factory=dict)
    logged_max_abs_diff: float | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True unless a configured replay gate failed."""
        return all(g["passed"] for g in self.gates)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The replay gates that failed."""
        return [g for g in self.gates if not g["passed"]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (with ``passed``)."""
        data = asdict(self)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayReport:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def read_prediction_tail(url: str, model: str, *, rows: int) -> pa.Table | None:
    """The last ``rows`` rows that the prediction log holds for ``model``, oldest first.

    ``None`` when the log holds nothing for the model.
    """
    from mooring.errors import NotFoundError

    try:
        table = read_prediction_log(url, model, last=rows)
    except NotFoundError:
        return None
    return table if table.num_rows else None


def _score(model: SavedModelFolder, outputs: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Per-row score: P(positive) (binary), the probability vector (multiclass) or the value."""
    if model.task == "regression":
        return np.asarray(outputs["value"], dtype=np.float64).reshape(-1)
    probabilities = np.asarray(outputs["probabilities"], dtype=np.float64)
    if model.task == "binary":
        return probabilities[:, 1]
    return probabilities


def _decision(
    model: SavedModelFolder, outputs: dict[str, Any], threshold: float | None
) -> np.ndarray[Any, Any] | None:
    if model.task == "regression":
        return None
    if model.task == "binary":
        threshold = model.threshold if threshold is None else threshold
        return np.asarray(outputs["probabilities"])[:, 1] >= threshold
    return np.asarray(outputs["class_ids"]).reshape(-1)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000.0
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "requests": float(len(values)),
    }


def _gate(name: str, value: float | None, bound: float | None) -> dict[str, Any] | None:
    if bound is None:
        return None
    if value is None:
        # Not measurable for this model (flip rate of a regression, latency not timed).
        return {
            "name": name,
            "value": None,
            "bound": {"upper": bound},
            "passed": True,
            "skipped": True,
            "message": f"replay {name}: not measured, gate skipped",
        }
    passed = value <= bound
    return {
        "name": name,
        "value": value,
        "bound": {"upper": bound},
        "passed": passed,
        "message": f"replay {name} {value:.4g} {'<=' if passed else '>'} {bound:g}",
    }


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips).

    Exact up to 2,000 trials, a normal approximation with continuity correction beyond.

    >>> round(sign_test(9, 1), 4), sign_test(0, 0)
    (0.0107, 1.0)
    """
    n = wins + losses
    if n == 0 or wins <= 0:
        return 1.0
    if n > 2000:
        z = (wins - 0.5 - n / 2.0) / math.sqrt(n / 4.0)
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    log_half = n * math.log(0.5)
    return min(1.0, math.fsum(math.exp(_log_choose(n, k) + log_half) for k in range(wins, n + 1)))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


@dataclass(frozen=True)
class FlipEvidence:
    """What labels say about the flips between a candidate and production on some rows."""

    rows: int  # labelled rows compared
    flips: int
    fixes: int  # flips where the candidate is right and production wrong
    harms: int  # flips where production is right and the candidate wrong

    @classmethod
    def from_arrays(cls, candidate: Any, production: Any, labels: Any) -> FlipEvidence:
        """From decisions and encoded labels (negative: no label) on the same rows."""
        y = np.asarray(labels).reshape(-1)
        known = y >= 0
        ours = np.asarray(candidate).astype(np.int64).reshape(-1)[known]
        theirs = np.asarray(production).astype(np.int64).reshape(-1)[known]
        y = y[known]
        right, was_right = ours == y, theirs == y
        return cls(
            rows=int(known.sum()),
            flips=int((ours != theirs).sum()),
            fixes=int((right & ~was_right).sum()),
            harms=int((was_right & ~right).sum()),
        )

    @property
    def p_fixes(self) -> float:
        """P-value of "the flips fix no more often than they harm"."""
        return sign_test(self.fixes, self.harms)

    @property
    def p_harms(self) -> float:
        """P-value of "the flips harm no more often than they fix"."""
        return sign_test(self.harms, self.fixes)

    @property
    def verdict(self) -> Literal["fixes", "harms", "undecided"]:
        """Whether the flips are shown to be fixes, harms, or neither (at 5%)."""
        if self.p_fixes <= FLIP_TEST_LEVEL:
            return "fixes"
        if self.p_harms <= FLIP_TEST_LEVEL:
            return "harms"
        return "undecided"

    def describe(self) -> str:
        """``412 fixes vs 31 harms among 3,000 labelled rows (sign test p = 1e-90)``."""
        p = self.p_fixes if self.fixes >= self.harms else self.p_harms
        return (
            f"{self.fixes} fixes vs {self.harms} harms among {self.rows:,} labelled rows "
            f"(sign test p = {p:.2g})"
        )


def judge_flips(
    candidate: Any,
    production: Any,
    bound: float,
    *,
    labels: Any = None,
    trained: Mapping[str, Any] | None = None,
    trained_why: str = "",
) -> dict[str, Any]:
    """The flip gate on replayed decisions: flips beyond what the candidate was trained to
    change must stay within ``bound`` (see the module docstring).

    Args:
        candidate, production: each model's decision per replayed row (binary: bool at
            its operating threshold; multiclass: class id).
        bound: ``[pipeline] replay_max_flip_rate``.
        labels: encoded labels of the replayed rows (class id, -1 where none arrived).
        trained: the candidate-vs-production comparison on the evaluation data
            (``rows``, ``flip_rate``, ``fixes``, ``harms``), or ``None``; ``trained_why``
            says why there is none.

    Examples:
        >>> gate = judge_flips(cand, prod, 0.1, labels=y)  # doctest: +SKIP
        >>> gate["passed"], gate["basis"]  # doctest: +SKIP
        (True, 'labels')
    """
    ours, theirs = np.asarray(candidate).reshape(-1), np.asarray(production).reshape(-1)
    rows = int(ours.shape[0])
    flips = int((ours != theirs).sum())
    rate = flips / rows if rows else 0.0
    gate: dict[str, Any] = {
        "name": "flip_rate",
        "value": rate,
        "bound": {"upper": bound},
        "flips": flips,
        "rows": rows,
    }

    def done(passed: bool, basis: str, unexplained: float, message: str) -> dict[str, Any]:
        gate.update(passed=passed, basis=basis, unexplained=unexplained, message=message)
        return gate

    seen = f"replay flip_rate {rate:.4g} ({flips} of {rows} decisions changed)"
    live = None
    if labels is not None:
        live = FlipEvidence.from_arrays(ours, theirs, labels)
        gate["labelled"] = {**asdict(live), "verdict": live.verdict}
        if live.verdict == "harms":
            return done(
                False,
                "labels",
                rate,
                f"{seen}: on the replayed rows with labels the candidate's flips are shown to "
                f"harm: {live.describe()}; it is worse than production on recent traffic, "
                "whatever the flip rate; retrain it (check the label column and the data "
                "it learned from) before deploying",
            )
        if live.verdict == "fixes":
            harmful = live.harms / live.rows
            passed = harmful <= bound
            return done(
                passed,
                "labels",
                harmful,
                f"{seen}; flips toward the label are fixes: {live.describe()}, so only the "
                f"harms count: {harmful:.4g} {'<=' if passed else '>'} {bound:g}"
                + ("" if passed else "; too many decisions change for the worse"),
            )
    why_not = (
        "no replayed row has a label yet"
        if live is None or live.rows == 0
        else f"the labelled flips do not tell ({live.describe()})"
    )
    expected = None
    if trained is not None and trained.get("flip_rate") is not None:
        fixes, harms = trained.get("fixes"), trained.get("harms")
        if fixes is None or harms is None:
            trained_why = "the evaluation recorded no fixes and harms of its flips"
        else:
            shown = FlipEvidence(int(trained.get("rows") or 0), 0, int(fixes), int(harms))
            gate["trained"] = {
                **asdict(shown),
                "flip_rate": float(trained["flip_rate"]),
                "verdict": shown.verdict,
            }
            if shown.verdict == "fixes":
                expected = float(trained["flip_rate"])
            else:
                trained_why = (
                    f"its {float(trained['flip_rate']):.4g} flip rate against production on "
                    f"the evaluation data is not shown to be fixes ({shown.describe()})"
                )
    if rate <= bound:
        return done(True, "none", rate, f"{seen} <= {bound:g}")
    if expected is not None:
        beyond = max(0.0, rate - expected)
        passed = beyond <= bound
        return done(
            passed,
            "evaluation",
            beyond,
            f"{seen} vs {expected:.4g} that the candidate was trained to have against "
            f"production on its evaluation data, where its flips are fixes "
            f"({gate['trained']['fixes']} fixes vs {gate['trained']['harms']} harms); "
            f"beyond it {beyond:.4g} {'<=' if passed else '>'} {bound:g}"
            + (
                ""
                if passed
                else f" ({why_not}); send labels for recent traffic (`mooring feedback "
                "FILE`) so flips toward the label count as fixes, or raise "
                "[pipeline] replay_max_flip_rate"
            ),
        )
    return done(
        False,
        "none",
        rate,
        f"{seen} > {bound:g}, and nothing shows the flips are fixes: {why_not}; "
        f"{trained_why or 'no evaluation against this production model'}. Send labels "
        "for recent traffic (`mooring feedback FILE`) so flips toward the label count as "
        "fixes, evaluate on data from the recent population ([data] eval), or raise "
        "[pipeline] replay_max_flip_rate",
    )


def encode_feedback(
    table: pa.Table, feedback: pa.Table, vocabulary: list[str]
) -> np.ndarray[Any, Any] | None:
    """Encoded labels of the replayed rows from the feedback store (-1: no label).

    Labels are joined on the server's request id; a label is a class name of
    ``vocabulary`` or a class id. ``None`` when the log has no request ids or no row has
    a label.
    """
    if REQUEST_ID not in table.column_names or feedback.num_rows == 0 or not vocabulary:
        return None
    latest = dict(
        zip(
            feedback.column(REQUEST_ID).to_pylist(),
            feedback.column("label").to_pylist(),
            strict=True,
        )
    )
    index = {v: i for i, v in enumerate(vocabulary)}
    codes = np.full(table.num_rows, -1, dtype=np.int64)
    for row, rid in enumerate(table.column(REQUEST_ID).to_pylist()):
        text = latest.get(rid)
        if text is None:
            continue
        if text in index:
            codes[row] = index[text]
        elif text.isdigit() and int(text) < len(vocabulary):
            codes[row] = int(text)
    return codes if (codes >= 0).any() else None


def _requests(table: pa.Table) -> list[np.ndarray[Any, Any]]:
    """Row indices of each logged request, in log order."""
    if REQUEST_ID not in table.column_names:
        return [np.arange(table.num_rows)]
    groups: dict[Any, list[int]] = {}
    for index, key in enumerate(table.column(REQUEST_ID).to_pylist()):
        groups.setdefault(key, []).append(index)
    return [np.asarray(v) for v in groups.values()]


def _flips(
    report: ReplayReport,
    candidate: np.ndarray[Any, Any] | None,
    production: np.ndarray[Any, Any] | None,
    config: PipelineConfig,
    labels: np.ndarray[Any, Any] | None,
    trained: Mapping[str, Any] | None,
    trained_why: str,
) -> dict[str, Any] | None:
    """Fill the report's flip figures; the flip gate when one is configured."""
    if candidate is None or production is None:
        return None
    rows = int(candidate.shape[0])
    report.flips = int((candidate != production).sum())
    report.flip_rate = report.flips / rows if rows else 0.0
    if labels is not None:
        live = FlipEvidence.from_arrays(candidate, production, labels)
        report.labelled, report.fixes, report.harms = live.rows, live.fixes, live.harms
    if config.replay_max_flip_rate is None or not rows:
        return None
    gate = judge_flips(
        candidate,
        production,
        config.replay_max_flip_rate,
        labels=labels,
        trained=trained,
        trained_why=trained_why,
    )
    report.unexplained_flip_rate = gate["unexplained"]
    return gate


def replay(
    candidate: SavedModelFolder,
    production: SavedModelFolder,
    table: pa.Table,
    config: PipelineConfig,
    *,
    production_version: int | None = None,
    thresholds: tuple[float | None, float | None] = (None, None),
    labels: np.ndarray[Any, Any] | None = None,
    trained: Mapping[str, Any] | None = None,
    trained_why: str = "",
) -> ReplayReport:
    """Replay logged rows through both models; compare scores, decisions and latency.

    ``thresholds`` are the operating thresholds of the candidate and of production (as
    registered); ``None`` takes the one in the model's ``mooring.json``. ``labels``
    (encoded, -1 where none arrived) and ``trained`` (the candidate-vs-production
    comparison on the evaluation data) are the evidence the flip gate judges flips by
    (:func:`judge_flips`).
    """
    from mooring.errors import DataError
    from mooring.features._inputs import columns_from_table, model_spec, predict_saved_model

    rows = table.num_rows
    columns = {}
    for label, model in (("candidate", candidate), ("production", production)):
        try:
            columns[label] = columns_from_table(table, model_spec(model))
        except DataError as exc:
            return ReplayReport(
                status="skipped",
                message=f"the {label} needs inputs the log does not hold: {exc}",
                rows=rows,
            )
    cand_cols, prod_cols = columns["candidate"], columns["production"]

    timings: dict[str, float] = {}
    outputs: dict[str, dict[str, Any]] = {}
    for label, model, cols in (
        ("production", production, prod_cols),
        ("candidate", candidate, cand_cols),
    ):
        predict_saved_model(model, {k: v[:1] for k, v in cols.items()})  # traces; not timed
        cpu = time.process_time()
        outputs[label] = predict_saved_model(model, cols)
        timings[label] = (time.process_time() - cpu) / max(rows, 1) * 1000.0

    cand_score = _score(candidate, outputs["candidate"])
    prod_score = _score(production, outputs["production"])
    diff = np.abs(cand_score - prod_score)
    if diff.ndim == 2:
        diff = diff.max(axis=1)
    report = ReplayReport(
        status="compared",
        message=f"{rows} logged rows replayed on the candidate and on production",
        rows=rows,
        mean_abs_diff=float(diff.mean()) if rows else 0.0,
        p99_abs_diff=float(np.percentile(diff, 99)) if rows else 0.0,
        max_abs_diff=float(diff.max()) if rows else 0.0,
        cpu_seconds_per_1000=timings,
    )
    cand_decision = _decision(candidate, outputs["candidate"], thresholds[0])
    prod_decision = _decision(production, outputs["production"], thresholds[1])
    flip_gate = _flips(report, cand_decision, prod_decision, config, labels, trained, trained_why)

    # Does production, in process, reproduce what it answered in serving?
    output = "probabilities" if production.task != "regression" else "value"
    logged = output_column(output)
    if logged in table.column_names and MODEL_VERSION in table.column_names:
        versions = np.asarray(table.column(MODEL_VERSION).to_numpy(zero_copy_only=False))
        mask = versions == production_version if production_version is not None else None
        if mask is not None and mask.any():
            values = table.column(logged).to_pylist()
            chosen = [values[i] for i in np.flatnonzero(mask)]
            logged_arr = np.asarray(chosen, dtype=np.float64)
            ours = np.asarray(
                outputs["production"][output],
                dtype=np.float64,
            )[mask]
            report.logged_max_abs_diff = float(np.abs(logged_arr.reshape(ours.shape) - ours).max())

    groups = _requests(table)[: config.replay_latency_requests]
    latency: dict[str, list[float]] = {"production": [], "candidate": []}
    for number, index in enumerate(groups):
        pairs = [("production", production, prod_cols), ("candidate", candidate, cand_cols)]
        if number % 2:
            pairs.reverse()  # alternate the order so neither model always runs warm
        for label, model, cols in pairs:
            feed = {k: v[index] for k, v in cols.items()}
            start = time.perf_counter()
            predict_saved_model(model, feed)
            latency[label].append(time.perf_counter() - start)
    report.requests = len(_requests(table))
    report.latency_ms = {k: _percentiles(v) for k, v in latency.items() if v}
    if report.latency_ms:
        prod_p95 = report.latency_ms["production"]["p95"]
        report.latency_ratio_p95 = report.latency_ms["candidate"]["p95"] / prod_p95
    for gate in (
        flip_gate or _gate("flip_rate", report.flip_rate, config.replay_max_flip_rate),
        _gate("mean_abs_diff", report.mean_abs_diff, config.replay_max_mean_abs_diff),
        _gate("latency_ratio_p95", report.latency_ratio_p95, config.replay_max_latency_ratio),
    ):
        if gate is not None:
            report.gates.append(gate)
    return report
