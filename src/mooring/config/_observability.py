"""``[observability]``: OpenTelemetry traces of served requests and pipeline runs (optional)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from mooring.config._base import Section


class ObservabilityConfig(Section):
    """``[observability]``: where traces go. Without ``otlp_endpoint`` tracing is off.

    Examples:
        >>> ObservabilityConfig(otlp_endpoint="http://collector:4318").traces_url
        'http://collector:4318/v1/traces'
    """

    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector, e.g. http://localhost:4318 (/v1/traces is added); "
        "unset: no traces.",
    )
    service_name: str = Field("mooring", min_length=1, description="service.name of the spans.")
    # A ratio, not a rate: the sampler keeps whole traces (a request's spans, a run's steps).
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of requests and runs traced."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent to the collector (an API key, for example).",
    )
    export_timeout_s: float = Field(
        10.0, gt=0.0, description="Longest wait for the collector to take one export."
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http:// or https:// URL such as 'http://localhost:4318'")
        return value

    @property
    def enabled(self) -> bool:
        """True when traces are exported (``otlp_endpoint`` is set)."""
        return self.otlp_endpoint is not None

    @property
    def traces_url(self) -> str | None:
        """The URL spans are posted to: the endpoint plus ``/v1/traces`` unless it has it."""
        if self.otlp_endpoint is None:
            return None
        base = self.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
