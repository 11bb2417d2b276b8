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

    name: str = Field(
        description="Model name in the registry and in serving URLs: letters, digits, _ . - "
        "(at most 128 characters)."
    )
    home: str = Field(
        ".mooring",
        description="Folder for statistics, schema, reports, the default registry and artifacts.",
    )
    registry: str | None = Field(
        None, description="SQLAlchemy URL of the registry; default sqlite:///<home>/registry.db."
    )
    artifacts: str | None = Field(
        None, description="fsspec URL for model artifacts; default <home>/artifacts."
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Where stats, validate, drift, score and the pipeline's statistics run: "
        "local (this machine's cores) or ray (a Ray cluster; pip install 'mooring-ml[ray]').",
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

    train: str = Field(
        description="Training data: a CSV (.csv, .csv.gz, …) or Parquet file, path or fsspec URL."
    )
    eval: str | None = Field(
        None,
        description="Evaluation data, validated against the training data (schema and skew); "
        "unset: none.",
    )
    label: str | None = Field(None, description="Label column.")
    positive: str | None = Field(None, description="Positive class value for binary tasks.")
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="File format: auto (by extension and content), csv or parquet."
    )
    delimiter: str = Field(",", description="CSV field delimiter (one character).")
    header: bool = Field(True, description="Whether the first CSV line names the columns.")
    na_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NA_VALUES),
        description="Tokens read as a missing value; a list here replaces the default one.",
    )
    trim_whitespace: bool = Field(
        True, description="Strip spaces around column names and text values."
    )
    timestamp: str | None = Field(
        None,
        description="Event-time column: enables freshness checks (max_age) and time windows; "
        "it is not a feature.",
    )
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

    type: ColumnType | None = Field(
        None, description="Column type: integer, float, string, boolean or timestamp."
    )
    required: bool | None = Field(
        None, description="Whether a file without this column is an error (inferred: true)."
    )
    max_null_fraction: float | None = Field(
        None, ge=0.0, le=1.0, description="Largest allowed share of missing values (0 to 1)."
    )
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    domain: list[str] | None = Field(None, description="The allowed values of a string column.")
    severity: Severity | None = Field(
        None, description="Severity of this column's distributional anomalies: warning or error."
    )
    js_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="Overrides [contract] js_threshold for this column."
    )
    linf_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="Overrides [contract] linf_threshold for this column."
    )
    psi_threshold: float | None = Field(
        None, gt=0.0, description="Overrides [contract] psi_threshold for this column."
    )


class ContractConfig(Section):
    """``[contract]``: how the schema is inferred and how strictly data is held to it."""

    schema_file: str | None = Field(
        None,
        alias="schema",
        description="The project's contract file; unset: the first run infers it and saves "
        "it under home. mooring schema accept changes it.",
    )
    critical: list[str] = Field(
        default_factory=list,
        description="Columns whose anomalies are errors whatever their kind (fail closed); "
        "the server refuses (400) a request value outside their contract.",
    )
    # Structural anomalies (a required or label column missing, wrong types beyond
    # type_tolerance, no rows, a label class outside the schema) are errors whatever
    # severity says; severity governs the distributional ones.
    severity: Severity = Field(
        "warning",
        description="Severity of distributional anomalies on other columns: warning or error "
        "(structural ones are always errors).",
    )
    type_tolerance: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Share of a column's values that may have the wrong type (read as "
        "missing, reported) before it is an error.",
    )
    max_null_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="One allowed null fraction for every column instead of the inferred ones; "
        "unset: inferred per column.",
    )
    null_slack: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Added to the observed null fraction of columns that have missing values.",
    )
    range_margin: float = Field(
        0.1,
        ge=0.0,
        description="Inferred numeric ranges widen the observed range by this fraction of its "
        "span.",
    )
    max_domain_size: int = Field(
        100, ge=1, description="String columns with at most this many values get a domain."
    )
    js_threshold: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Jensen-Shannon distance (base 2, 0 to 1) above which a column has drifted "
        "from the baseline, in the library's validate(baseline=...); mooring run and mooring "
        "validate judge distributions on [monitoring.thresholds] beyond sampling noise.",
    )
    linf_threshold: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="L-infinity distance (largest change of one value's share) above which a "
        "categorical column has drifted, in the library's validate(baseline=...).",
    )
    psi_threshold: float = Field(
        0.2,
        gt=0.0,
        description="Population stability index above which a numeric column has drifted (0.1 "
        "to 0.2 is a moderate shift, above 0.2 a large one), in the library's "
        "validate(baseline=...).",
    )
    min_row_ratio: float = Field(
        0.1, ge=0.0, description="Fewest rows allowed, as a share of the baseline's rows."
    )
    max_row_ratio: float = Field(
        10.0, gt=0.0, description="Most rows allowed, as a multiple of the baseline's rows."
    )
    max_age: str | None = Field(
        None,
        description="Freshness bound on [data] timestamp, such as '36h' or '7d'; unset: no "
        "freshness check.",
    )
    columns: dict[str, ColumnOverride] = Field(
        default_factory=dict,
        description="Per-column overrides of what was inferred, keyed by column name.",
    )

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value
