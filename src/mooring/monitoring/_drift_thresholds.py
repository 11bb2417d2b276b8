"""The drift thresholds that decide for one column: ``[monitoring.thresholds]``, then the
column's own ``[monitoring.features.NAME]`` overrides. The drift check
(:mod:`mooring.monitoring._drift`) judges with them, and the calibration
(:mod:`mooring.monitoring._calibration`) suggests the smallest window whose natural
variation stays under them.
"""

from __future__ import annotations

from mooring.config._monitoring import FeatureDriftConfig, MonitoringConfig

__all__ = ["CATEGORICAL_METRICS", "NUMERIC_METRICS", "resolve_thresholds"]

NUMERIC_METRICS = ("psi", "jensen_shannon", "wasserstein", "ks", "out_of_range", "missing")
CATEGORICAL_METRICS = ("psi", "jensen_shannon", "linf", "unseen", "missing")


def resolve_thresholds(config: MonitoringConfig, name: str, kind: str) -> dict[str, float | None]:
    """The thresholds deciding for feature ``name`` of ``kind`` (numeric or categorical):
    defaults, then its overrides (None: the metric is ignored for it).

    Examples:
        >>> cfg = MonitoringConfig.model_validate({"features": {"age": {"psi": 0.3}}})
        >>> resolve_thresholds(cfg, "age", "numeric")["psi"]
        0.3
    """
    metrics = NUMERIC_METRICS if kind == "numeric" else CATEGORICAL_METRICS
    base = config.thresholds.model_dump()
    override: FeatureDriftConfig | None = config.features.get(name)
    out: dict[str, float | None] = {}
    for key in metrics:
        value = base[key]
        if override is not None:
            if getattr(override, key) is not None:
                value = getattr(override, key)
            if key in override.ignore:
                value = None
        out[key] = value
    return out
