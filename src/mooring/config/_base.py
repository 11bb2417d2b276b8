"""What every section shares: the base model, names, durations."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
Severity = Literal["error", "warning"]
ColumnType = Literal["integer", "float", "string", "boolean", "timestamp"]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


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


def _seconds(value: Any) -> Any:
    """A duration given as seconds (number) or text such as '30s', '5m', '24h'."""
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0.0)]


def off_when_false(value: Any) -> Any:
    """``false`` turns an optional check off (TOML has no null)."""
    return None if value is False else value
