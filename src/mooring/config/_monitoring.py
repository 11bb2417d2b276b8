"""``[monitoring]`` (with its ``slo``, ``alerts`` and ``retrain`` tables) and ``[rollout]``."""

from __future__ import annotations

import logging
import re
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from mooring.config._base import Duration, Section, off_when_false

log = logging.getLogger("mooring.config")


# --- [monitoring.slo], [monitoring.alerts], [monitoring.retrain] --------------------------------
class BurnWindowConfig(Section):
    """One multi-window burn-rate alert: both windows must burn faster than ``burn_rate``."""

    severity: Literal["page", "ticket"] = Field(description="How urgent the alert is.")
    long: Duration = Field(description="Long window, e.g. '1h' (seconds or a duration).")
    short: Duration = Field(description="Short window, e.g. '5m'; ends the alert quickly.")
    burn_rate: float = Field(gt=0.0, description="Error-budget burn factor, e.g. 14.4.")

    @model_validator(mode="after")
    def _short_below_long(self) -> BurnWindowConfig:
        if not 0 < self.short < self.long:
            raise ValueError(
                f"short window ({self.short:g}s) must be positive and shorter than the long "
                f"window ({self.long:g}s), e.g. long = '1h', short = '5m'"
            )
        return self


def _default_burn_windows() -> list[BurnWindowConfig]:
    # The SRE workbook's pair: 2% of a 30-day budget in 1h pages, 5% in 6h opens a ticket.
    return [
        BurnWindowConfig(severity="page", long=3600.0, short=300.0, burn_rate=14.4),
        BurnWindowConfig(severity="ticket", long=21600.0, short=1800.0, burn_rate=6.0),
    ]


class SLOConfig(Section):
    """``[monitoring.slo]``: availability and latency objectives, judged by burn rate."""

    availability: float | None = Field(
        0.999, gt=0.0, lt=1.0, description="Target share of requests answered without a 5xx."
    )
    latency_ms: float | None = Field(
        250.0, gt=0.0, description="Latency threshold of the latency objective, in ms."
    )
    latency_target: float = Field(
        0.99, gt=0.0, lt=1.0, description="Target share of requests faster than latency_ms."
    )
    windows: list[BurnWindowConfig] = Field(
        default_factory=_default_burn_windows, description="Multi-window burn-rate alerts."
    )
    max_samples: int = Field(
        5000, ge=10, le=1_000_000, description="Counter samples kept (older ones are thinned)."
    )

    _objectives_off = field_validator("availability", "latency_ms", mode="before")(off_when_false)


