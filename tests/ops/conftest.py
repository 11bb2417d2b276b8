"""Ops fixtures: the real SavedModels the serving tests use (``model_dirs``)."""

from __future__ import annotations

from tests._support.server import model_dirs

__all__ = ["model_dirs"]  # a fixture, used by the tests here
