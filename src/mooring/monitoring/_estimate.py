"""A binary classifier's performance estimated without labels, from its calibrated scores.

Labels arrive late or never. If a version's scores are *calibrated* (of the rows scored
0.8, 80% are positive), a window of served scores says what its confusion matrix is
expected to be without a single label: each row predicted positive is a true positive
with probability ``p`` and a false positive with ``1 - p``. That is confidence-based
performance estimation (CBPE, as NannyML names it).

At registration (:func:`fit_reference`) the version's scores on its held-out evaluation
data and their labels give a **score map**: isotonic regression of the label on the
score (``scipy.optimize.isotonic_regression``), or the identity when the model is already
calibrated (the map does not lower the expected calibration error, ECE, out of fold).
Where even the mapped scores are poorly calibrated, or the held-out data is too small,
the reference says why and nothing is estimated from it.

On a window of served scores (:func:`estimate`) the mapped scores give the expected
accuracy, precision and recall at the version's operating threshold, and the expected
AUC. Each comes with a **sampling band**: the 2.5th to 97.5th percentile of the metric
over labels drawn from the mapped scores, which is where the realized metric falls, once
the window's labels arrive, when the map holds on this traffic.

Examples:
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(4000)
    >>> y = rng.random(4000) < p  # scores calibrated by construction
    >>> reference = fit_reference(p, y, threshold=0.5)
    >>> reference.refused is None, reference.score_map.identity
    (True, True)
    >>> est = estimate(reference, rng.random(1000) ** 2)  # a window of lower scores
    >>> est.metrics["accuracy"].low < est.metrics["accuracy"].value < est.metrics["accuracy"].high
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mooring.evaluation._calibration import calibration
from mooring.monitoring._estimate_checks import (
    Support,
    check_attribution_drift,
    check_inputs,
    check_score_move,
    check_score_support,
    freeze_support,
    verdict,
)
from mooring.monitoring._estimated import (
    LOSS_METRICS,
    METRICS,
    NO_ROWS,
    Estimate,
    EstimatedMetric,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mooring.config._monitoring import GuardrailsConfig
    from mooring.evaluation._result import EvaluationResult
    from mooring.monitoring._estimate_loss import LossReference
    from mooring.monitoring._guardrails import GuardrailResult, Status
    from mooring.registry import ModelVersion

__all__ = [
    "LOSS_METRICS",
    "MAX_ECE",
    "METRICS",
    "MIN_CLASS_ROWS",
    "Estimate",
    "EstimatedMetric",
    "EstimationReference",
    "ScoreMap",
    "compare_estimates",
    "estimate",
    "estimate_line",
    "estimated_guardrail",
    "fit_reference",
    "not_estimated",
    "output_columns",
    "production_reference",
    "reference_of",
    "version_estimate",
]

FloatArray = npt.NDArray[np.float64]

#: Above this expected calibration error of the mapped scores (out of fold), nothing is
#: estimated: an expected confusion matrix from scores that are wrong by more than 5
#: points on average would be a guess.
MAX_ECE = 0.05
#: Rows of each class the held-out data needs for a map worth trusting.
MIN_CLASS_ROWS = 30
#: Label draws behind each window's sampling band.
DRAWS = 200
#: Maps fitted on bootstrap resamples of the held-out rows: the band holds what the
#: held-out data leaves unknown of the map (few rows at high scores, say) as well.
RESAMPLED_MAPS = 20
#: Mixed into every seed, so the folds and draws are not the stream a caller's own
#: default_rng(seed) made the scores from.
_STREAM = 0x6D6F6F72
#: What the draws may hold in memory at once (label cells).
_CELLS = 4_000_000


@dataclass(frozen=True)
class ScoreMap:
    """Scores to probabilities: piecewise linear through ``knots`` (score, probability),
    clipped at both ends; no knots is the identity.

    >>> ScoreMap((0.0, 1.0), (0.2, 0.6))(np.array([0.5, 2.0])).tolist()
    [0.4, 0.6]
    """

    scores: tuple[float, ...] = ()
    probabilities: tuple[float, ...] = ()

    @property
    def identity(self) -> bool:
        """The scores are used as they are (the model is calibrated already)."""
        return not self.scores

    def __call__(self, scores: npt.ArrayLike) -> FloatArray:
        s = np.asarray(scores, dtype=np.float64)
        if self.identity:
            return np.clip(s, 0.0, 1.0)
        return np.interp(s, self.scores, self.probabilities)

    @classmethod
    def isotonic(cls, scores: npt.ArrayLike, labels: npt.ArrayLike) -> ScoreMap:
        """The isotonic regression of ``labels`` (0/1) on ``scores``: equal scores pooled
        first, so the map is a function of the score, as scikit-learn's
        ``IsotonicRegression(out_of_bounds="clip")`` is."""
        from scipy.optimize import isotonic_regression

        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        unique, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=y) / counts
        fitted = np.asarray(isotonic_regression(means, weights=counts.astype(np.float64)).x)
        # Only each constant block's first and last score are kept: the same function.
        change = np.flatnonzero(np.diff(fitted) != 0)
        keep = np.unique(np.concatenate([[0, fitted.size - 1], change, change + 1]))
        return cls(tuple(unique[keep].tolist()), tuple(fitted[keep].tolist()))

    def to_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "probabilities": list(self.probabilities)}

    @classmethod
    def read(cls, data: object) -> ScoreMap:
        """The map of a stored mapping; anything unreadable is the identity."""
        if not isinstance(data, Mapping):
            return cls()
        scores, probabilities = data.get("scores"), data.get("probabilities")
        if not isinstance(scores, list) or not isinstance(probabilities, list):
            return cls()
        if len(scores) != len(probabilities):
            return cls()
        return cls(tuple(map(float, scores)), tuple(map(float, probabilities)))


@dataclass(frozen=True)
class EstimationReference:
    """What a version's estimates are computed from, frozen at registration.

    ``threshold`` is the operating threshold (a row is positive when its score is at
    least it); ``ece_raw`` and ``ece_mapped`` the ECE of the scores as they are and
    through the isotonic map (out of fold), on ``rows`` held-out rows; ``resampled`` the
    maps of bootstrap resamples of those rows; ``refused`` why nothing is estimated from
    this reference (None: estimates are made); ``support`` what the checks of the
    assumption compare a window with (None: frozen before them); ``spread`` per metric,
    the error the sampling band misses, measured out of fold at registration
    (:func:`self_test`; empty before it was).
    """

    threshold: float
    score_map: ScoreMap
    rows: int
    ece_raw: float | None
    ece_mapped: float | None
    refused: str | None = None
    resampled: tuple[ScoreMap, ...] = ()
    support: Support | None = None
    spread: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "cbpe",
            "threshold": self.threshold,
            "score_map": self.score_map.to_dict(),
            "rows": self.rows,
            "ece_raw": self.ece_raw,
            "ece_mapped": self.ece_mapped,
            "refused": self.refused,
            "resampled": [m.to_dict() for m in self.resampled],
            "support": None if self.support is None else self.support.to_dict(),
            "spread": dict(self.spread),
        }

    @classmethod
    def read(cls, data: object) -> EstimationReference | None:
        """The reference of a stored mapping, or None when there is none to read."""
        if not isinstance(data, Mapping) or not isinstance(data.get("threshold"), int | float):
            return None

        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) else None

        refused = data.get("refused")
        rows = data.get("rows")
        resampled = data.get("resampled")
        spread = data.get("spread")
        return cls(
            threshold=float(data["threshold"]),
            score_map=ScoreMap.read(data.get("score_map")),
            rows=rows if isinstance(rows, int) else 0,
            ece_raw=number("ece_raw"),
            ece_mapped=number("ece_mapped"),
            refused=refused if isinstance(refused, str) else None,
            resampled=tuple(
                m
                for m in map(ScoreMap.read, resampled if isinstance(resampled, list) else [])
                if not m.identity
            ),
            support=Support.read(data.get("support")),
            spread={
                str(k): float(v)
                for k, v in (spread.items() if isinstance(spread, Mapping) else ())
                if isinstance(v, int | float)
            },
        )


def _ece(labels: FloatArray, probabilities: FloatArray) -> float:
    ece = calibration(labels, probabilities).ece
    return float(ece) if ece is not None else 0.0


def _chance_ece(p: FloatArray, rng: np.random.Generator, draws: int = 40) -> float:
    """The largest ECE that perfectly calibrated scores ``p`` show by chance on this many
    rows, over ``draws`` label sets drawn from them (one calibrated model in ``draws + 1``
    shows more)."""
    return max(_ece((rng.random(p.size) < p).astype(np.float64), p) for _ in range(draws))


def fit_reference(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    threshold: float,
    seed: int = 0,
    features: pa.Table | None = None,
) -> EstimationReference:
    """The score map of a version from its held-out ``scores`` (positive-class
    probabilities) and 0/1 ``labels``, and whether estimates may be made from it.

    The scores are kept as they are when calibrated: their ECE within :data:`MAX_ECE`
    and no more than perfectly calibrated scores show by chance on as many rows.
    Otherwise the isotonic map is kept when it is closer out of fold (two folds, each
    mapped by the other's fit: a fit judged on its own rows always looks perfect).
    Refused when the kept scores' ECE is above :data:`MAX_ECE`. The held-out rows' input
    columns ``features``, when given, freeze the input ranges the checks of the
    assumption read (:func:`mooring.monitoring._estimate_checks.freeze_support`); the
    estimator's own error is measured out of fold (:func:`self_test`).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels: give one label per score")
    positives, rows = int(y.sum()), int(s.size)
    if min(positives, rows - positives) < MIN_CLASS_ROWS:
        return EstimationReference(
            threshold,
            ScoreMap(),
            rows,
            None,
            None,
            refused=f"the held-out data has {positives} positive and {rows - positives} "
            f"negative rows; estimating needs {MIN_CLASS_ROWS} of each: evaluate on more rows",
        )
    rng = np.random.default_rng((seed, _STREAM))
    fold = rng.random(rows) < 0.5
    crossed = np.empty(rows)
    for part in (fold, ~fold):
        crossed[part] = ScoreMap.isotonic(s[~part], y[~part])(s[part])
    raw = np.clip(s, 0.0, 1.0)
    ece_raw, ece_mapped = _ece(y, raw), _ece(y, crossed)
    # The scores as they are when calibrated (their ECE within chance and the limit);
    # otherwise whichever is closer out of fold, the scores or the map.
    chance = _chance_ece(raw, rng)
    calibrated = ece_raw <= chance and ece_raw <= MAX_ECE
    mapped = not calibrated and ece_mapped < ece_raw
    score_map = ScoreMap.isotonic(s, y) if mapped else ScoreMap()
    best = ece_mapped if mapped else ece_raw
    refused = None
    if best > MAX_ECE:
        how = "through the isotonic map, out of fold" if mapped else "as they are"
        refused = (
            f"the scores are poorly calibrated on the {rows:,} held-out rows (ECE "
            f"{best:.3f} {how}, above {MAX_ECE}; calibrated scores show up to "
            f"{chance:.3f} by chance on as many rows): an estimate would be a guess; "
            "evaluate on more rows, or rely on labels (feedback) for this version"
        )
    if refused:  # a refused reference draws nothing
        return EstimationReference(threshold, score_map, rows, ece_raw, ece_mapped, refused)
    resampled = _bootstrap_maps(s, y, RESAMPLED_MAPS, rng)
    return EstimationReference(
        threshold,
        score_map,
        rows,
        ece_raw,
        ece_mapped,
        None,
        resampled,
        freeze_support(s, y, features),
        self_test(s, y, threshold=threshold, mapped=mapped, seed=seed),
    )


def _bootstrap_maps(
    s: FloatArray, y: FloatArray, count: int, rng: np.random.Generator
) -> tuple[ScoreMap, ...]:
    """Isotonic maps of ``count`` bootstrap resamples of the rows."""
    picks = (rng.integers(0, s.size, s.size) for _ in range(count))
    return tuple(ScoreMap.isotonic(s[pick], y[pick]) for pick in picks)


#: The self-test's folds, repeats (each a fold's estimate against its realized metrics)
#: and label draws per fold.
SELF_TEST_FOLDS, SELF_TEST_REPEATS, SELF_TEST_DRAWS = 5, 4, 50


def realized(labels: FloatArray, scores: FloatArray, threshold: float) -> dict[str, float]:
    """The metrics ``labels`` realize on ``scores`` at ``threshold`` (AUC by the rank sum;
    a metric without its denominator, such as AUC on one class, is left out)."""
    predicted = scores >= threshold
    positives, n = float(labels.sum()), labels.size
    tp = float(labels[predicted].sum())
    out = {"accuracy": float(np.mean(predicted == (labels > 0.5)))}
    if 0 < positives < n:
        rank_sum = float(_ranks(scores)[labels > 0.5].sum())
        out["auc"] = (rank_sum - positives * (positives + 1) / 2) / (positives * (n - positives))
        out["recall"] = tp / positives
    if predicted.any():
        out["precision"] = tp / float(predicted.sum())
    return out


def self_test(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    threshold: float,
    mapped: bool,
    seed: int = 0,
) -> dict[str, float]:
    """Per metric, the error of the estimate beyond the label noise of its window,
    measured on held-out rows the map was not fitted on.

    Each of :data:`SELF_TEST_FOLDS` folds (:data:`SELF_TEST_REPEATS` times, contiguous
    blocks of the rows in their order) is estimated through a map fitted on the other
    rows and compared with what its labels realize. The squared error beyond the variance
    of the metric over label draws at the fold's size is what the map gets wrong on rows
    it has not seen (its fit to its own rows' noise, its bias). Added to it, the metric's
    variance over label draws on all the held-out rows: the map was judged on them alone,
    and no estimate read from them is surer than they are (a carried-forward value has
    that error). The square root of the sum widens every window's band.

    >>> rng = np.random.default_rng(1)
    >>> p = rng.random(3000)
    >>> spread = self_test(p, rng.random(3000) < p, threshold=0.5, mapped=False)
    >>> sorted(spread), 0 < spread["auc"] < 0.02
    (['accuracy', 'auc', 'precision', 'recall'], True)
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng((seed, _STREAM, 1))
    excess: dict[str, list[float]] = {name: [] for name in METRICS}
    for repeat in range(SELF_TEST_REPEATS):
        # Contiguous blocks of the rows in their order, shifted on each repeat: rows near
        # one another (an hour's, a day's) fall in one fold, as in one window of traffic.
        offset = repeat * s.size // (SELF_TEST_REPEATS * SELF_TEST_FOLDS)
        fold_of = (np.roll(np.arange(s.size), offset) * SELF_TEST_FOLDS) // s.size
        for k in range(SELF_TEST_FOLDS):
            test, fit = fold_of == k, fold_of != k
            score_map = ScoreMap.isotonic(s[fit], y[fit]) if mapped else ScoreMap()
            points, sampled = _estimated(
                score_map,
                (score_map,),
                threshold,
                s[test],
                SELF_TEST_DRAWS,
                int(rng.integers(2**31)),
            )
            truth = realized(y[test], s[test], threshold)
            for name, value in points.items():
                if name in truth:
                    excess[name].append((value - truth[name]) ** 2 - float(np.var(sampled[name])))
    # The map was judged on these rows alone: the metric's own variance over label
    # draws on them is what no estimate read from them can be surer of.
    score_map = ScoreMap.isotonic(s, y) if mapped else ScoreMap()
    _, own = _estimated(score_map, (score_map,), threshold, s, SELF_TEST_DRAWS * 2, seed)
    return {
        name: round(float(np.sqrt(max(0.0, float(np.mean(found))) + np.var(own[name]))), 6)
        for name, found in excess.items()
        if found and name in own
    }


def _ranks(scores: FloatArray) -> FloatArray:
    from scipy.stats import rankdata

    ranks: FloatArray = rankdata(scores).astype(np.float64)
    return ranks


def estimate(
    reference: EstimationReference,
    scores: npt.ArrayLike,
    *,
    draws: int = DRAWS,
    seed: int = 0,
    inputs: pa.Table | None = None,
    drifted: Mapping[str, float] | None = None,
) -> Estimate:
    """The expected AUC, accuracy, precision and recall of a window of served ``scores``,
    each with its band, from ``reference`` (:func:`fit_reference`), and whether the
    estimate's assumption holds on it.

    The band holds the label draws from the map's bootstrap resamples, widened by the
    error the self-test found beyond them (``reference.spread``). The checks
    (:mod:`mooring.monitoring._estimate_checks`) read the window's ``inputs`` (its input
    columns, one row per score) when given, and ``drifted``: the columns a drift check
    flagged, each with the share of the attributions it carries.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    rows = int(s.size)
    if reference.refused is not None:
        return Estimate(rows, {}, reference.refused)
    if rows == 0:
        return Estimate(0, {}, NO_ROWS)
    maps = reference.resampled or (reference.score_map,)
    points, sampled = _estimated(reference.score_map, maps, reference.threshold, s, draws, seed)
    out: dict[str, EstimatedMetric] = {}
    for name, centre in points.items():
        values = sampled[name]
        low, high = np.quantile(values, [0.025, 0.975])
        wider = 1.96 * reference.spread.get(name, 0.0)
        below, above = max(centre - low, 0.0), max(high - centre, 0.0)
        out[name] = EstimatedMetric(
            centre,
            max(0.0, centre - float(np.hypot(below, wider))),
            min(1.0, centre + float(np.hypot(above, wider))),
        )
    checks = (
        check_inputs(reference.support, inputs),
        check_score_support(reference.support, s),
        *check_score_move(reference.support, s, reference.score_map, maps),
        check_attribution_drift(drifted),
    )
    return Estimate(rows, out, unreliable=verdict(checks), checks=checks)