class AlertsConfig(Section):
    """``[monitoring.alerts]``: where alerts go and how often the same one may repeat."""

    log: bool = Field(True, description="Write every alert to the 'mooring.monitoring' log.")
    webhook_url: str | None = Field(None, description="http(s) URL receiving each alert as JSON.")
    webhook_timeout: Duration = Field(5.0, description="Timeout of one webhook POST.")
    webhook_retries: int = Field(3, ge=0, le=20, description="Retries after a failed POST.")
    webhook_backoff: Duration = Field(0.5, description="First wait between retries (doubles).")
    cooldown: Duration = Field(
        3600.0, description="The same (model, version, kind) alert is sent at most once per this."
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL, e.g. 'https://hooks.example/x'")
        return value


class RetrainConfig(Section):
    """``[monitoring.retrain]``: what starts a retraining run, and what it runs."""

    enabled: bool = Field(False, description="Run the command when a trigger fires.")
    on_drift: bool = Field(True, description="Trigger when the drift check reports drift.")
    metric: str = Field("auc", description="Live metric watched for a drop (needs labels).")
    metric_drop: float | None = Field(
        0.02,
        gt=0.0,
        description="Trigger when the live metric falls this far below its evaluation value.",
    )
    min_labels: int = Field(200, ge=1, description="Labelled predictions needed to judge.")
    estimated_windows: int | None = Field(
        3,
        ge=1,
        description="Before labels: trigger when production's metric, estimated from its "
        "logged rows (a binary classifier's score map, a regression's error model), is worse "
        "than its evaluation value by more than metric_drop, its whole band, in this many "
        "drift windows in a row.",
    )
    data: str | None = Field(None, description="Fresh training data for the default command.")
    command: list[str] | None = Field(
        None,
        description="Command to run; placeholders {config} {data} {model} {version} {home} "
        "{reason}. Default: python -m mooring.pipeline --config {config} --train-data {data}.",
    )
    cooldown: Duration = Field(86400.0, description="Least time between two runs.")
    timeout: Duration = Field(21600.0, description="A run taking longer is stopped.")

    _drop_off = field_validator("metric_drop", "estimated_windows", mode="before")(off_when_false)

    @model_validator(mode="after")
    def _something_to_run(self) -> RetrainConfig:
        if self.enabled and self.command is None and self.data is None:
            raise ValueError(
                "retraining is enabled but has nothing to train on; set data = 'fresh.csv' "
                "(used by the default command) or command = [...]"
            )
        if self.command is not None and not self.command:
            raise ValueError("command is empty; give the program and its arguments")
        return self


class KeepReportsConfig(Section):
    """``[monitoring.keep_reports]``: how long drift reports stay on disk.

    The latest report and every report that found drift are always kept.
    """

    days: Duration = Field(
        7 * 86400.0, description="Reports older than this are removed ('7d' or seconds)."
    )
    files: int = Field(2000, ge=1, description="At most this many reports are kept (newest).")


# --- [monitoring] (drift, segments, feedback, live metrics) -------------------------------------
DriftMetric = Literal[
    "psi", "jensen_shannon", "wasserstein", "ks", "linf", "out_of_range", "unseen", "missing"
]


class DriftThresholds(Section):
    """Drift thresholds: a feature drifts when any set threshold is reached (``None``: record only).

    Defaults and why: PSI 0.2 is the long-standing credit-scoring rule (< 0.1 stable,
    0.1-0.2 moderate, > 0.2 significant shift); Jensen-Shannon distance 0.1 and Wasserstein
    distance 0.1 baseline standard deviations are the large-sample defaults of common drift
    tools and lie well above the sampling noise of a 1,000-row window (about 0.03-0.06 for
    10 bins). Kolmogorov-Smirnov and L-infinity are recorded but do not decide by default:
    over thousands of rows their p-values call every tiny difference significant. 2% of
    values outside the training range, or of categories never seen in training, is far above
    what same-distribution data produces (a few in 10,000 for Adult-sized training data).
    A 10-point rise in the missing share catches a broken upstream field.
    """

    psi: float | None = Field(0.2, gt=0, description="Population stability index.")
    jensen_shannon: float | None = Field(
        0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2, 0..1)."
    )
    wasserstein: float | None = Field(
        0.1, gt=0, description="Wasserstein distance divided by the baseline std (numbers)."
    )
    ks: float | None = Field(
        None, gt=0, le=1, description="Kolmogorov-Smirnov statistic (numbers), 0..1."
    )
    linf: float | None = Field(
        None, gt=0, le=1, description="Largest change in one category's share (categories)."
    )
    out_of_range: float | None = Field(
        0.02, ge=0, le=1, description="Share of numbers outside the training [min, max]."
    )
    unseen: float | None = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of categories never seen in training (decides past calibration_"
        "margin × the training period's own rate of new values at the window's size, the "
        "share of values new from one training block to the next where blocks are compared "
        "in order, and its sampling noise, whichever is largest).",
    )
    missing: float | None = Field(
        0.1, gt=0, le=1, description="Rise in the share of missing values (absolute)."
    )


class FeatureDriftConfig(Section):
    """``[monitoring.features.NAME]``: per-feature (or ``output.NAME``) threshold overrides."""

    enabled: bool = Field(True, description="false: leave the feature out of drift checks.")
    psi: float | None = Field(None, gt=0, description="Overrides [monitoring.thresholds] psi.")
    jensen_shannon: float | None = Field(
        None, gt=0, le=1, description="Overrides [monitoring.thresholds] jensen_shannon."
    )
    wasserstein: float | None = Field(
        None, gt=0, description="Overrides [monitoring.thresholds] wasserstein."
    )
    ks: float | None = Field(None, gt=0, le=1, description="Overrides [monitoring.thresholds] ks.")
    linf: float | None = Field(
        None, gt=0, le=1, description="Overrides [monitoring.thresholds] linf."
    )
    out_of_range: float | None = Field(
        None, ge=0, le=1, description="Overrides [monitoring.thresholds] out_of_range."
    )
    unseen: float | None = Field(
        None, ge=0, le=1, description="Overrides [monitoring.thresholds] unseen."
    )
    missing: float | None = Field(
        None, gt=0, le=1, description="Overrides [monitoring.thresholds] missing."
    )
    ignore: list[DriftMetric] = Field(
        default_factory=list,
        description="Metrics of this feature that never decide (recorded only), e.g. ['psi'].",
    )


