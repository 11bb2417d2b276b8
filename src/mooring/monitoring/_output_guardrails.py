"""The guardrails on a canary's outputs: is it behaving as it did when it was validated?

A model retrained on a new regime *must* answer differently from the stale production
model, so "different from production" cannot mean "broken". Without labels the canary
is judged against references frozen with it at registration
(:mod:`mooring.monitoring._baselines`):

* ``broken``: outputs that are NaN, or one constant value while the inputs vary. Always
  decisive, whatever labels say.
* ``outputs``: the Jensen–Shannon distance between the canary's live outputs and **its
  own** outputs on its evaluation data (``prediction_js``). Traffic unlike the data it
  was validated on, or a model serving differently from how it was evaluated, shows here.
  Which of the two it is, production tells: when production's own live outputs moved
  from *its* evaluation outputs beyond natural variation (:func:`production_move`), the
  evaluation data no longer looks like the traffic, and a canary unlike its own
  evaluation passes (same threshold) when either

  - it answers like production on the same traffic (canary vs production), or
  - it **moved like production** (:func:`move_shape`): each live output is placed in its
    own version's evaluation-time outputs (its quantile position, the mid-rank of the
    value in that version's evaluation distribution), and the canary's positions are
    compared with production's. Positions are free of either model's scale, so a retrain
    that fixes a concept shift may answer unlike production and still pass: on traffic
    that moved, both versions' answers moved to the same places in their own evaluation
    distributions, and the move is the traffic's, not the canary's. A canary served
    unlike its evaluation (skewed inputs, preprocessing) moves where production did not,
    and one that turned its answers around moves the other way: both still fail.

  Comparing the two moves' sizes (two Jensen–Shannon distances) would not do: a canary
  moving as far as production in the opposite direction would pass. Positions need a
  numeric output (a score or value); a model logging classes alone is judged on
  canary vs production only. Neither holds for a retrain whose answers respond to the
  moved inputs unlike production's (its weights on them changed): no reference without
  labels tells that from skew, so it fails here, and the message says that plentiful
  labels (the live metric) or an evaluation file from the recent traffic decide it.
* ``validated``: its evaluation metric (``live_metric``) against production's measured on
  the same evaluation data: both versions' own evaluations when their data had the same
  sha256, or production's evaluation in the run that registered the canary (``mooring
  run`` evaluates production on the candidate's data). Without either the numbers are
  not comparable, and the canary is only required to beat chance (AUC above 0.5 by
  ``live_metric_drop``). A model trained on shuffled or inverted labels fails here.
* ``divergence``: canary vs production outputs, **reported** in every decision; it
  decides only when ``divergence_js`` is set.

When labels are plentiful, the live-metric guardrail overrides ``outputs``,
``validated`` and ``divergence`` (see :mod:`mooring.monitoring._rollout`).

Examples:
    >>> results = output_guardrails(canary_log, production_log, reference=ref,
    ...     reference_source="v3 on eval.csv", canary_eval=c, production_eval=p,
    ...     rules=GuardrailsConfig())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mooring.config import MooringConfig
from mooring.config._monitoring import GuardrailsConfig
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.errors import MooringError, NotFoundError
from mooring.formats._predictions import LOG_COLUMNS, OUTPUT_PREFIX, output_table
from mooring.monitoring._baselines import reference_data_label
from mooring.monitoring._estimate import estimated_guardrail
from mooring.monitoring._guardrails import GuardrailResult, Status
from mooring.monitoring._noise import binned_noise

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence
    from mooring.registry import ModelVersion, Registry

__all__ = [
    "LABELS_DECIDE",
    "NATURAL_SHARE",
    "OUTPUTS",
    "OutputEvidence",
    "OutputsGuardrail",
    "ProductionMove",
    "move_shape",
    "output_guardrails",
    "production_move",
    "read_outputs",
    "statistics_distance",
]

#: Guardrails that plentiful labels override (they judge outputs, labels judge quality).
LABELS_DECIDE = frozenset({"outputs", "validated", "divergence", "estimated"})
#: An evaluation metric's chance level, where one is known.
_CHANCE = {"auc": 0.5, "roc_auc": 0.5}


#: Logged rows per version the output checks read at most (the newest).
ROWS_CAP = 50_000


@dataclass(frozen=True, slots=True)
class OutputEvidence:
    """What the output checks judge at a tick, read before: both versions' logged rows
    since the rollout started (None: not readable, ``unreadable`` says why, or no log),
    their evaluation-time outputs and metrics, production's recent rows, and the
    ``estimated`` guardrail (judged as it is read: it needs the versions' records)."""

    canary: pa.Table | None
    production: pa.Table | None
    reference: DatasetStatistics | None
    reference_source: str
    canary_eval: Mapping[str, Any]
    production_eval: Mapping[str, Any] | None
    estimated: GuardrailResult
    unreadable: str | None = None
    production_reference: DatasetStatistics | None = None
    production_reference_source: str = "production's evaluation-time outputs are not known"
    production_recent: pa.Table | None = None


def read_outputs(
    cfg: MooringConfig,
    registry: Registry,
    log_url: str,
    canary: int,
    production: int | None,
    since: datetime,
    rules: GuardrailsConfig,
) -> OutputEvidence:
    """Read both versions' logged rows since ``since`` and their references.

    The references are each version's evaluation-time outputs (the canary's, and
    production's to tell whether the traffic moved away from evaluation data).
    """
    from mooring.formats._predictions import read_prediction_log
    from mooring.monitoring._baselines import evaluation_reference, prediction_baseline

    name = cfg.project.name
    canary_mv = registry.get(name, version=canary)
    production_mv = None if production is None else registry.get(name, version=production)
    try:
        reference, source = prediction_baseline(cfg, registry, canary_mv)
    except MooringError as exc:
        reference, source = None, f"no evaluation-time outputs for {canary_mv.ref}: {exc}"
    p_reference: DatasetStatistics | None = None
    p_source = "no production version"
    if production_mv is not None:
        try:
            p_reference, p_source = prediction_baseline(cfg, registry, production_mv)
        except MooringError as exc:
            p_source = f"no evaluation-time outputs for {production_mv.ref}: {exc}"
    logs: list[pa.Table] = []
    why = None
    try:
        for version in (canary, production):
            logs.append(
                read_prediction_log(log_url, name, version=version, since=since, last=ROWS_CAP)
            )
    except NotFoundError:
        logs = []
    except MooringError as exc:
        logs, why = [], f"prediction log: {exc}"
    except (OSError, pa.ArrowException) as exc:
        # The server writes log files in place: one may still be half-written. Next tick.
        logs, why = [], f"prediction log not readable yet: {exc}"
    # Whether the traffic moved away from production's evaluation data is a question about
    # its recent traffic, before this rollout too.
    recent = None
    if production is not None:
        try:
            recent = read_prediction_log(log_url, name, version=production, last=ROWS_CAP)
        except (MooringError, OSError, pa.ArrowException):
            recent = None
    c_log, p_log = (logs[0], logs[1]) if logs else (None, None)
    return OutputEvidence(
        canary=c_log,
        production=p_log,
        reference=reference,
        reference_source=source,
        canary_eval=evaluation_reference(canary_mv),
        production_eval=None if production_mv is None else evaluation_reference(production_mv),
        estimated=estimated_guardrail(
            c_log, p_log, canary_mv, production_mv, rules, task=_task(canary_mv)
        ),
        unreadable=why,
        production_reference=p_reference,
        production_reference_source=p_source,
        production_recent=recent,
    )


@dataclass(frozen=True, slots=True)
class OutputsGuardrail:
    """The output checks on a tick's evidence: :func:`output_guardrails` on the rows read,
    then the ``estimated`` metric; nothing without output evidence (the simulation's
    rollouts log no rows)."""

    name: str = "outputs"

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """``broken``, ``outputs``, ``validated``, ``divergence`` and ``estimated``."""
        seen = evidence.outputs
        if seen is None:
            return ()
        judged = output_guardrails(
            seen.canary,
            seen.production,
            reference=seen.reference,
            reference_source=seen.reference_source,
            canary_eval=seen.canary_eval,
            production_eval=seen.production_eval,
            rules=rules,
            unreadable=seen.unreadable,
            production_reference=seen.production_reference,
            production_reference_source=seen.production_reference_source,
            production_recent=seen.production_recent,
        )
        return (*judged, seen.estimated)


OUTPUTS = OutputsGuardrail()


def _task(version: ModelVersion) -> str:
    """The version's task as registered (binary when its record does not say)."""
    return version.record.run.task or "binary"


def output_guardrails(  # noqa: PLR0913 - keyword-only evidence of one tick, each named
    canary: pa.Table | None,
    production: pa.Table | None,
    *,
    reference: DatasetStatistics | None,
    reference_source: str,
    canary_eval: Mapping[str, Any],
    production_eval: Mapping[str, Any] | None,
    rules: GuardrailsConfig,
    unreadable: str | None = None,
    production_reference: DatasetStatistics | None = None,
    production_reference_source: str = "production's evaluation-time outputs are not known",
    production_recent: pa.Table | None = None,
) -> list[GuardrailResult]:
    """``broken``, ``outputs``, ``validated`` and ``divergence`` for one tick.

    Args:
        canary / production: each version's logged rows since the rollout started
            (``None`` when the log could not be read: ``unreadable`` says why).
        reference: the canary's outputs on its evaluation data (None: not frozen);
            ``reference_source`` says where they come from.
        canary_eval / production_eval: :func:`~mooring.monitoring._baselines.evaluation_reference`.
        production_reference: production's outputs on *its* evaluation data
            (:func:`~mooring.monitoring._baselines.prediction_baseline`); when its live
            outputs moved from them past natural variation (:func:`production_move`), a
            canary unlike its own evaluation passes when it answers like production on
            the same traffic or moved like production (:func:`move_shape`). None:
            ``production_reference_source`` says why.
        production_recent: production's newest logged rows, from before the rollout too:
            what tells whether its outputs moved (default: ``production``).
    """
    validated = _validated(canary_eval, production_eval, rules)
    recent = production_recent if production_recent is not None else production
    p_recent = output_table(recent) if recent is not None and _has_outputs(recent) else None
    moved = production_move(p_recent, production_reference, production_reference_source, rules)
    if canary is None or production is None:
        # No log at all (sampling off): nothing to wait for. A log being written: next tick.
        status: Status = "insufficient_data" if unreadable else "unavailable"
        why = unreadable or "no prediction log (is [serving] log_sample_rate above 0?)"
        waiting = [GuardrailResult("broken", status, why)]
        if rules.prediction_js is not None:
            waiting.append(GuardrailResult("outputs", status, why))
        if rules.divergence_js is None:
            status = "unavailable"
        no_outputs = GuardrailResult("outputs", "insufficient_data", why)
        validated = _on_stale_data(validated, no_outputs, moved)
        return [*waiting, validated, GuardrailResult("divergence", status, why)]
    rows = {"canary_rows": canary.num_rows, "production_rows": production.num_rows}
    c_out = output_table(canary) if _has_outputs(canary) else None
    p_out = output_table(production) if _has_outputs(production) else None
    broken = _broken(canary, c_out, rules, rows)
    versus = _versus(p_out, c_out, rules)
    shape = (
        move_shape(c_out, reference, p_out, production_reference, rules)
        if isinstance(moved, ProductionMove) and moved.moved
        else None
    )
    own = _own(
        c_out, reference, reference_source, rules, rows, moved=moved, versus=versus, shape=shape
    )
    validated = _on_stale_data(validated, own, moved)
    return [broken, own, validated, _divergence(versus, rules, rows)]


#: The ``outputs`` references that say the canary's evaluation data is older than the
#: traffic: it was unlike its own evaluation, and production's outputs moved too.
_TRAFFIC_MOVED = ("production on the same traffic", "production's move on the same traffic")


def _on_stale_data(
    validated: GuardrailResult, own: GuardrailResult, moved: ProductionMove | str
) -> GuardrailResult:
    """A ``validated`` failure on evaluation data the traffic has moved away from.

    Offline, the canary was compared with production on its evaluation data; a model
    retrained on a moved population may well score worse there, on the population it
    replaced. When production's own outputs moved from its evaluation (the traffic is not
    that data any more), the failure waits for the canary's logged outputs: if it moved
    with the traffic (``outputs`` passes on production's reference), the comparison
    describes older traffic and does not decide (labels do); if it behaves as its own
    evaluation said, the comparison stands. Below chance always stands.
    """
    if validated.status != "breach" or "production" not in validated.numbers:
        return validated
    if not isinstance(moved, ProductionMove) or not moved.moved:
        return validated
    stale = f"; the traffic moved away from the evaluation data ({moved.sentence()})"
    if own.status == "insufficient_data":
        return replace(
            validated,
            status="insufficient_data",
            message=validated.message + stale + ": waiting for the canary's logged outputs to "
            "tell whether it moved with the traffic (then this comparison describes older "
            "traffic) or not (then it stands)",
            needed=own.needed or "logged canary outputs",
        )
    if own.status == "ok" and own.numbers.get("reference_used") in _TRAFFIC_MOVED:
        return replace(
            validated,
            status="unavailable",
            message=validated.message + stale + " and the canary's outputs moved with it "
            f"({own.numbers['reference_used']}): the comparison describes older traffic, so "
            "it does not decide; labels (the live metric) do, or evaluate the next candidate "
            "on recent data",
            numbers={**validated.numbers, "stale_data": True},
        )
    if own.status == "breach" and own.numbers.get("traffic_moved"):
        # Its outputs moved unlike production's: a retrain or a broken canary, which labels
        # tell apart (they wait for them when they arrive: see labels_decide).
        return replace(
            validated,
            message=validated.message + stale + ", and the canary's outputs moved unlike "
            "production's: labels tell whether this comparison still holds",
            numbers={**validated.numbers, "traffic_moved": True},
        )
    return validated


def _has_outputs(table: pa.Table) -> bool:
    return any(c.startswith(OUTPUT_PREFIX) for c in table.column_names)


def _broken(
    canary: pa.Table, outputs: pa.Table | None, rules: GuardrailsConfig, rows: dict[str, int]
) -> GuardrailResult:
    if outputs is None or outputs.num_rows == 0:
        return GuardrailResult(
            "broken", "insufficient_data", "no logged canary outputs", numbers=rows
        )
    for name in ("output.score", "output.value"):
        if name not in outputs.column_names:
            continue
        values = np.asarray(
            pc.cast(outputs[name], pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        bad = int(np.sum(~np.isfinite(values)))
        if bad:
            return GuardrailResult(
                "broken",
                "breach",
                f"{bad} of {values.size} logged canary outputs ({name}) are NaN or infinite",
                value=bad / values.size,
                numbers=rows,
            )
        if values.size >= rules.min_prediction_rows and _inputs_vary(canary):
            spread = float(values.max() - values.min())
            if spread <= 1e-9:
                return GuardrailResult(
                    "broken",
                    "breach",
                    f"the canary answers {name} = {values[0]:.6g} for all {values.size} logged "
                    "requests although their inputs differ: a constant model",
                    value=spread,
                    numbers=rows,
                )
    if outputs.num_rows < rules.min_prediction_rows:
        return GuardrailResult(
            "broken",
            "insufficient_data",
            f"{outputs.num_rows} logged canary outputs; a constant answer is judged from "
            f"{rules.min_prediction_rows}",
            numbers=rows,
        )
    return GuardrailResult("broken", "ok", "outputs finite and varying", numbers=rows)


def _inputs_vary(table: pa.Table) -> bool:
    """Whether two logged rows differ in an input, whatever the columns' types."""
    # The log's own columns (ids, time, version, the client's id) are not inputs.
    features = [
        c for c in table.column_names if not c.startswith(OUTPUT_PREFIX) and c not in LOG_COLUMNS
    ]
    return any(_varies(table[c]) for c in features)


def _varies(column: pa.ChunkedArray) -> bool:
    """More than one value in ``column`` (a missing value counts as one).

    The log reads text dictionary-encoded, and may hold any type a client sent: counted
    on the decoded values where Arrow has a kernel, value by value where it has none
    (lists, structs).

    >>> _varies(pa.chunked_array([pa.array(["a", "a"]).dictionary_encode()]))
    False
    >>> _varies(pa.chunked_array([pa.array([[1, 2], [1, 3]])]))
    True
    """
    if len(column) < 2 or pa.types.is_null(column.type):
        return False
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    try:
        return bool(pc.count_distinct(column, mode="all").as_py() > 1)
    except pa.ArrowNotImplementedError:
        values = iter(column.to_pylist())
        first = repr(next(values))
        return any(repr(value) != first for value in values)


def _own(
    outputs: pa.Table | None,
    reference: DatasetStatistics | None,
    source: str,
    rules: GuardrailsConfig,
    rows: dict[str, int],
    *,
    moved: ProductionMove | str,
    versus: dict[str, float] | None,
    shape: dict[str, float] | None = None,
) -> GuardrailResult:
    """``outputs``: the canary against its own evaluation; when production's own outputs
    show the traffic moved from evaluation, against production on the same traffic or
    production's own move (``shape``: :func:`move_shape`)."""
    if rules.prediction_js is None:
        return GuardrailResult("outputs", "off", "output guardrail is off")
    limit = rules.prediction_js
    n = 0 if outputs is None else outputs.num_rows
    if outputs is None or n < rules.min_prediction_rows:
        return GuardrailResult(
            "outputs",
            "insufficient_data",
            f"{n} logged canary outputs; compared with its evaluation from "
            f"{rules.min_prediction_rows}",
            numbers=rows,
        )
    numbers: dict[str, Any] = {**rows, "reference": source}
    if isinstance(moved, ProductionMove):
        numbers.update(production_moved=moved.distances, production_natural_variation=moved.natural)
    if versus:
        numbers["canary_vs_production"] = versus
    if shape:
        numbers["move_unlike_production"] = shape
    distances: dict[str, float] = {}
    if reference is not None:
        shared = [c for c in outputs.column_names if c in reference.columns]
        distances = statistics_distance(reference, compute_statistics(outputs.select(shared)))
        numbers["jensen_shannon"] = distances
    own_summary, worst = "", None
    if distances:
        column, worst = max(distances.items(), key=lambda item: item[1])
        own_summary = (
            f"{column} Jensen-Shannon distance of the canary's live outputs from its own "
            f"evaluation-time outputs {worst:.3f} ({n} rows; reference: {source})"
        )
        if worst <= limit:
            numbers["reference_used"] = "own evaluation"
            return GuardrailResult("outputs", "ok", own_summary, value=worst, numbers=numbers)
    if isinstance(moved, ProductionMove) and moved.moved and (versus or shape):
        # The traffic moved away from evaluation: production on it is the reference.
        return _against_production(moved, versus, shape, worst, rows, limit, numbers)
    if isinstance(moved, ProductionMove) and moved.moved and versus is None and worst is not None:
        # Production on the same traffic is the reference, once it has logged as much as
        # the canary needed: which of the two crosses the count first is chance.
        return GuardrailResult(
            "outputs",
            "insufficient_data",
            f"{own_summary} > {limit:g}, but {moved.sentence()}: production on the same "
            f"traffic decides, from {rules.min_prediction_rows} of its outputs logged since "
            f"the rollout started ({rows['production_rows']} so far)",
            numbers=numbers,
        )
    if worst is None:
        what = (
            f"{source}; the canary's outputs cannot be compared with its own evaluation"
            if reference is None
            else "no output comparable with the reference"
        )
        return GuardrailResult("outputs", "unavailable", what, numbers=numbers)
    numbers["reference_used"] = "own evaluation"
    if isinstance(moved, ProductionMove):
        if moved.moved:  # no output the two versions share
            advice = (
                f"{moved.sentence()}, but the canary's and production's outputs share no "
                "column to compare on the same traffic"
            )
        else:
            advice = (
                f"production's own outputs moved only {moved.distance:.3f} from its evaluation "
                f"outputs (natural variation {moved.threshold:.3f}), so the traffic still looks "
                "like production's evaluation data: check how the canary is served (its "
                "inputs, its preprocessing); if its [data] eval differs from the traffic, point "
                "[data] eval at recent labelled data and re-run `mooring run`"
            )
    else:
        advice = (
            f"whether the traffic moved cannot be told ({moved}); if [data] eval predates the "
            "traffic, point it at recent labelled data and re-run `mooring run`"
        )
    return GuardrailResult(
        "outputs",
        "breach",
        f"{own_summary} > {limit:g}: it does not behave as it did when validated; {advice}",
        value=worst,
        threshold=limit,
        numbers=numbers,
    )


def _against_production(
    moved: ProductionMove,
    versus: dict[str, float] | None,
    shape: dict[str, float] | None,
    worst: float | None,
    rows: dict[str, int],
    limit: float,
    numbers: dict[str, Any],
) -> GuardrailResult:
    """``outputs`` once the traffic moved: like production on the same traffic, or moved
    like production from evaluation (``worst``: the canary from its own evaluation)."""
    why = (
        f"reference: production's outputs on the same traffic, because {moved.sentence()}: "
        "the evaluation data no longer looks like the traffic"
    )
    own_note = (
        "no own reference" if worst is None else f"{worst:.3f} from its own evaluation-time outputs"
    )
    refresh = (
        "point [data] eval at recent labelled data and re-run `mooring run` to judge the "
        "next candidate on its own evaluation again"
    )
    gap = max(versus.values()) if versus else None
    summary = ""
    if versus:
        column = max(versus, key=lambda c: versus[c])
        summary = (
            f"{column} Jensen-Shannon distance canary vs production on the same traffic "
            f"{versus[column]:.3f} ({rows['canary_rows']} vs {rows['production_rows']} "
            f"rows; {own_note})"
        )
        if versus[column] <= limit:
            numbers["reference_used"] = "production on the same traffic"
            return GuardrailResult(
                "outputs",
                "ok",
                f"{summary} <= {limit:g}; {why}; {refresh}",
                value=gap,
                threshold=limit,
                numbers=numbers,
            )
    unlike = max(shape.values()) if shape else None
    moved_note = ""
    if shape:
        column = max(shape, key=lambda c: shape[c])
        moved_note = (
            f"{column} Jensen-Shannon distance between where the canary's live outputs "
            "sit in its own evaluation-time outputs and where production's sit in its own "
            f"(quantile positions) {shape[column]:.3f}"
        )
        if shape[column] <= limit:
            numbers["reference_used"] = "production's move on the same traffic"
            answers = (
                f"; it answers the traffic unlike production ({summary} > {limit:g}), as "
                "a model retrained on changed data may: labels (the live metric) tell "
                "which answers better"
                if summary
                else f" ({rows['canary_rows']} rows; {own_note})"
            )
            return GuardrailResult(
                "outputs",
                "ok",
                f"{moved_note} <= {limit:g}: it moved like production, so the traffic "
                f"moved, not the canary{answers}; {why}; {refresh}",
                value=unlike,
                threshold=limit,
                numbers=numbers,
            )
    numbers["reference_used"] = "production on the same traffic"
    # The traffic moved and the canary moved unlike production: a retrain responding to
    # the moved inputs differently, or a canary served unlike its evaluation. Labels tell
    # the two apart (see labels_decide).
    numbers["traffic_moved"] = True
    parts = (
        [f"{summary} > {limit:g}: it answers the traffic unlike production"] if (summary) else []
    )
    if moved_note:
        parts.append(
            f"{moved_note} > {limit:g}: its outputs moved unlike production's, so the "
            "traffic does not explain them"
        )
    value = gap if gap is not None else unlike
    return GuardrailResult(
        "outputs",
        "breach",
        f"{'; and '.join(parts)}; {why}; check how the canary is served (its inputs, "
        "its preprocessing); a retrain whose answers respond to the moved inputs unlike "
        "production's is told from a broken one only by labels (the live metric decides "
        "once they are plentiful) or by an evaluation on recent data: point [data] eval "
        "at recent labelled data and re-run `mooring run`",
        value=value,
        threshold=limit,
        numbers=numbers,
    )


#: Share of ``prediction_js`` that production's own outputs may move from its evaluation
#: outputs and still count as natural variation (sampling noise may allow more).
NATURAL_SHARE = 0.25


@dataclass(frozen=True)
class ProductionMove:
    """How far production's live outputs are from its own evaluation-time outputs, per
    output column, beside each column's natural variation (:func:`production_move`).

    >>> m = ProductionMove({"output.score": 0.379}, {"output.score": 0.05}, "output.score")
    >>> m.moved, m.sentence()[-25:]
    (True, '(natural variation 0.050)')
    """

    distances: dict[str, float]  # output column → Jensen-Shannon distance
    natural: dict[str, float]  # output column → its natural variation
    column: str  # the column reported (the one past its natural variation most)

    @property
    def distance(self) -> float:
        return self.distances[self.column]

    @property
    def threshold(self) -> float:
        return self.natural[self.column]

    @property
    def moved(self) -> bool:
        return self.distance > self.threshold

    def sentence(self) -> str:
        return (
            f"production's own outputs moved {self.distance:.3f} from its evaluation outputs "
            f"(natural variation {self.threshold:.3f})"
        )


def production_move(
    production: pa.Table | None,
    reference: DatasetStatistics | None,
    source: str,
    rules: GuardrailsConfig,
) -> ProductionMove | str:
    """How far production's live outputs moved from its own evaluation-time outputs, or why
    that cannot be told.

    Natural variation per output is the larger of ``NATURAL_SHARE`` × ``prediction_js``
    and the Jensen–Shannon distance sampling alone reaches at these row counts (its
    ``1 - alpha`` quantile, :func:`~mooring.monitoring._noise.binned_noise`). Moving past
    it means the traffic no longer looks like production's evaluation data.
    """
    if reference is None:
        return source
    n = 0 if production is None else production.num_rows
    if production is None or n < rules.min_prediction_rows:
        return f"{n} logged production outputs; compared from {rules.min_prediction_rows}"
    share = NATURAL_SHARE * (rules.prediction_js or 0.0)
    distances: dict[str, float] = {}
    natural: dict[str, float] = {}
    current = compute_statistics(
        production.select([c for c in production.column_names if c in reference.columns])
    )
    for name, (distance, shares, rows, reference_rows) in _compared(reference, current).items():
        noise = binned_noise(shares, rows, reference_rows, 1.0 - rules.alpha)
        distances[name] = distance
        natural[name] = max(share, noise.get("jensen_shannon", 0.0))
    if not distances:
        return "no production output comparable with its evaluation-time outputs"
    column = max(distances, key=lambda c: distances[c] - natural[c])
    return ProductionMove(distances=distances, natural=natural, column=column)


#: Equal-width bins of quantile positions (0 to 1) on which two moves are compared.
POSITION_BINS = 10


def move_shape(
    canary: pa.Table | None,
    reference: DatasetStatistics | None,
    production: pa.Table | None,
    production_reference: DatasetStatistics | None,
    rules: GuardrailsConfig,
) -> dict[str, float]:
    """Per numeric output: how unlike production's move from its evaluation-time outputs the
    canary's move from its own is (Jensen–Shannon distance, 0: moved alike).

    Each live value is placed at its quantile position in its own version's evaluation
    outputs (mid-rank: ties sit halfway through their mass); the two versions' positions
    are compared over ``POSITION_BINS`` equal bins. Positions hold no model's scale, so
    two models answering differently compare on what the traffic did to each. Empty
    until both versions have ``min_prediction_rows`` outputs and both references exist.

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> ref = compute_statistics(pa.table({"output.score": [i / 100 for i in range(100)]}))
        >>> up = pa.table({"output.score": [0.5 + i / 200 for i in range(100)]})
        >>> rules = GuardrailsConfig(min_prediction_rows=50)
        >>> move_shape(up, ref, up, ref, rules)["output.score"]
        0.0
    """
    if canary is None or production is None or reference is None or production_reference is None:
        return {}
    if min(canary.num_rows, production.num_rows) < rules.min_prediction_rows:
        return {}
    from mooring.contract._distance import jensen_shannon

    out: dict[str, float] = {}
    for name in canary.column_names:
        if name not in production.column_names:
            continue
        c_pos = _positions(canary[name], reference, name)
        p_pos = _positions(production[name], production_reference, name)
        if c_pos is not None and p_pos is not None:
            out[name] = jensen_shannon(_position_shares(c_pos), _position_shares(p_pos))
    return out


def _positions(
    column: pa.ChunkedArray, reference: DatasetStatistics, name: str
) -> npt.NDArray[np.float64] | None:
    """Each finite number's mid-rank in the reference's distribution of ``name`` (0 to 1)."""
    if name not in reference.columns or not (
        pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
    ):
        return None
    numeric = reference[name].numeric
    if numeric is None or numeric.count == 0:
        return None
    values = np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    below, upto = numeric.sketch.cdf(values, inclusive=False), numeric.sketch.cdf(values)
    return np.asarray(0.5 * (below + upto), dtype=np.float64)


def _position_shares(positions: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    counts, _ = np.histogram(positions, bins=POSITION_BINS, range=(0.0, 1.0))
    return np.asarray(counts / max(1, positions.size), dtype=np.float64)


def _versus(
    production: pa.Table | None, c_out: pa.Table | None, rules: GuardrailsConfig
) -> dict[str, float] | None:
    """Jensen–Shannon distance canary vs production per output on the same traffic (None
    until both have ``min_prediction_rows`` outputs)."""
    if c_out is None or production is None or c_out.num_rows < rules.min_prediction_rows:
        return None
    if production.num_rows < rules.min_prediction_rows:
        return None
    shared = [c for c in production.column_names if c in c_out.column_names]
    return statistics_distance(
        compute_statistics(production.select(shared)), compute_statistics(c_out.select(shared))
    )


def _validated(
    canary: Mapping[str, Any], production: Mapping[str, Any] | None, rules: GuardrailsConfig
) -> GuardrailResult:
    metric = rules.live_metric
    if rules.live_metric_drop is None:
        return GuardrailResult("validated", "off", "live-metric margin is off")
    c_value = (canary.get("metrics") or {}).get(metric)
    if not isinstance(c_value, int | float):
        return GuardrailResult(
            "validated", "unavailable", f"the canary was registered without an evaluation {metric}"
        )
    numbers: dict[str, Any] = {"canary": c_value, "canary_data": reference_data_label(canary)}
    p_value = None if production is None else (production.get("metrics") or {}).get(metric)
    same = (
        production is not None
        and canary.get("data_fingerprint")
        and canary.get("data_fingerprint") == production.get("data_fingerprint")
    )
    compared = canary.get("baseline")
    if not same and isinstance(compared, Mapping) and production is not None:
        # The run that registered the canary evaluated production on the canary's data.
        p_value = (compared.get("metrics") or {}).get(metric)
        same = compared.get("version") == production.get("version")
    if same and isinstance(p_value, int | float):
        numbers.update(production=p_value)
        drop = float(p_value - c_value)
        summary = (
            f"evaluation {metric} canary {c_value:.4f} vs production {p_value:.4f} on the same "
            f"data ({reference_data_label(canary)})"
        )
        if drop > rules.live_metric_drop:
            return GuardrailResult(
                "validated",
                "breach",
                f"{summary}: worse by {drop:.4f} > {rules.live_metric_drop:g}",
                value=drop,
                threshold=rules.live_metric_drop,
                numbers=numbers,
            )
        return GuardrailResult("validated", "ok", summary, value=drop, numbers=numbers)
    chance = _CHANCE.get(metric)
    other = "" if production is None else f" vs production's on {reference_data_label(production)}"
    note = f"evaluated on {reference_data_label(canary)}{other}: not comparable"
    if chance is not None and c_value <= chance + rules.live_metric_drop:
        return GuardrailResult(
            "validated",
            "breach",
            f"evaluation {metric} {c_value:.4f} on its own evaluation data "
            f"({reference_data_label(canary)}) "
            f"is no better than chance ({chance:g} + {rules.live_metric_drop:g})",
            value=c_value,
            threshold=chance + rules.live_metric_drop,
            numbers=numbers,
        )
    return GuardrailResult(
        "validated", "ok", f"evaluation {metric} {c_value:.4f}; {note}", numbers=numbers
    )


def _divergence(
    versus: dict[str, float] | None, rules: GuardrailsConfig, rows: dict[str, int]
) -> GuardrailResult:
    decisive = rules.divergence_js is not None
    if versus is None:
        return GuardrailResult(
            "divergence",
            "insufficient_data" if decisive else "unavailable",
            f"{rows['canary_rows']} canary and {rows['production_rows']} production logged "
            f"predictions; compared from {rules.min_prediction_rows} each",
            numbers=rows,
        )
    numbers: dict[str, Any] = {**rows, "jensen_shannon": versus}
    if not versus:
        return GuardrailResult(
            "divergence", "unavailable", "no comparable outputs", numbers=numbers
        )
    column, worst = max(versus.items(), key=lambda item: item[1])
    summary = (
        f"{column} Jensen-Shannon distance canary vs production {worst:.3f} "
        f"({rows['canary_rows']} vs {rows['production_rows']} rows)"
    )
    if not decisive:
        return GuardrailResult(
            "divergence",
            "ok",
            f"{summary}; reported, not decisive (set divergence_js to decide on it)",
            value=worst,
            numbers=numbers,
        )
    assert rules.divergence_js is not None
    if worst > rules.divergence_js:
        return GuardrailResult(
            "divergence",
            "breach",
            f"{summary} > {rules.divergence_js:g}",
            value=worst,
            threshold=rules.divergence_js,
            numbers=numbers,
        )
    return GuardrailResult("divergence", "ok", summary, value=worst, numbers=numbers)


def statistics_distance(
    baseline: DatasetStatistics, current: DatasetStatistics
) -> dict[str, float]:
    """Jensen–Shannon distance per column present in both statistics.

    Numbers are compared over the baseline's quantile bins, categories over their union,
    with the contract layer's distance functions.
    """
    return {name: found[0] for name, found in _compared(baseline, current).items()}


def _compared(
    baseline: DatasetStatistics, current: DatasetStatistics
) -> dict[str, tuple[float, npt.NDArray[np.float64], int, int]]:
    """Per column in both: the Jensen–Shannon distance, the baseline's shares over the bins
    compared, and the present rows of current and baseline (what sampling noise needs)."""
    from mooring.contract._distance import (
        categorical_distributions,
        jensen_shannon,
        numeric_distributions,
    )

    out = {}
    for name in baseline.column_names:
        if name not in current.columns:
            continue
        b_col, c_col = baseline[name], current[name]
        dist = (
            numeric_distributions(b_col, c_col)
            if b_col.numeric is not None and b_col.numeric.count > 0
            else categorical_distributions(b_col, c_col)
        )
        if dist is not None:
            distance = jensen_shannon(dist.baseline, dist.current)
            out[name] = (distance, dist.baseline, c_col.present, b_col.present)
    return out
