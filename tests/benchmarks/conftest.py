"""Benchmark smoke-test fixtures: real SavedModels for the load generator's server."""

from __future__ import annotations

from tests._support.server import model_dirs

__all__ = ["model_dirs"]  # a fixture, used by the tests here
