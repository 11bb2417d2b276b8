"""Formats that cross layers, each with one home: model-free and TensorFlow-free at import.

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

from __future__ import annotations

__all__: list[str] = []
