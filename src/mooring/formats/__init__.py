"""Formats that cross layers, each with one home: model-free and TensorFlow-free at import."""

from __future__ import annotations

from mooring.formats.files import atomic_write, file_fingerprint, is_url, open_binary

__all__ = ["atomic_write", "file_fingerprint", "is_url", "open_binary"]
