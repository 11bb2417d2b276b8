"""mooring.toml → typed, validated configuration objects.

Every section is a pydantic model that forbids unknown keys, so a typo is an
error instead of a silently ignored setting. Validation errors are turned into
one :class:`~mooring.errors.ConfigError` whose message names each offending key,
the value received and the fix.

Example:
    >>> cfg = MooringConfig.from_mapping({"project": {"name": "income"},
    ...                                   "data": {"train": "train.csv", "label": "class"}})
    >>> cfg.data.label
    'class'
"""

from __future__ import annotations

import difflib
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mooring.errors import ConfigError, NotFoundError

__all__ = [
    "AlertsConfig",
    "BootstrapConfig",
    "BurnWindowConfig",
    "ChangeThresholdConfig",
    "ColumnOverride",
    "ContractConfig",
    "CostConfig",
    "CrossConfig",
    "DataConfig",
    "DriftThresholds",
    "EarlyStoppingConfig",
    "EvaluationConfig",
    "ExportConfig",
    "FeatureConfig",
    "FeatureDriftConfig",
    "FeaturesConfig",
    "GateConfig",
    "GuardrailsConfig",
    "ModelConfig",
    "MonitoringConfig",
    "MooringConfig",
    "PipelineConfig",
    "ProjectConfig",
    "RetrainConfig",
    "RolloutConfig",
    "SLOConfig",
    "ServingConfig",
    "WindowsConfig",
    "load_config",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
Severity = Literal["error", "warning"]
ColumnType = Literal["integer", "float", "string", "boolean", "timestamp"]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ProjectConfig(Section):
    """``[project]``: the model's name and where mooring keeps its state."""

    name: str = Field(description="Model name in the registry and in serving URLs.")
    home: str = Field(".mooring", description="Folder (or fsspec URL) for state and reports.")
    registry: str | None = Field(
        None, description="SQLAlchemy URL of the registry; default sqlite:///<home>/registry.db."
    )
    artifacts: str | None = Field(
        None, description="fsspec URL for model artifacts; default <home>/artifacts."
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "must start with a letter or digit and use only letters, digits, '_', '.', '-' "
                "(at most 128 characters), because it appears in registry keys and URLs"
            )
        return value


class DataConfig(Section):
    """``[data]``: where the training and evaluation data are and how to read them."""

    train: str = Field(description="Training data: CSV (optionally .gz) or Parquet file.")
    eval: str | None = Field(None, description="Evaluation data, same format as train.")
    label: str | None = Field(None, description="Label column.")
    positive: str | None = Field(None, description="Positive class value for binary tasks.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    delimiter: str = ","
    header: bool = True
    na_values: list[str] = Field(default_factory=lambda: list(DEFAULT_NA_VALUES))
    trim_whitespace: bool = True
    timestamp: str | None = Field(None, description="Event-time column (freshness, windows).")
    batch_mb: float = Field(
        16.0, gt=0.0, le=4096.0, description="Approximate size of one record batch when streaming."
    )

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("must be exactly one character, e.g. ',' or ';' or '\\t'")
        return value


class ColumnOverride(Section):
    """``[contract.columns.NAME]``: override anything inferred for one column."""

    type: ColumnType | None = None
    required: bool | None = None
    max_null_fraction: float | None = Field(None, ge=0.0, le=1.0)
    min: float | None = None
    max: float | None = None
    domain: list[str] | None = None
    severity: Severity | None = None
    js_threshold: float | None = Field(None, gt=0.0, le=1.0)
    linf_threshold: float | None = Field(None, gt=0.0, le=1.0)
    psi_threshold: float | None = Field(None, gt=0.0)


class ContractConfig(Section):
    """``[contract]``: how the schema is inferred and how strictly data is held to it."""

    schema_file: str | None = Field(
        None,
        alias="schema",
        description="Schema file to use; when absent it is inferred and saved under home.",
    )
    critical: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    max_null_fraction: float | None = Field(None, ge=0.0, le=1.0)
    null_slack: float = Field(0.02, ge=0.0, le=1.0)
    range_margin: float = Field(0.1, ge=0.0)
    max_domain_size: int = Field(100, ge=1)
    js_threshold: float = Field(0.1, gt=0.0, le=1.0)
    linf_threshold: float = Field(0.1, gt=0.0, le=1.0)
    psi_threshold: float = Field(0.2, gt=0.0)
    min_row_ratio: float = Field(0.1, ge=0.0)
    max_row_ratio: float = Field(10.0, gt=0.0)
    max_age: str | None = Field(None, description="Freshness bound such as '36h' or '7d'.")
    columns: dict[str, ColumnOverride] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class CostConfig(Section):
    """``[evaluation.cost]``: what each kind of decision costs, in any one currency."""

    false_positive: float = Field(1.0, ge=0.0, description="Cost of one false positive.")
    false_negative: float = Field(1.0, ge=0.0, description="Cost of one false negative.")
    true_positive_benefit: float = Field(
        0.0, ge=0.0, description="Benefit of one true positive (subtracted from the cost)."
    )


class BootstrapConfig(Section):
    """``[evaluation.bootstrap]``: seeded bootstrap confidence intervals."""

    samples: int = Field(1000, ge=0, le=100_000, description="Resamples; 0 turns intervals off.")
    seed: int = Field(0, ge=0)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    metrics: list[str] | None = Field(
        None, description="Metrics to bootstrap; default: the task's headline metrics."
    )


class WindowsConfig(Section):
    """``[evaluation.windows]``: metrics per time window (or per block of N ordered rows)."""

    column: str | None = Field(
        None, description="Timestamp or ordering column; default: [data] timestamp."
    )
    freq: Literal["day", "week", "month"] | int = Field(
        "week", description="'day', 'week', 'month' (timestamp column) or N rows per window."
    )
    min_size: int = Field(30, ge=1, description="Windows with fewer rows are reported, not scored.")

    @field_validator("freq")
    @classmethod
    def _positive_rows(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            raise ValueError("a number of rows per window must be at least 1, e.g. freq = 10000")
        return value


class ChangeThresholdConfig(Section):
    """A change threshold against the production model: diff = candidate − baseline."""

    direction: Literal["higher", "lower"] = Field(
        description="'higher' when a larger value is better (auc), 'lower' otherwise (log_loss)."
    )
    absolute: float | None = Field(None, description="Bound on diff.")
    relative: float | None = Field(None, description="Bound on diff ÷ baseline.")

    @model_validator(mode="after")
    def _one_bound(self) -> ChangeThresholdConfig:
        if self.absolute is None and self.relative is None:
            raise ValueError(
                "a change threshold needs 'absolute' or 'relative' (or both), "
                "e.g. change = { direction = 'higher', absolute = -0.01 }"
            )
        return self


class GateConfig(Section):
    """``[[evaluation.gates]]``: one validation gate on one metric, overall or on a slice."""

    metric: str = Field(description="Metric name, e.g. 'auc', 'log_loss', 'flip_rate'.")
    slice: str | None = Field(None, description="Slice name such as 'sex=Female'; default overall.")
    lower: float | None = Field(None, description="Inclusive lower bound on the value.")
    upper: float | None = Field(None, description="Inclusive upper bound on the value.")
    change: ChangeThresholdConfig | None = None

    @model_validator(mode="after")
    def _some_threshold(self) -> GateConfig:
        if self.lower is None and self.upper is None and self.change is None:
            raise ValueError(
                f"gate on '{self.metric}' has no threshold; set lower, upper or change"
            )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(
                f"gate on '{self.metric}': lower {self.lower} is above upper {self.upper}; "
                "swap them"
            )
        return self


class EvaluationConfig(Section):
    """``[evaluation]``: metrics, slices, calibration, thresholds, cost, windows and gates."""

    slices: list[str] = Field(default_factory=list, description="Columns to slice by value.")
    slice_buckets: dict[str, list[float] | int] = Field(
        default_factory=dict,
        description="Numeric columns to bucket: boundaries or a number of quantile buckets.",
    )
    crosses: list[list[str]] = Field(
        default_factory=list, description="Pairs of columns to slice by jointly."
    )
    min_slice_size: int = Field(30, ge=1, description="Smaller slices are listed, not scored.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    calibration_bins: int = Field(10, ge=2, le=1000)
    threshold: float | Literal["cost_optimal", "f1_optimal"] = Field(
        0.5, description="Operating threshold on the positive-class probability, or how to pick it."
    )
    threshold_points: int = Field(101, ge=2, le=100_000, description="Points in the sweep.")
    top_k: int = Field(3, ge=1, description="k of top-k accuracy (multiclass).")
    cost: CostConfig | None = None
    windows: WindowsConfig | None = None
    gates: list[GateConfig] = Field(default_factory=list)

    @field_validator("threshold")
    @classmethod
    def _unit_threshold(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not 0.0 <= float(value) <= 1.0:
            raise ValueError("an operating threshold is a probability between 0 and 1, e.g. 0.5")
        return value

    @field_validator("crosses")
    @classmethod
    def _pairs(cls, value: list[list[str]]) -> list[list[str]]:
        for cross in value:
            if len(cross) != 2 or cross[0] == cross[1]:
                raise ValueError(
                    f"each cross names two different columns, e.g. [['sex', 'race']]; got {cross}"
                )
        return value

    @model_validator(mode="after")
    def _cost_for_cost_optimal(self) -> EvaluationConfig:
        if self.threshold == "cost_optimal" and self.cost is None:
            raise ValueError(
                "threshold = 'cost_optimal' needs costs; add "
                "cost = { false_positive = 1.0, false_negative = 5.0 }"
            )
        return self


NumericTransform = Literal["normalize", "log_normalize", "bucketize", "passthrough"]
CategoricalEncoding = Literal["one_hot", "embedding", "hashing"]
_NUMERIC_KEYS = ("transform", "buckets", "clip")
_CATEGORICAL_KEYS = ("encoding", "dim", "bins", "max_tokens", "min_count", "oov")


class FeatureConfig(Section):
    """One entry of ``[features]``: how one column becomes model input.

    Every option is optional; what is left out is inferred from the schema and
    the statistics (see :mod:`mooring.features`).
    """

    kind: Literal["numeric", "categorical"] | None = Field(
        None, description="Default: numeric for number columns, categorical for text/boolean."
    )
    transform: NumericTransform | None = Field(
        None, description="Numeric transform; default normalize, or bucketize for heavy tails."
    )
    buckets: int | None = Field(None, ge=2, le=1000, description="Quantile buckets (bucketize).")
    clip: float | None = Field(
        None, gt=0.0, description="Bound on normalised values in standard deviations (default 5)."
    )
    missing: Literal["impute", "indicator", "category", "oov"] | None = Field(
        None,
        description="Numeric: impute the mean, or impute plus an is-missing input (indicator). "
        "Categorical: missing is its own category, or shares the out-of-vocabulary bucket (oov).",
    )
    encoding: CategoricalEncoding | None = Field(
        None, description="Default one_hot (≤ 50 values), embedding (more), hashing (unbounded)."
    )
    dim: int | None = Field(None, ge=1, le=1024, description="Embedding dimension.")
    bins: int | None = Field(None, ge=2, le=1_000_000, description="Hash bins (hashing).")
    max_tokens: int | None = Field(None, ge=1, description="Keep the most frequent values only.")
    min_count: int | None = Field(None, ge=1, description="Drop values seen fewer times.")
    oov: int | None = Field(None, ge=1, le=1000, description="Out-of-vocabulary buckets.")

    @model_validator(mode="after")
    def _options_fit_kind(self) -> FeatureConfig:
        set_keys = [k for k in self.model_fields_set if getattr(self, k) is not None]
        if self.kind == "numeric":
            wrong = [k for k in set_keys if k in _CATEGORICAL_KEYS]
            if wrong or self.missing in ("category", "oov"):
                raise ValueError(
                    f"options {wrong or ['missing = ' + repr(self.missing)]} apply to categorical "
                    "features; remove them or set kind = 'categorical'"
                )
        if self.kind == "categorical":
            wrong = [k for k in set_keys if k in _NUMERIC_KEYS]
            if wrong or self.missing in ("impute", "indicator"):
                raise ValueError(
                    f"options {wrong or ['missing = ' + repr(self.missing)]} apply to numeric "
                    "features; remove them or set kind = 'numeric'"
                )
        if self.dim is not None and self.encoding == "one_hot":
            raise ValueError("dim applies to embedding or hashing encodings, not one_hot")
        return self


class CrossConfig(Section):
    """``[[features.crosses]]``: a hashed cross of two or more features."""

    columns: list[str] = Field(min_length=2, description="Columns to cross, e.g. ['sex', 'race'].")
    bins: int = Field(1000, ge=2, le=1_000_000, description="Hash bins of the crossed value.")
    dim: int | None = Field(
        8, ge=1, le=1024, description="Embedding dimension; 0/None gives a one-hot of the bins."
    )

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"a cross names each column once; got {value}")
        return value


class FeaturesConfig(Section):
    """``[features]``: the feature spec. Every other key is a column name.

    ``include = "all"`` (the default) uses every column except the label, the
    timestamp and ``exclude``, with inferred options unless the column is listed;
    ``include = "listed"`` uses only the listed columns.

    Example:
        >>> f = FeaturesConfig.model_validate({"age": {"transform": "bucketize"},
        ...                                    "exclude": ["fnlwgt"]})
        >>> f.features["age"].transform, f.exclude
        ('bucketize', ['fnlwgt'])
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    __pydantic_extra__: dict[str, FeatureConfig] = Field(init=False)

    include: Literal["all", "listed"] = "all"
    exclude: list[str] = Field(default_factory=list)
    crosses: list[CrossConfig] = Field(default_factory=list)

    @property
    def features(self) -> dict[str, FeatureConfig]:
        """The listed features, in file order."""
        return dict(self.__pydantic_extra__ or {})


class EarlyStoppingConfig(Section):
    """``[model.early_stopping]``: stop when the validation metric stops improving."""

    monitor: str = Field("val_loss", description="A logged metric, e.g. 'val_loss', 'val_auc'.")
    patience: int = Field(3, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = Field(True, description="End with the best epoch's weights.")


class ModelConfig(Section):
    """``[model]``: task, architecture and how to fit it."""

    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto", description="auto: binary/multiclass for a text label, regression for numbers."
    )
    builder: str = Field(
        "mlp", description="'mlp' or 'package.module:function' returning the model body."
    )
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    activation: str = "relu"
    batch_norm: bool = False
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0, description="Decoupled weight decay (adamw).")
    schedule: Literal["constant", "cosine", "exponential"] = "cosine"
    decay_rate: float = Field(0.9, gt=0.0, le=1.0, description="Per-epoch factor (exponential).")
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    class_weight: Literal["none", "balanced"] | dict[str, float] = "none"
    early_stopping: EarlyStoppingConfig | None = None
    validation_split: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int | None = Field(42, ge=0, description="Seeds every RNG; runs are bit-identical.")
    threads: int | None = Field(None, ge=1, description="TensorFlow threads; default all cores.")
    memory_limit_mb: float = Field(
        2048.0, gt=0.0, description="Parquet training data above this is streamed, not loaded."
    )
    parity_records: int = Field(200, ge=0, description="Records in the train/serve parity check.")

    @field_validator("hidden")
    @classmethod
    def _positive_units(cls, value: list[int]) -> list[int]:
        if any(units < 1 for units in value):
            raise ValueError(
                f"hidden layer sizes must be >= 1, e.g. hidden = [128, 64]; got {value}"
            )
        return value

    @field_validator("builder")
    @classmethod
    def _builder_shape(cls, value: str) -> str:
        if value != "mlp" and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise ValueError(
                "must be 'mlp' or an import path 'package.module:function', e.g. "
                "builder = 'my_models.tabular:build'"
            )
        return value

    @model_validator(mode="after")
    def _early_stopping_needs_validation(self) -> ModelConfig:
        if self.early_stopping is not None and self.validation_split == 0.0:
            raise ValueError("early_stopping needs a validation split; set validation_split = 0.1")
        return self


class ServingConfig(Section):
    """``[serving]``: dynamic batching, backpressure, registry following and the prediction log."""

    # Defaults by measurement (benchmarks/bench_serving.py, Adult model, 2 CPUs): one signature
    # call costs ~1.8 ms at 1 row, ~2.9 ms at 64 and ~3.5 ms at 256, so merging up to 256 rows
    # is nearly free; the timeout only applies while another batch is running.
    max_batch_size: int = Field(256, ge=1, le=65536, description="Rows merged into one inference.")
    batch_timeout_ms: float = Field(
        2.0,
        ge=0.0,
        le=10_000.0,
        description="Longest wait for more rows while another batch is running.",
    )
    max_queue: int = Field(
        1024, ge=1, description="Requests waiting per model version; beyond it: 503 + Retry-After."
    )
    deadline_ms: float = Field(
        5000.0,
        gt=0.0,
        description="Per-request deadline; past it: 504, work dropped if not started.",
    )
    # One batch at a time measured best on 2 CPUs (TensorFlow already uses every core per
    # call); more can help on larger machines.
    inference_threads: int = Field(1, ge=1, le=64, description="Batches running at once.")
    poll_interval_s: float = Field(
        5.0, gt=0.0, description="How often the deployment record is read for changes."
    )
    warmup_requests: int = Field(
        8, ge=0, le=10_000, description="Requests run on a new version before it takes traffic."
    )
    log_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of requests written to the prediction log."
    )
    log_url: str | None = Field(
        None, description="Prediction log folder; default <home>/predictions."
    )
    log_buffer: int = Field(10_000, ge=1, description="Rows held for the log; beyond it rows drop.")
    log_flush_rows: int = Field(1000, ge=1, description="Rows per Parquet file.")
    log_flush_s: float = Field(10.0, gt=0.0, description="Longest wait before writing a file.")
    body_limit_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    admin_token: str | None = Field(
        None, description="Bearer token of the admin endpoints (prefer the environment variable)."
    )
    admin_token_env: str = Field(
        "MOORING_ADMIN_TOKEN", description="Environment variable holding the admin token."
    )
    # The input contract at the door. Values outside the training range or categories never
    # seen in training are served by default (and counted in mooring_contract_violations_total):
    # the model handles them (clipping, the OOV bucket), the world changes faster than the
    # schema, and a server that rejects a new category turns a drift into an outage.
    contract_checks: bool = Field(
        True,
        description="Check numeric ranges and categories against the version's stored contract.",
    )
    out_of_range: Literal["serve", "reject"] = Field(
        "serve", description="A number outside the contract's [min, max]: serve and count, or 400."
    )
    unseen_category: Literal["serve", "reject"] = Field(
        "serve", description="A category outside the contract's domain: serve and count, or 400."
    )
    nan_policy: Literal["missing", "reject"] = Field(
        "missing", description="The NaN literal (and binary NaN): a missing value, or 400."
    )
    infinity_policy: Literal["reject", "missing"] = Field(
        "reject", description="Infinity / -Infinity: 400, or treated as a missing value."
    )


# --- [monitoring.slo], [monitoring.alerts], [monitoring.retrain], [rollout] ----------------------
def _seconds(value: Any) -> Any:
    """A duration given as seconds (number) or text such as '30s', '5m', '24h'."""
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0.0)]


def _off(value: Any) -> Any:
    """``false`` turns an optional check off (TOML has no null)."""
    return None if value is False else value


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

    _objectives_off = field_validator("availability", "latency_ms", mode="before")(_off)


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
    data: str | None = Field(None, description="Fresh training data for the default command.")
    command: list[str] | None = Field(
        None,
        description="Command to run; placeholders {config} {data} {model} {version} {home} "
        "{reason}. Default: python -m mooring run --config {config} --train-data {data}.",
    )
    cooldown: Duration = Field(86400.0, description="Least time between two runs.")
    timeout: Duration = Field(21600.0, description="A run taking longer is stopped.")

    _drop_off = field_validator("metric_drop", mode="before")(_off)

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
        0.02, ge=0, le=1, description="Share of categories never seen in training."
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
        description="Rows needed (overall, per segment) before judging; fewer: insufficient data.",
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
    prediction: bool = Field(
        True, description="Also compare the model's outputs with their evaluation-time values."
    )
    feedback_url: str | None = Field(
        None, description="Folder (or fsspec URL) of label feedback; default <home>/feedback."
    )
    live_min_labels: int = Field(
        100, ge=1, description="Labelled predictions needed before live metrics are computed."
    )
    slo: SLOConfig = Field(default_factory=SLOConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


# --- [rollout] (canary steps and guardrails) -----------------------------------------------------
class GuardrailsConfig(Section):
    """``[rollout.guardrails]``: canary vs production; one breach rolls the canary back.

    Setting a guardrail to ``false`` turns it off.
    """

    min_errors: int = Field(
        5, ge=1, description="Canary 5xx answers needed before the error guardrails judge."
    )
    error_rate_increase: float | None = Field(
        0.01, ge=0.0, le=1.0, description="Breach: canary error rate − production's above this."
    )
    error_rate_ratio: float | None = Field(
        2.0, gt=1.0, description="Breach: canary error rate above this × production's."
    )
    p99_latency_ratio: float | None = Field(
        1.5, gt=1.0, description="Breach: canary p99 inference latency above this × production's."
    )
    p99_latency_slack_ms: float = Field(
        5.0, ge=0.0, description="…and more than this many ms above it (bucket resolution)."
    )
    min_latency_samples: int = Field(
        50, ge=1, description="Timed batches per version before the latency guardrail judges."
    )
    prediction_js: float | None = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="Breach: Jensen-Shannon distance of canary vs production outputs above this.",
    )
    min_prediction_rows: int = Field(
        200, ge=10, description="Logged predictions per version before prediction drift judges."
    )
    live_metric: str = Field("auc", description="Live metric compared when labels exist.")
    live_metric_drop: float | None = Field(
        0.02, gt=0.0, description="Breach: canary's live metric worse than production's by this."
    )
    min_labels: int = Field(200, ge=1, description="Labels per version before judging.")

    _guardrails_off = field_validator(
        "error_rate_increase",
        "error_rate_ratio",
        "p99_latency_ratio",
        "prediction_js",
        "live_metric_drop",
        mode="before",
    )(_off)


class RolloutConfig(Section):
    """``[rollout]``: how a canary advances to production, and when it is rolled back."""

    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100],
        description="Canary weights in percent, in order; the last step promotes.",
    )
    min_requests: int = Field(
        200, ge=1, description="Canary requests at a step before it may advance."
    )
    min_step_duration: Duration = Field(
        300.0, description="Least time at a step before it may advance ('5m' or seconds)."
    )
    metrics_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8501/metrics"],
        description="Prometheus /metrics of every replica; counters are summed.",
    )
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)

    @field_validator("steps")
    @classmethod
    def _increasing_percentages(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError(
                "steps are increasing canary percentages between 1 and 100, "
                "e.g. steps = [5, 25, 50, 100]"
            )
        return value


# --- [pipeline] (step caching, replay, cost) -----------------------------------------------------
class PipelineConfig(Section):
    """``[pipeline]``: ``mooring run``'s caching, replay test and cost accounting."""

    cache: bool = Field(
        True, description="Reuse a step's outputs while the fingerprint of its inputs is unchanged."
    )
    code_fingerprint: Literal["source", "package"] = Field(
        "source",
        description="What 'code version' means in step fingerprints: the mooring version plus "
        "a sha256 of its Python source (source), or the version alone (package).",
    )
    deploy: bool = Field(
        True,
        description="Deploy a blessed model: the first as production, later ones as a canary at "
        "[rollout] steps[0] percent. false: register only.",
    )
    replay: bool = Field(
        True, description="Replay recent production requests on the candidate before deploying."
    )
    replay_rows: int = Field(
        1000, ge=1, le=1_000_000, description="Rows taken from the end of the prediction log."
    )
    replay_latency_requests: int = Field(
        100, ge=0, le=100_000, description="Logged requests re-sent one by one to time both models."
    )
    replay_max_flip_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Fail when more replayed decisions change than this."
    )
    replay_max_mean_abs_diff: float | None = Field(
        None,
        ge=0.0,
        description="Fail when the mean |candidate − production| score on replayed rows is above.",
    )
    replay_max_latency_ratio: float | None = Field(
        None, gt=0.0, description="Fail when candidate p95 latency ÷ production p95 is above."
    )
    cpu_hour_price: float | None = Field(
        None, ge=0.0, description="Price of one CPU-hour (any currency) for the run's cost figures."
    )
    serving_cpus: float = Field(
        1.0, gt=0.0, description="CPUs a server replica holds, for the cost per 1,000 predictions."
    )
    metrics_url: str | None = Field(
        None,
        description="A running server's /metrics URL; its inference time per row gives the cost "
        "per 1,000 predictions.",
    )


# --- [export] (TF Lite) --------------------------------------------------------------------------
class ExportConfig(Section):
    """``[export]``: TF Lite conversion and its accuracy gate."""

    mode: Literal["float16", "dynamic", "int8"] = Field(
        "dynamic",
        description="float16 (half-precision weights), dynamic (int8 weights) or int8 "
        "(int8 weights and activations, calibrated on representative rows).",
    )
    representative_rows: int = Field(
        300, ge=1, le=100_000, description="Rows that calibrate int8 ranges (random sample)."
    )
    calibration_data: str | None = Field(
        None, description="Rows to calibrate int8 on; default [data] train."
    )
    eval_data: str | None = Field(
        None, description="Labelled rows both models are scored on; default [data] eval."
    )
    metrics: list[str] | None = Field(
        None,
        description="Gated metrics; default auc + accuracy (binary), accuracy (multiclass), "
        "r2 (regression).",
    )
    max_metric_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Largest allowed worsening of each gated metric (0.01 = 1 percentage point).",
    )
    latency_rows: int = Field(
        200, ge=0, le=100_000, description="Single-row calls timed per runtime (0: skip)."
    )
    seed: int = Field(0, ge=0, description="Seed of the calibration sample.")
    # Measured on TF 2.21: an int8 ONE_HOT keeps its on/off values' scale while its output
    # is read with the next op's, so one-hot blocks come out as 0.62/4.76 instead of 0/1.
    int8_float_ops: list[str] = Field(
        default_factory=lambda: ["ONE_HOT"],
        description="TF Lite ops kept in float in int8 mode.",
    )


class MooringConfig(Section):
    """The whole project file. ``root`` is the folder relative paths are resolved from."""

    project: ProjectConfig
    data: DataConfig
    contract: ContractConfig = Field(default_factory=ContractConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    root: Path = Field(default=Path("."), exclude=True)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, root: Path | None = None, source: str = "mooring.toml"
    ) -> MooringConfig:
        """Validate a parsed mapping; raise :class:`ConfigError` naming every bad key."""
        if "root" in mapping:
            raise ConfigError(f"{source}: 'root' is not a section; remove it")
        try:
            cfg = cls.model_validate(dict(mapping))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, cls, source)) from None
        cfg.root = (root or Path(".")).resolve()
        return cfg

    def path(self, value: str) -> Path:
        """Resolve a path from the file relative to the file's folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def home(self) -> Path:
        """The project's home folder (state, schema, statistics, reports)."""
        return self.path(self.project.home)


