"""Reading a stored JSON mapping into typed fields without losing a key of it.

A typed record keeps, beside its fields, the keys it did not type (``extra``: unknown keys,
and known keys whose value has the wrong type, as they were) and the names of the fields
the mapping lacked (``missing``). :func:`write_fields` then writes the mapping back as it
was read: a missing field stays missing, a wrong-typed value comes back at its place.

Examples:
    >>> checks = {"n": lambda v: isinstance(v, int), "s": lambda v: isinstance(v, str)}
    >>> typed, extra, missing = read_fields({"n": "x", "z": 1}, checks)
    >>> typed, extra, sorted(missing)
    ({}, {'n': 'x', 'z': 1}, ['s'])
    >>> write_fields({"n": 0, "s": ""}, extra, missing)
    {'n': 'x', 'z': 1}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Check",
    "is_bool",
    "is_mapping",
    "is_number",
    "is_optional_number",
    "is_optional_text",
    "is_text",
    "is_texts",
    "plain",
    "read_fields",
    "write_fields",
]

Check = Callable[[Any], bool]


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_optional_number(value: Any) -> bool:
    return value is None or is_number(value)


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def plain(value: Any) -> Any:
    """A mapping as a dict (a copy), a tuple as a list; anything else as it is."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def read_fields(
    data: Mapping[Any, Any], checks: Mapping[str, Check]
) -> tuple[dict[str, Any], dict[str, Any], frozenset[str]]:
    """``data`` as (the values that pass their field's check, every other key as it was,
    the fields ``data`` lacks)."""
    typed: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        check = checks.get(key) if isinstance(key, str) else None
        if check is not None and check(value):
            typed[key] = value
        else:
            extra[key] = value
    return typed, extra, frozenset(name for name in checks if name not in data)


def write_fields(
    values: Mapping[str, Any], extra: Mapping[str, Any], missing: frozenset[str]
) -> dict[str, Any]:
    """The stored mapping: ``values`` in order, a field in ``extra`` as it was read instead,
    the ``missing`` ones left out; then the rest of ``extra``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in extra:
            out[name] = extra[name]
        elif name not in missing:
            out[name] = plain(value)
    for key, value in extra.items():
        out.setdefault(key, value)
    return out
