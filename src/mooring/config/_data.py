"""``[project]``, ``[data]`` and ``[contract]``: the model's name, its data and their rules."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
)

from mooring.config._base import (
    DEFAULT_NA_VALUES,
    NAME_PATTERN,
    ColumnType,
    Section,
    Severity,
    parse_duration,
)


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
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Where stats, validate, drift, score and the pipeline's statistics run: "
        "local (this machine's cores) or ray (a Ray cluster; pip install 'mooring[ray]').",
    )
    engine_workers: int | None = Field(
        None,
        ge=1,
        description="Processes (local) or concurrent tasks (ray) for sharded work; "
        "default: the usable cores, or the Ray cluster's CPUs.",
    )
    ray_address: str | None = Field(
        None,
        description="The Ray cluster to join (e.g. 127.0.0.1:6379 or auto); default: "
        "RAY_ADDRESS, else a private Ray on this machine.",
    )
    audit_key_file: str | None = Field(
        None,
        description="File holding the audit log's HMAC key as 64 hex digits; default "
        "<home>/audit.key, written by mooring init, else by the first write to a log with no "
        "keyed event (mode 0600). MOORING_AUDIT_KEY, holding the same text, wins over it.",
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
    # Structural anomalies (a required or label column missing, wrong types beyond
    # type_tolerance, no rows, a label class outside the schema) are errors whatever
    # severity says; severity governs the distributional ones.
    severity: Severity = "warning"
    type_tolerance: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Share of a column's values that may have the wrong type (read as "
        "missing, reported) before it is an error.",
    )
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
