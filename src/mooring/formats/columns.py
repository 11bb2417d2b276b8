"""Client values in JSON bodies: how they are named in error messages."""

from __future__ import annotations

from typing import Any

__all__ = ["describe"]


def describe(value: Any) -> str:
    """A short, safe rendering of a client value for an error message.

    >>> describe("x" * 100)[-5:]
    'xx...'
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
