"""``[features]`` and ``[model]``: per-column encodings, crosses and the network."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mooring.config._base import Section

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
    buckets: int | None = Field(
        None,
        ge=2,
        le=1000,
        description="Quantile buckets for bucketize, boundaries from the statistics (default 10).",
    )
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

    Examples:
        >>> f = FeaturesConfig.model_validate({"age": {"transform": "bucketize"},
        ...                                    "exclude": ["fnlwgt"]})
        >>> f.features["age"].transform, f.exclude
        ('bucketize', ['fnlwgt'])
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    __pydantic_extra__: dict[str, FeatureConfig] = Field(init=False)

    include: Literal["all", "listed"] = Field(
        "all",
        description="all: every column but the label, the timestamp and exclude is a feature; "
        "listed: only the columns listed in [features].",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Columns left out of the model (wins over a listing)."
    )
    crosses: list[CrossConfig] = Field(
        default_factory=list, description="Hashed crosses of two or more columns, as extra inputs."
    )

    @property
    def features(self) -> dict[str, FeatureConfig]:
        """The listed features, in file order."""
        return dict(self.__pydantic_extra__ or {})


class EarlyStoppingConfig(Section):
    """``[model.early_stopping]``: stop when the validation metric stops improving."""

    monitor: str = Field("val_loss", description="A logged metric, e.g. 'val_loss', 'val_auc'.")
    patience: int = Field(
        3, ge=0, description="Checks without improvement of monitor before training stops."
    )
    min_delta: float = Field(
        0.0, ge=0.0, description="Smallest change of monitor that counts as an improvement."
    )
    restore_best: bool = Field(True, description="End with the best epoch's weights.")


class TreesConfig(Section):
    """``[model.gbt]``: gradient boosted trees (YDF, the ``trees`` extra), used when
    ``kind = "gbt"``."""

    num_trees: int = Field(
        300, ge=1, le=100_000, description="Most trees (early stopping may stop sooner)."
    )
    max_depth: int = Field(6, ge=1, le=64, description="Deepest a tree may grow (levels).")
    shrinkage: float = Field(0.1, gt=0.0, le=1.0, description="Learning rate of boosting.")
    min_examples: int = Field(5, ge=1, description="Fewest training rows in a leaf.")
    early_stopping: bool = Field(
        True, description="Stop adding trees when the validation loss stops improving."
    )
    early_stopping_patience: int = Field(
        30, ge=1, description="Trees without improvement before stopping."
    )
    subsample: float = Field(1.0, gt=0.0, le=1.0, description="Rows sampled per tree.")
    l2_regularization: float = Field(
        0.0, ge=0.0, description="L2 penalty on leaf values (0: none)."
    )
    max_vocab_count: int = Field(
        2000,
        ge=1,
        description="Most values kept per categorical column (rarer: out of vocabulary).",
    )


#: The metrics ``[model] select`` may name, per task, and whether higher is better.
SELECT_METRICS: dict[str, dict[str, bool]] = {
    "binary": {
        "auc": True,
        "pr_auc": True,
        "log_loss": False,
        "brier": False,
        "accuracy": True,
        "precision": True,
        "recall": True,
        "f1": True,
        "ece": False,
        "mce": False,
    },
    "multiclass": {
        "accuracy": True,
        "macro_f1": True,
        "micro_f1": True,
        "log_loss": False,
        "top_k_accuracy": True,
        "ece": False,
        "mce": False,
    },
    "regression": {"rmse": False, "mae": False, "r2": True, "mape": False},
}
#: Each selectable metric's direction (higher is better?), whatever the task.
METRIC_HIGHER_IS_BETTER: dict[str, bool] = {
    name: higher for metrics in SELECT_METRICS.values() for name, higher in metrics.items()
}
#: The metric a run selects by when ``select`` is unset: the task's primary metric.
PRIMARY_METRIC: dict[str, str] = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
# [model] keys a candidate cannot override: they describe the set, not one model.
_SET_KEYS = ("candidates", "select")


class CandidateConfig(Section):
    """``[[model.candidates]]``: one model of a run, a named table overriding ``[model]`` keys.

    ``name`` and ``kind`` are required; every other key is a ``[model]`` key (``hidden``,
    ``max_steps``, ``[model.candidates.gbt]`` …) that replaces the shared value for this
    candidate only.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="The candidate's name in reports and the run record, e.g. 'linear'.",
    )
    kind: Literal["mlp", "linear", "gbt"] = Field(description="mlp, linear or gbt.")

    @property
    def overrides(self) -> dict[str, Any]:
        """The ``[model]`` keys this candidate sets (its kind included, its name not)."""
        return {"kind": self.kind, **dict(self.__pydantic_extra__ or {})}


# Automatic training budget (when neither epochs nor max_steps is set): see plan_training.
MIN_BATCH, MAX_BATCH, ROWS_PER_BATCH_STEP = 32, 4096, 128
MIN_STEPS, MAX_STEPS, BUDGET_PASSES = 2_000, 50_000, 10
ROUND_STEPS = 25  # optimizer steps between two validation checks, at least
AUTO_PATIENCE = 10  # rounds without improvement before stopping (automatic budget)
#: Passes over the rows a ``kind = "linear"`` fit by Newton's method takes at most
#: (mooring.training._linear); it stops when converged, after 5 to 10 on most tables.
LINEAR_MAX_PASSES = 50