class MonitoringConfig(Section):
    """``[monitoring]``: drift of the prediction log against the training statistics."""

    segments: list[str] = Field(
        default_factory=list, description="Columns whose values are judged for drift separately."
    )
    window_rows: int = Field(
        10_000, ge=1, description="Rows of the prediction log judged when no window is given."
    )
    min_samples: int = Field(
        1000,
        ge=1,
        description="Rows needed (overall, per segment) before judging; fewer: insufficient data. "
        "A feature none of whose tests tells a shift of its floor's size from sampling noise "
        "at the window's rows is insufficient data too ('too few rows', with the row count "
        "that would); `mooring validate FILE` applies only that.",
    )
    bins: int = Field(
        10, ge=2, le=1000, description="Quantile bins of numeric features (from the baseline)."
    )
    rare_share: float = Field(
        0.005,
        ge=0.0,
        lt=1.0,
        description="Training categories rarer than this share are compared as one bin.",
    )
    thresholds: DriftThresholds = Field(
        default_factory=DriftThresholds, description="Default thresholds of every feature."
    )
    features: dict[str, FeatureDriftConfig] = Field(
        default_factory=dict, description="Per-feature overrides, keyed by column name."
    )
    calibration: Literal["auto", "random", "ordered", "off"] = Field(
        "auto",
        description="Thresholds over natural variation in the training data. 'ordered': "
        "the rows are in time order (sorted by [data] timestamp when set, else as in the "
        "file), natural variation is movement over time (each block vs the next, and a later "
        "block vs the whole earlier period); 'random': random windows vs the rest (sampling "
        "noise only); 'auto': ordered when a timestamp is set, else both random windows and "
        "contiguous blocks in file order (each vs every row before it), the larger per "
        "feature and distance; 'off': the floors and sampling noise alone decide. Where "
        "blocks are compared in order, the share of a later block's categories new to every "
        "earlier row is the natural variation of the unseen share.",
    )
    calibration_margin: float = Field(
        1.5,
        ge=1.0,
        description="A feature drifts only beyond this × its natural variation (and its floor).",
    )
    calibration_quantile: float = Field(
        0.99,
        gt=0.5,
        lt=1.0,
        description="Quantile of within-training distances (and of each distance's sampling "
        "noise at the window's rows) taken as natural.",
    )
    calibration_windows: int = Field(
        200, ge=20, le=10_000, description="Training windows measured per window size."
    )
    prediction: bool = Field(
        True, description="Also compare the model's outputs with their evaluation-time values."
    )
    feedback_url: str | None = Field(
        None, description="Folder (or fsspec URL) of label feedback; default <home>/feedback."
    )
    live_min_labels: int = Field(
        100, ge=1, description="Labelled predictions needed before live metrics are computed."
    )
    keep_reports: KeepReportsConfig = Field(default_factory=KeepReportsConfig)
    slo: SLOConfig = Field(default_factory=SLOConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


# --- [rollout] (canary steps and guardrails) -----------------------------------------------------
class GuardrailsConfig(Section):
    """``[rollout.guardrails]``: is the canary healthy? Each guardrail passes, fails or waits.

    Errors, latency and the live metric are sequential tests (confidence sequences,
    :mod:`mooring.monitoring._sequential`): they may be looked at after every tick without
    inflating their error rate, so a step acts as soon as the evidence allows, with no
    fixed sample floor. Each fails when the canary is worse than production beyond its
    interval, and passes when its interval shows it no worse than the margin.

    Labels decide when there are enough of them: a canary whose live metric is
    conclusively no worse than production's is never rolled back for answering
    differently. Without labels the canary's outputs are compared with **its own** outputs
    on its evaluation data (frozen at registration), unless production's own outputs
    moved from *its* evaluation outputs beyond natural variation: then the evaluation
    data no longer looks like the traffic, and a canary unlike its own evaluation is
    judged against production's outputs on the same traffic instead. How far the canary
    is from production is always reported, and decides on its own only with
    ``divergence_js``. Setting a guardrail to ``false`` turns it off.

    Example::

        [rollout.guardrails]
        prediction_js = 0.2    # the outputs guardrail's threshold, either reference
        divergence_js = false  # canary vs production: reported, not decisive
    """

    alpha: float = Field(
        0.01,
        gt=0.0,
        lt=0.5,
        description="Error level of each sequential test, valid at every look: a false "
        "rollback or promotion per guardrail and step is at most this likely.",
    )
    error_rate_margin: float | None = Field(
        0.03,
        gt=0.0,
        le=1.0,
        description="Errors (5xx, and 4xx beyond production's rate) pass once the canary's "
        "error rate is shown no more than this above production's; any increase shown "
        "beyond its interval fails.",
    )
    latency_margin: float | None = Field(
        0.2,
        gt=0.0,
        description="At each of p50, p90 and p99 the canary may be slower than production's "
        "same quantile by this share of it (or latency_margin_ms, whichever is larger): "
        "latency fails when one quantile is shown slower than that, and passes once all "
        "three are shown within it.",
    )
    latency_margin_ms: float = Field(
        2.0,
        ge=0.0,
        description="…the margin in milliseconds at every quantile, when larger than the "
        "share (it keeps a sub-millisecond median from failing on a fraction of a ms).",
    )
    prediction_js: float | None = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="Breach: Jensen-Shannon distance of the canary's live outputs from its own "
        "outputs on its evaluation data above this; once production's own outputs moved from "
        "its evaluation outputs beyond natural variation (the larger of sampling noise and a "
        "quarter of this), from production's outputs on the same traffic instead, unless the "
        "canary moved like production (its live outputs' quantile positions in its evaluation "
        "outputs against production's in its own, within this).",
    )
    divergence_js: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Breach: canary vs production outputs above this, whatever the traffic "
        "(off by default: a retrained model should answer differently; always reported; "
        "prediction_js uses the same distance once production's outputs moved).",
    )
    min_prediction_rows: int = Field(
        200, ge=10, description="Logged predictions per version before output checks judge."
    )
    live_metric: str = Field("auc", description="Live metric compared when labels exist.")
    live_metric_drop: float | None = Field(
        0.02,
        gt=0.0,
        description="The live metric fails when the canary is worse than production by more "
        "than this beyond its interval, and passes once shown no worse than that.",
    )
    estimated_drop: float | None = Field(
        0.02,
        gt=0.0,
        description="Before labels: fails when the canary's live_metric, estimated from its "
        "logged rows (a binary classifier's score map, a regression's error model), is shown "
        "worse than production's on the same traffic by more than this (AUC, accuracy: the "
        "difference; MAE, RMSE: the increase relative to production's, 0.02 = 2%); passes "
        "once shown no worse. Compared only when both were fitted on the same evaluation "
        "data; labels override it.",
    )
    min_labels: int = Field(
        100,
        ge=1,
        description="Labels per version before the live metric's interval is trusted (its "
        "standard error needs a few of each class).",
    )
    require_labels: bool = Field(
        False,
        description="Hold every step until the live metric decides (default: a rollout "
        "without any label feedback is judged on its outputs).",
    )

    _guardrails_off = field_validator(
        "error_rate_margin",
        "latency_margin",
        "prediction_js",
        "divergence_js",
        "live_metric_drop",
        "estimated_drop",
        mode="before",
    )(off_when_false)