def _estimated(
    score_map: ScoreMap,
    maps: tuple[ScoreMap, ...],
    threshold: float,
    s: FloatArray,
    draws: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, FloatArray]]:
    """Each metric's estimate on scores ``s`` (the expected value through ``score_map``;
    AUC the mean over the draws) and its values over label draws from ``maps``; a
    metric undefined on most draws (no positive label, say) is left out."""
    p = score_map(s)
    predicted = s >= threshold
    expected_tp = float(p[predicted].sum())
    expected_pos = float(p.sum())
    n_predicted = int(predicted.sum())
    point = {
        "accuracy": float(np.where(predicted, p, 1.0 - p).mean()),
        "precision": expected_tp / n_predicted if n_predicted else None,
        "recall": expected_tp / expected_pos if expected_pos > 0 else None,
    }
    sampled = _draws([m(s) for m in maps], predicted, s, draws, seed)
    points: dict[str, float] = {}
    kept: dict[str, FloatArray] = {}
    for name in METRICS:
        values = sampled[name]
        values = values[np.isfinite(values)]
        if values.size < draws // 2:
            continue
        value = point.get(name)
        points[name] = float(values.mean()) if value is None else value
        kept[name] = values
    return points, kept


def _draws(
    probabilities: list[FloatArray],
    predicted: npt.NDArray[np.bool_],
    scores: FloatArray,
    draws: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Each metric over ``draws`` label sets, drawn in turn from each map's probabilities."""
    rng = np.random.default_rng((seed, _STREAM))
    n = scores.size
    ranks = _ranks(scores)
    pred = predicted.astype(np.float64)
    each = max(1, draws // len(probabilities))
    per = max(1, min(each, _CELLS // n))
    found: dict[str, list[FloatArray]] = {name: [] for name in METRICS}
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, start in ((p, start) for p in probabilities for start in range(0, each, per)):
            labels = (rng.random((min(per, each - start), n)) < p).astype(np.float64)
            positives = labels.sum(axis=1)
            negatives = n - positives
            tp = labels @ pred
            correct = tp + (1.0 - labels) @ (1.0 - pred)
            rank_sum = labels @ ranks
            found["auc"].append(
                (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
            )
            found["accuracy"].append(correct / n)
            found["precision"].append(tp / pred.sum())
            found["recall"].append(tp / positives)
    return {name: np.concatenate(parts) for name, parts in found.items()}


def reference_of(
    result: EvaluationResult,
    production: EvaluationResult | None = None,
    production_version: int | None = None,
) -> dict[str, Any] | None:
    """The estimation reference (as stored) of a binary evaluation with its scores, labels
    and operating threshold in memory, and under ``"production"`` production's on the
    same rows (its rollout compares their estimates); None for other tasks.

    >>> reference_of(result)["method"]  # doctest: +SKIP
    'cbpe'
    """
    own = _reference_of(result)
    theirs = None if production is None else _reference_of(production)
    if own is not None and theirs is not None and production_version is not None:
        own["production"] = {**theirs, "version": production_version}
    return own


def _reference_of(result: EvaluationResult) -> dict[str, Any] | None:
    if result.predictions is None or result.labels is None:
        return None
    if result.task == "regression" and result.features is not None:
        from mooring.monitoring._estimate_loss import fit_loss_reference

        labels = np.asarray(result.labels, dtype=np.float64).reshape(-1)
        return fit_loss_reference(result.features, result.predictions, labels).to_dict()
    if result.task != "binary":
        return None
    scores = np.asarray(result.predictions, dtype=np.float64)
    if scores.ndim == 2:
        scores = scores[:, -1]
    threshold = 0.5 if result.operating_threshold is None else result.operating_threshold
    labels = np.asarray(result.labels, dtype=np.float64).reshape(-1)
    return fit_reference(scores, labels, threshold=threshold, features=result.features).to_dict()


#: Why a version gets no estimate, by what it is.
NOT_BINARY = "estimates are made for binary classifiers and regressions only"
NO_MAP = (
    "no score map or error model was frozen with this version (registered before "
    "estimates were): the next `mooring run` registers versions with one"
)


def version_estimate(
    version: ModelVersion,
    task: str,
    logged: pa.Table,
    reference: EstimationReference | LossReference | None = None,
    drifted: Mapping[str, float] | None = None,
) -> Estimate:
    """The estimate of ``version`` on its ``logged`` rows in a window (the log's input
    and ``output.*`` columns), from ``reference`` or else what its references froze: a
    binary classifier's score map, a regression's small model of its error. A binary
    classifier's checks read the logged inputs, and ``drifted`` when the caller has it
    (drifted columns and the share of the attributions each carries)."""
    from mooring.formats._predictions import OUTPUT_PREFIX, output_column
    from mooring.formats._version_record import References
    from mooring.monitoring._estimate_loss import LossReference, estimate_loss

    rows = logged.num_rows
    if task not in ("binary", "regression"):
        return Estimate(rows, {}, NOT_BINARY)
    frozen: EstimationReference | LossReference | None = reference
    if frozen is None:
        stored = (version.record.run.references or References()).estimation
        frozen = (EstimationReference if task == "binary" else LossReference).read(stored)
    if frozen is None:
        return Estimate(rows, {}, NO_MAP)
    column = output_column("probabilities" if task == "binary" else "value")
    if rows == 0 or column not in logged.column_names:
        return Estimate(rows, {}, NO_ROWS)
    # One value per row: a binary's positive probability, a regression's value (a
    # ``[N, 1]`` output's inner list read as its one value).
    values = np.array(
        [v[-1] if isinstance(v, list) else v for v in logged[column].to_pylist()],
        dtype=np.float64,
    )
    inputs = logged.select([c for c in logged.column_names if not c.startswith(OUTPUT_PREFIX)])
    if isinstance(frozen, EstimationReference):
        return estimate(frozen, values, inputs=inputs, drifted=drifted)
    return estimate_loss(frozen, inputs, values)


#: The band of a rollout's estimates is widened from 95% to this coverage's z (99%): the
#: comparison is looked at on every monitor tick.
_ROLLOUT_Z = 2.576 / 1.96


def _read_frozen(task: str, data: object) -> EstimationReference | LossReference | None:
    """A stored reference of ``task``'s kind: a score map, or a regression's error model."""
    from mooring.monitoring._estimate_loss import LossReference

    return (LossReference if task == "regression" else EstimationReference).read(data)


def production_reference(
    canary: ModelVersion, production: ModelVersion | None, task: str = "binary"
) -> tuple[EstimationReference | LossReference | None, str]:
    """Production's score map (a regression's error model) on the canary's evaluation
    data, and where it comes from.

    The run that registered the canary evaluated production on the same rows and froze
    its map beside the canary's; otherwise production's own map serves when it was fitted
    on the same data (the same sha256). Maps fitted on different data are not compared:
    one version's data may be older than the traffic.
    """
    from mooring.formats._version_record import References

    if production is None:
        return None, "no production version"
    refs = canary.record.run.references or References()
    stored = (refs.estimation or {}).get("production")
    if isinstance(stored, Mapping) and stored.get("version") == production.version:
        reference = _read_frozen(task, stored)
        if reference is not None:
            return reference, f"{production.ref} on {canary.ref}'s evaluation data"
    own = production.record.run.references or References()
    same = refs.evaluation_fingerprint is not None and (
        refs.evaluation_fingerprint == own.evaluation_fingerprint
    )
    if same:
        reference = _read_frozen(task, own.estimation)
        if reference is not None:
            return reference, f"{production.ref}'s own evaluation (the same data)"
    return None, (
        f"no score map of {production.ref} on {canary.ref}'s evaluation data (the run that "
        "registered the canary did not evaluate production)"
    )


def not_estimated(why: str) -> str:
    """Why a version has no estimate, said once ("not estimable: …" already says it).

    >>> not_estimated("the window has no scored rows")
    'not estimated: the window has no scored rows'
    >>> not_estimated("not estimable: too few held-out rows")
    'not estimable: too few held-out rows'
    """
    return why if why.startswith("not estimable") else f"not estimated: {why}"


def estimated_guardrail(
    canary_log: pa.Table | None,
    production_log: pa.Table | None,
    canary: ModelVersion,
    production: ModelVersion | None,
    rules: GuardrailsConfig,
    task: str = "binary",
) -> GuardrailResult:
    """``estimated``: the canary against production on the same traffic, by the
    ``live_metric`` each is estimated to reach from its logged rows, before labels (a
    binary classifier's from its scores, a regression's MAE or RMSE from its error model).

    It fails when the canary is shown worse than production by more than
    ``estimated_drop`` (the band of how much worse, at 99%, wholly beyond it) and passes
    once shown no worse than that; in between it is undecided without holding the step.
    Worse is lower for a metric where higher is better (``HIGHER_IS_BETTER``: AUC,
    accuracy), by the difference; higher for an error (MAE, RMSE), by the increase
    relative to production's (0.02: 2% more error), as errors are in the target's units.
    The ``interval`` is the canary's difference from production: absolute (positive is
    better) for a score, relative (positive is worse) for an error. Plentiful labels
    override it (the live metric judges quality itself). An estimate whose assumption
    does not hold on its window (``Estimate.unreliable``) judges nothing: the guardrail
    is ``unavailable`` and says why (:func:`compare_estimates`).

    >>> rules = GuardrailsConfig(live_metric="mae")  # doctest: +SKIP
    >>> estimated_guardrail(canary_log, production_log, canary, production, rules,
    ...     task="regression").status  # doctest: +SKIP
    'breach'
    """
    from mooring.monitoring._guardrails import GuardrailResult

    name = "estimated"
    drop = rules.estimated_drop
    if drop is None:
        return GuardrailResult(name, "off", "estimated-quality guardrail is off")
    metric = rules.live_metric
    estimated = {"binary": METRICS, "regression": LOSS_METRICS}.get(task, ())
    if metric not in estimated:
        listed = ", ".join(estimated) or f"none for a {task} model"
        return GuardrailResult(
            name, "unavailable", f"{metric} is not estimated without labels ({listed})"
        )
    own_ref = _read_frozen(
        task, (canary.record.run.references and canary.record.run.references.estimation) or None
    )
    if own_ref is None:
        return GuardrailResult(name, "unavailable", f"{canary.ref}: {NO_MAP}")
    other_ref, source = production_reference(canary, production, task)
    if other_ref is None:
        return GuardrailResult(name, "unavailable", source + "; labels decide")
    if canary_log is None or production_log is None:
        return GuardrailResult(name, "insufficient_data", "no logged rows yet", advisory=True)
    rows = {"canary_rows": canary_log.num_rows, "production_rows": production_log.num_rows}
    if min(rows.values()) < rules.min_prediction_rows:
        return GuardrailResult(
            name,
            "insufficient_data",
            f"{min(rows.values())} logged rows of a version; estimates compared from "
            f"{rules.min_prediction_rows}",
            numbers=rows,
            advisory=True,
        )
    assert production is not None  # a reference was found for it
    refused = own_ref.refused or other_ref.refused
    if refused is not None:
        return GuardrailResult(name, "unavailable", not_estimated(refused), numbers=rows)
    return compare_estimates(
        version_estimate(canary, task, canary_log, own_ref),
        version_estimate(production, task, production_log, other_ref),
        metric,
        drop,
        numbers={**rows, "production_map": source},
        names=(canary.ref, production.ref),
    )


def compare_estimates(
    mine: Estimate,
    theirs: Estimate,
    metric: str,
    drop: float,
    *,
    numbers: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("the canary", "production"),
) -> GuardrailResult:
    """The ``estimated`` guardrail's verdict on the canary's estimate (``mine``) against
    production's (``theirs``) on the same traffic: :func:`estimated_guardrail` once both
    are estimated.

    An estimate whose assumption does not hold on its window (``unreliable``) is no
    evidence either way: the guardrail is ``unavailable``, says "unreliable: <why>" and
    no headline number, so it can neither promote the canary nor roll it back; the
    numbers keep both estimates, each marked with its ``unreliable`` reason.

    >>> good = Estimate(3000, {"auc": EstimatedMetric(0.90, 0.89, 0.91)})
    >>> moved = Estimate(3000, {"auc": EstimatedMetric(0.99, 0.98, 1.0)},
    ...     unreliable="scores moved beyond their natural variation")
    >>> result = compare_estimates(moved, good, "auc", 0.02)
    >>> result.status, result.message.split(";")[0]
    ('unavailable', 'unreliable: the canary: scores moved beyond their natural variation')
    """
    from mooring.evaluation._metrics import HIGHER_IS_BETTER
    from mooring.monitoring._guardrails import GuardrailResult

    name = "estimated"
    found: dict[str, Any] = dict(numbers or {})
    rows = {k: found[k] for k in ("canary_rows", "production_rows") if k in found}
    a, b = mine.metrics.get(metric), theirs.metrics.get(metric)
    if a is None or b is None:
        why_not = mine.refused or theirs.refused or f"{metric} is undefined on these rows"
        return GuardrailResult(name, "unavailable", not_estimated(why_not), numbers=rows)
    found["metric"] = metric
    found["canary"] = {**a.to_dict(), "unreliable": mine.unreliable}
    found["production"] = {**b.to_dict(), "unreliable": theirs.unreliable}
    why = [
        f"{n}: {e.unreliable}" for n, e in zip(names, (mine, theirs), strict=True) if e.unreliable
    ]
    if why:
        said = (
            f"unreliable: {'; '.join(why)}; the estimates are not compared (neither passes nor "
            "fails: the other guardrails and labels decide)"
        )
        return GuardrailResult(name, "unavailable", said, numbers=found)
    half = _ROLLOUT_Z * float(np.hypot((a.high - a.low) / 2, (b.high - b.low) / 2))
    if HIGHER_IS_BETTER.get(metric, True):
        diff = a.value - b.value
        how = f"difference {diff:+.4f} ± {half:.4f}, margin {drop:g}"
        interval = (diff - half, diff + half)
    elif b.value <= 0:
        why_not = f"production's estimated {metric} is {b.value:g}, no increase is relative to it"
        return GuardrailResult(name, "unavailable", f"not compared: {why_not}", numbers=rows)
    else:
        # An error: worse is higher, relative to production's. ``diff`` is kept as "better
        # is positive" so that the tests below read the same for both directions.
        increase, half = (a.value - b.value) / b.value, half / b.value
        how = f"{increase:+.1%} ± {half:.1%} of production's, margin {drop:.1%}"
        interval = (increase - half, increase + half)
        diff = -increase
        found["relative"] = True
    said = (
        f"estimated {metric} {a.value:.4f} against production's {b.value:.4f} on the "
        f"same traffic ({how})"
    )
    if diff + half < -drop:
        status: Status = "breach"
    elif diff - half >= -drop:
        status = "ok"
    else:
        return GuardrailResult(
            name,
            "insufficient_data",
            said,
            value=-diff,
            threshold=drop,
            numbers=found,
            interval=interval,
            advisory=True,
        )
    return GuardrailResult(
        name, status, said, value=-diff, threshold=drop, numbers=found, interval=interval
    )


def output_columns(table: pa.Table) -> pa.Table:
    """The log's ``output.*`` columns of ``table``."""
    from mooring.formats._predictions import OUTPUT_PREFIX

    return table.select([c for c in table.column_names if c.startswith(OUTPUT_PREFIX)])


def estimate_line(found: Mapping[str, Any]) -> str:
    """One line for people of the monitor's estimate of production on its last window
    (``Monitor._estimated``'s record, as ``mooring monitor``, ``mooring status`` and the
    dashboard show it), always beside the evaluation value it is read against.

    An estimate whose assumption does not hold on the window (``unreliable``) shows
    "unreliable: <why>" and no number: the record keeps it, marked.

    >>> line = estimate_line({"version": 3, "rows": 1800, "metric": "auc", "evaluation": 0.83,
    ...     "estimate": {"value": 0.65, "low": 0.62, "high": 0.68}, "worse_windows": 2})
    >>> print(*line.split("; "), sep=chr(10))
    v3 estimated auc 0.6500 (0.6200–0.6800) · evaluation 0.8300, over 1,800 rows before labels
    worse than it 2 window(s) in a row
    >>> print(estimate_line({"version": 3, "rows": 1800, "metric": "auc", "evaluation": 0.83,
    ...     "estimate": {"value": 0.99, "low": 0.98, "high": 1.0},
    ...     "unreliable": "scores moved beyond their natural variation"}).split(" · ")[0])
    v3 estimated auc unreliable: scores moved beyond their natural variation
    """
    version, metric = found.get("version"), found.get("metric")
    guess = found.get("estimate")
    if not isinstance(guess, Mapping):
        why = found.get("refused") or f"{metric} is undefined on these rows"
        return f"v{version} {not_estimated(why)}"
    unreliable = found.get("unreliable")
    shown = (
        f"unreliable: {unreliable}"
        if unreliable
        else f"{guess['value']:.4f} ({guess['low']:.4f}–{guess['high']:.4f})"
    )
    reference = found.get("evaluation")
    against = (
        f"evaluation {reference:.4f}"
        if isinstance(reference, int | float)
        else "no evaluation value recorded"
    )
    line = (
        f"v{version} estimated {metric} {shown} · {against}, over {found.get('rows', 0):,} rows "
        "before labels"
    )
    below = found.get("worse_windows") or 0
    if below and not unreliable:
        line += f"; worse than it {below} window(s) in a row"
    return line
