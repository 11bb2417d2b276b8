"""Model registry: immutable versions with lineage, aliases, deployments and an audit log.

Light to import (no TensorFlow): the server and subprocesses open it directly.

Example:
    >>> from mooring.registry import Registry
    >>> reg = Registry.open("sqlite:///.mooring/registry.db")  # doctest: +SKIP
    >>> reg.get("income", alias="production").lineage["data_fingerprint"]  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.registry.artifacts import ArtifactStore
from mooring.registry.audit import GENESIS_HASH, event_hash, verify_chain
from mooring.registry.manifest import Manifest, ManifestDiff, build_manifest, diff_folder
from mooring.registry.names import (
    MANAGED_ALIASES,
    RESERVED_ALIASES,
    check_alias,
    check_model_name,
    check_version,
)
from mooring.registry.records import (
    AuditEvent,
    AuditProblem,
    AuditReport,
    Deployment,
    ModelSummary,
    ModelVersion,
    VersionArtifact,
)
from mooring.registry.registry import Registry, default_actor
from mooring.registry.sql.store import SqlStore, mask_url
from mooring.registry.store import CardRenderer, NewArtifact, NewVersion, Store

__all__ = [
    "GENESIS_HASH",
    "MANAGED_ALIASES",
    "RESERVED_ALIASES",
    "ArtifactStore",
    "AuditEvent",
    "AuditProblem",
    "AuditReport",
    "CardRenderer",
    "Deployment",
    "Manifest",
    "ManifestDiff",
    "ModelSummary",
    "ModelVersion",
    "NewArtifact",
    "NewVersion",
    "Registry",
    "SqlStore",
    "Store",
    "VersionArtifact",
    "build_manifest",
    "check_alias",
    "check_model_name",
    "check_version",
    "default_actor",
    "diff_folder",
    "event_hash",
    "mask_url",
    "verify_chain",
]