class ShadowConfig(Section):
    """``[rollout.shadow]``: when a shadow version is healthy enough to become the canary.

    The monitor compares the shadow's logged outputs with production's answers to the
    same requests (joined by request id) and reads the shadow's errors from the
    server's metrics; with ``[rollout] start = "shadow"`` a healthy shadow moves to the
    first canary step.
    """

    rate: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Share of requests copied to a candidate that mooring run deploys as "
        'shadow (start = "shadow").',
    )
    min_rows: int = Field(
        500, ge=1, description="Compared rows (shadow and answer) before the shadow is judged."
    )
    min_agreement: float | None = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Unhealthy: share of rows whose decision (at production's operating "
        "threshold) matches production's below this.",
    )
    max_error_rate: float | None = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Unhealthy: shadow copies failing or timing out above this.",
    )
    max_mean_score_diff: float | None = Field(
        None,
        gt=0.0,
        description="Unhealthy: mean absolute score difference above this (off by default).",
    )

    _checks_off = field_validator(
        "min_agreement", "max_error_rate", "max_mean_score_diff", mode="before"
    )(off_when_false)


class RolloutConfig(Section):
    """``[rollout]``: how a canary advances to production, and when it is rolled back.

    ``policy`` decides what a step still undecided when its budget (``max_hold``) is spent
    does: ``bias_to_action`` (the default) advances it when no guardrail was shown harmful,
    so a healthy canary reaches 100% within ``len(steps) × max_hold`` (2 h with the
    defaults); ``strict`` holds until the evidence shows it no worse and alerts;
    ``rollback`` rolls it back. A guardrail shown failing rolls back under every policy.

    Examples:
        >>> RolloutConfig(on_max_hold="hold_and_alert").policy
        'strict'
    """

    start: Literal["canary", "shadow"] = Field(
        "canary",
        description='Where a new candidate starts: "canary" (the first step) or "shadow" '
        "(copies of requests first; the monitor moves a healthy shadow to the first step).",
    )

    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100],
        description="Canary weights in percent, in order; the last step promotes.",
    )
    min_requests: int = Field(
        0,
        ge=0,
        description="Canary requests at a step before it may advance, beyond what the "
        "guardrails' own tests need (0: the tests decide).",
    )
    min_step_duration: Duration = Field(
        0.0,
        description="Least time at a step before it may advance ('5m' or seconds; 0: the "
        "guardrails decide).",
    )
    policy: Literal["bias_to_action", "strict", "rollback"] = Field(
        "bias_to_action",
        description="The end-of-horizon policy: what a step still undecided when its budget "
        "(max_hold) is spent does. bias_to_action: advance (promote at the last step) when "
        "no guardrail was shown harmful and the canary got traffic; strict: hold until the "
        "evidence shows it no worse, and alert; rollback: roll it back. Always audited with "
        "the undecided guardrails' numbers.",
    )
    max_hold: Duration = Field(
        1800.0,
        description="The budget of a step that stays undecided ('30m' or seconds); then "
        "policy decides. The rollout's horizon is len(steps) × max_hold.",
    )
    max_hold_requests: int | None = Field(
        None,
        ge=1,
        description="…or once the canary has answered this many requests at the step, "
        "whichever comes first (default: time only).",
    )
    on_max_hold: Literal["hold_and_alert", "rollback", "advance"] | None = Field(
        None,
        description='Replaced by policy, still read: hold_and_alert is policy = "strict", '
        'advance is "bias_to_action", rollback is "rollback".',
    )
    sample_ratio_tolerance: float | None = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Sample-ratio mismatch: the rollout holds when the canary's share of the "
        "step's requests is shown (a sequential test at guardrails.alpha) to differ from its "
        "weight, and the observed share is off by more than this share of the weight; false "
        "turns the check off (e.g. traffic routed by key, which splits keys, not requests).",
    )
    max_failed_ticks: int = Field(
        3,
        ge=1,
        description="Monitor ticks failing in a row (an error inside the check) after which "
        "the rollout is reported held by the failing monitor and a page is raised.",
    )
    metrics_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8501/metrics"],
        description="Prometheus /metrics of every replica; counters are summed.",
    )
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)

    _tolerance_off = field_validator("sample_ratio_tolerance", mode="before")(off_when_false)

    @model_validator(mode="before")
    @classmethod
    def _old_on_max_hold(cls, data: object) -> object:
        """Read ``on_max_hold`` (the key ``policy`` replaced) as the policy it names."""
        if not isinstance(data, dict) or data.get("on_max_hold") is None:
            return data
        old = data["on_max_hold"]
        mapped = _POLICY_OF.get(old) if isinstance(old, str) else None
        if mapped is None:
            return data  # the field's own check names the allowed values
        given = data.get("policy")
        if given is not None and given != mapped:
            raise ValueError(
                f"on_max_hold = {old!r} means policy = {mapped!r}, but policy = {given!r} is "
                "set too; remove on_max_hold (policy replaced it)"
            )
        if given is None:
            log.warning(
                '[rollout] on_max_hold = "%s" is read as policy = "%s"; replace it with '
                'policy = "%s" in mooring.toml',
                old,
                mapped,
                mapped,
            )
        return {**data, "policy": mapped}

    @field_validator("steps")
    @classmethod
    def _increasing_percentages(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError(
                "steps are increasing canary percentages between 1 and 100, "
                "e.g. steps = [5, 25, 50, 100]"
            )
        return value


#: The policy each value of the old ``on_max_hold`` key names.
_POLICY_OF = {"hold_and_alert": "strict", "advance": "bias_to_action", "rollback": "rollback"}