def load_config(path: str | Path) -> MooringConfig:
    """Read and validate a mooring.toml.

    Example:
        >>> cfg = load_config("examples/adult/mooring.toml")  # doctest: +SKIP
        >>> cfg.project.name
        'income'
    """
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(
            f"config file '{file}' does not exist; create one (see examples/adult/mooring.toml) "
            "or pass --config PATH"
        )
    try:
        mapping = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; save the file as UTF-8") from None
    return MooringConfig.from_mapping(mapping, root=file.parent, source=str(file))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'36h' → 129600.0 seconds. Units: s, m, h, d, w.

    >>> parse_duration("2d")
    172800.0
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as '30m', '36h' or '7d', got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _section_name(loc: tuple[int | str, ...]) -> str:
    parents = [str(p) for p in loc[:-1]]
    return "[" + ".".join(parents) + "]" if parents else "top level"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Walk field annotations to find the model that owns the last key of ``loc``."""
    current: Any = model
    free_key = False
    for part in loc[:-1]:
        if free_key:
            # The key of a dict of models (contract.columns.NAME) is a user's name.
            free_key = False
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                # Typed free-form keys (features.NAME) name their model in __pydantic_extra__;
                # a plain dict of models (contract.columns.NAME) does not.
                extra = typing.get_type_hints(current).get("__pydantic_extra__")
                args = getattr(extra, "__args__", ())
                if not (args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel)):
                    return None
                current = args[-1]
                continue
            current = field.annotation
            args = getattr(current, "__args__", ())
            if args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
                free_key = typing.get_origin(current) is dict
                current = args[-1]
        elif isinstance(current, type):
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line per problem: where, what was received, what is expected, the fix."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        key = str(loc[-1]) if loc else "?"
        where = _section_name(loc)
        value = err.get("input")
        kind = err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            known = (
                sorted((f.alias or n) for n, f in owner.model_fields.items() if not f.exclude)
                if owner
                else []
            )
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            lines.append(f"{where}: unknown key '{key}'; {hint} Remove or rename it.")
        elif kind == "missing":
            lines.append(f"{where}: required key '{key}' is missing; add {key} = ... to {where}.")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(
                f"{where} key '{key}': {msg}; got {value!r} ({type(value).__name__}). "
                f"Fix the value in {source}."
            )
    header = f"{source}: {len(lines)} configuration problem{'s' if len(lines) != 1 else ''}"
    return header + ":\n  - " + "\n  - ".join(lines)