@dataclass(frozen=True)
class TrainingPlan:
    """How many optimizer steps, in which batches, checked how often (see plan_training).

    A *round* is what Keras calls an epoch: ``passes_per_round`` passes over the
    training rows, then a validation check and a checkpoint.
    """

    batch_size: int
    steps_per_pass: int
    passes_per_round: int
    rounds: int
    early_stopping: EarlyStoppingConfig | None
    reason: str

    @property
    def steps_per_round(self) -> int:
        return self.steps_per_pass * self.passes_per_round

    @property
    def total_steps(self) -> int:
        return self.steps_per_round * self.rounds


def auto_batch_size(train_rows: int) -> int:
    """A power of two near ``rows / 128``, between 32 and 4096.

    Examples:
        >>> auto_batch_size(120), auto_batch_size(30_000), auto_batch_size(10_000_000)
        (32, 256, 4096)
    """
    target = max(1.0, train_rows / ROWS_PER_BATCH_STEP)
    return int(min(MAX_BATCH, max(MIN_BATCH, 2 ** round(math.log2(target)))))


def plan_training(config: ModelConfig, train_rows: int) -> TrainingPlan:
    """The optimizer steps a network trains for, from ``[model]`` and the training rows.

    Precedence: ``epochs`` (passes over the data, no automatic early stopping) over
    ``max_steps`` over the automatic budget: ``max(2,000, 10 passes)`` steps, at most
    50,000, checked on the validation split every ``≥ 25`` steps with early stopping
    (patience 10 checks) and the best weights restored. ``batch_size`` is explicit or
    scaled to the rows (:func:`auto_batch_size`). A configured ``[model.early_stopping]``
    always wins. A ``kind = "linear"`` model is solved, not stepped: one round per pass
    over every labelled row, at most :data:`LINEAR_MAX_PASSES`.

    Examples:
        >>> plan = plan_training(ModelConfig(), 117)
        >>> plan.batch_size, plan.steps_per_pass, plan.passes_per_round, plan.rounds
        (32, 4, 7, 72)
    """
    rows = max(1, int(train_rows))
    if config.kind == "linear":
        # Solved, not stepped: one round per pass over every labelled row.
        return TrainingPlan(
            rows,
            1,
            1,
            LINEAR_MAX_PASSES,
            None,
            "solved on the encoded features: normal equations (regression) or Newton's "
            f"method, at most {LINEAR_MAX_PASSES} passes over the rows, until converged; "
            "epochs, max_steps, batch_size and the optimizer do not apply",
        )
    batch = config.batch_size or auto_batch_size(rows)
    per_pass = max(1, math.ceil(rows / batch))
    stopping = config.early_stopping
    how = f"batch {batch}" + (" (set)" if config.batch_size else f" (auto for {rows:,} rows)")
    if config.epochs is not None:
        return TrainingPlan(
            batch, per_pass, 1, config.epochs, stopping, f"{config.epochs} epoch(s) (set); {how}"
        )
    if config.max_steps is not None:
        budget, source = config.max_steps, "set"
    else:
        budget = min(MAX_STEPS, max(MIN_STEPS, BUDGET_PASSES * per_pass))
        source = "auto"
    passes = max(1, math.ceil(ROUND_STEPS / per_pass))
    rounds = max(1, math.ceil(budget / (per_pass * passes)))
    if stopping is None and config.validation_split > 0:
        stopping = EarlyStoppingConfig(patience=AUTO_PATIENCE)
    return TrainingPlan(
        batch,
        per_pass,
        passes,
        rounds,
        stopping,
        f"{rounds * passes * per_pass:,} optimizer steps ({source}) in {rounds} rounds of "
        f"{passes} pass(es); {how}"
        + ("; early stopping on the validation split" if stopping is not None else ""),
    )


