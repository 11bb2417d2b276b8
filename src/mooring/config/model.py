"""``[features]`` and ``[model]``: per-column encodings, crosses and the network."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
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
