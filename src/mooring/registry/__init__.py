"""Model registry: immutable versions with lineage, aliases, deployments and an audit log.

Light to import (no TensorFlow): the server and subprocesses open it directly.

Examples:
    >>> from mooring.registry import Registry
    >>> reg = Registry.open("sqlite:///.mooring/registry.db")  # doctest: +SKIP
    >>> reg.get("income", alias="production").lineage.data_fingerprint  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry._records import Deployment, ModelSummary, ModelVersion
from mooring.registry._registry import Registry

__all__ = [
    "Deployment",
    "ModelSummary",
    "ModelVersion",
    "Registry",
    "RunRecord",
    "VersionRecord",
]