class ModelConfig(Section):
    """``[model]``: task, architecture and how to fit it."""

    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto", description="auto: binary/multiclass for a text label, regression for numbers."
    )
    kind: Literal["mlp", "linear", "gbt"] = Field(
        "mlp",
        description="mlp: a network on the preprocessing layers; linear: one dense layer on "
        "them (logistic/linear regression); gbt: gradient boosted trees (YDF) on the raw "
        "columns, with the trees extra (pip install 'mooring-ml[trees]').",
    )
    builder: str = Field(
        "mlp", description="'mlp' or 'package.module:function' returning the model body."
    )
    hidden: list[int] = Field(
        default_factory=lambda: [128, 64],
        description="Units of each hidden layer of the built-in MLP, first to last.",
    )
    dropout: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of units dropped after each hidden layer."
    )
    activation: str = Field(
        "relu", description="Keras activation of the hidden layers, e.g. relu, gelu."
    )
    batch_norm: bool = Field(False, description="Batch normalisation after each hidden layer.")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field(
        "adam", description="Optimizer of the network: adam, adamw, sgd or rmsprop."
    )
    learning_rate: float = Field(1e-3, gt=0.0, description="Initial learning rate.")
    weight_decay: float = Field(0.0, ge=0.0, description="Decoupled weight decay (adamw).")
    schedule: Literal["constant", "cosine", "exponential"] = Field(
        "cosine", description="Learning-rate schedule: constant, cosine or exponential."
    )
    decay_rate: float = Field(0.9, gt=0.0, le=1.0, description="Per-epoch factor (exponential).")
    epochs: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Passes over the data, without automatic early stopping; unset: a step "
        "budget scaled to the rows. Not with max_steps.",
    )
    max_steps: int | None = Field(
        None, ge=1, le=100_000_000, description="Optimizer steps; default: scaled to the rows."
    )
    batch_size: int | None = Field(
        None, ge=1, le=1_000_000, description="Default: scaled to the rows (32 … 4096)."
    )
    class_weight: Literal["none", "balanced"] | dict[str, float] = Field(
        "none",
        description="Class weights of a classifier: none, balanced, or a weight per label value.",
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        None,
        description="Stop when the validation metric stops improving; unset: on (patience 10 "
        "checks) with the automatic budget, off with epochs.",
    )
    validation_split: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Share of training rows held out for early stopping (networks and trees).",
    )
    seed: int | None = Field(42, ge=0, description="Seeds every RNG; runs are bit-identical.")
    threads: int | None = Field(None, ge=1, description="TensorFlow threads; default all cores.")
    memory_limit_mb: float = Field(
        2048.0, gt=0.0, description="Parquet training data above this is streamed, not loaded."
    )
    parity_records: int = Field(200, ge=0, description="Records in the train/serve parity check.")
    gbt: TreesConfig = Field(
        default_factory=TreesConfig, description="The gradient boosted trees of kind = 'gbt'."
    )
    candidates: list[CandidateConfig] = Field(
        default_factory=list,
        description="Several models trained on the same data in one run; the best that passes "
        "the gates by `select` is registered. Empty: the one model [model] describes.",
    )
    select: str | None = Field(
        None,
        description="The metric that picks among candidates (auc, log_loss, accuracy, rmse …); "
        "ties go to the lower cost per 1,000 predictions. Default: the task's primary metric.",
    )

    @field_validator("select")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRIC_HIGHER_IS_BETTER:
            raise ValueError(
                f"select = {value!r} is not a metric mooring computes; choose one of "
                + ", ".join(sorted(METRIC_HIGHER_IS_BETTER))
            )
        return value

    @field_validator("candidates")
    @classmethod
    def _distinct_candidates(cls, value: list[CandidateConfig]) -> list[CandidateConfig]:
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"candidate names must be distinct; {twice} appear more than once")
        for candidate in value:
            wrong = [k for k in candidate.overrides if k in _SET_KEYS]
            if wrong:
                raise ValueError(
                    f"candidate {candidate.name!r}: {wrong} describe the whole set; set them "
                    "in [model], not in a candidate"
                )
        return value

    def selection_metric(self, task: str) -> str:
        """The metric candidates are compared on: ``select`` or the task's primary metric.

        Raises:
            ValueError: ``select`` names a metric the task does not compute.
        """
        if self.select is None:
            return PRIMARY_METRIC[task]
        if self.select not in SELECT_METRICS[task]:
            raise ValueError(
                f"[model] select = {self.select!r} is not a {task} metric; choose one of "
                + ", ".join(SELECT_METRICS[task])
            )
        return self.select

    def resolved_candidates(self) -> list[tuple[str, ModelConfig]]:
        """Each candidate's own ``[model]``: the shared keys with its overrides applied.

        A candidate's table (``[model.candidates.gbt]``) is merged key by key into the
        shared one. Without ``[[model.candidates]]``: the one model, named after its kind.
        """
        if not self.candidates:
            return [(self.kind, self)]
        return [(c.name, self._resolve(c)) for c in self.candidates]

    def _resolve(self, candidate: CandidateConfig) -> ModelConfig:
        merged = self.model_dump(exclude=set(_SET_KEYS), exclude_unset=True)
        for key, value in candidate.overrides.items():
            old = merged.get(key)
            merged[key] = (
                {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
            )
        if "builder" not in candidate.overrides and candidate.kind != "mlp":
            merged.pop("builder", None)
        return ModelConfig.model_validate(merged)

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
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError(
                "set epochs (passes over the data) or max_steps (optimizer steps), not both"
            )
        if self.builder != "mlp" and self.kind != "mlp" and not self.candidates:
            raise ValueError(
                f"builder = {self.builder!r} replaces the MLP's body; it does not apply to "
                f"kind = {self.kind!r} — remove builder or set kind = 'mlp'"
            )
        if self.select is not None and self.task != "auto":
            self.selection_metric(self.task)
        for candidate in self.candidates:
            try:
                self._resolve(candidate)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "model"
                raise ValueError(f"candidate {candidate.name!r}: {where}: {first['msg']}") from None
        return self
