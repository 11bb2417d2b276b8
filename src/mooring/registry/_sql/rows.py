"""Registry rows as records: versions, deployments, model summaries and audit events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, func, select

from mooring.formats._lineage import Lineage
from mooring.registry._records import AuditEvent, Deployment, ModelSummary, ModelVersion
from mooring.registry._sql.tables import deployments, models, versions
from mooring.registry._sql.tx import loads

__all__ = [
    "audit_event",
    "deployment_record",
    "deployment_state",
    "model_summaries",
    "version_record",
]


def version_record(row: RowMapping, alias_names: list[str], *, heavy: bool) -> ModelVersion:
    """A version row (and its aliases) as a :class:`ModelVersion`; heavy columns with ``heavy``."""
    return ModelVersion(
        name=row["model_name"],
        version=row["version"],
        status=row["status"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        artifact_key=row["artifact_key"],
        manifest_sha256=row["manifest_sha256"],
        file_count=row["file_count"],
        size_bytes=row["size_bytes"],
        blessed=bool(row["blessed"]),
        parent_version=row["parent_version"],
        description=row["description"],
        lineage=Lineage.read(loads(row["lineage"])),
        metrics=loads(row["metrics"]),
        gate=loads(row["gate"]),
        params=loads(row["params"]),
        run_record=loads(row["run_record"]),
        aliases=tuple(alias_names),
        manifest=loads(row["manifest"]) if heavy else None,
        statistics=loads(row["statistics"]) if heavy else None,
        model_card=row["model_card"] if heavy else None,
    )


def deployment_record(name: str, row: RowMapping | None) -> Deployment:
    """A deployment row as a :class:`Deployment` (an empty one before the first deploy)."""
    if row is None:
        return Deployment(name=name)
    return Deployment(
        name=name,
        production=row["production_version"],
        canary=row["canary_version"],
        canary_weight=row["canary_weight"],
        revision=row["revision"],
        updated_at=row["updated_at"],
        previous=tuple(loads(row["previous"])),
        shadow=row.get("shadow_version"),
        shadow_rate=float(row.get("shadow_rate") or 0.0),
    )


def model_summaries(conn: Connection) -> list[ModelSummary]:
    """Every model with its version count, latest ready version and deployment."""
    counts = (
        select(versions.c.model_name, func.count().label("n"))
        .group_by(versions.c.model_name)
        .subquery()
    )
    latest = (
        select(versions.c.model_name, func.max(versions.c.version).label("latest"))
        .where(versions.c.status == "ready")
        .group_by(versions.c.model_name)
        .subquery()
    )
    query = (
        select(
            models.c.name,
            models.c.created_at,
            counts.c.n,
            latest.c.latest,
            deployments.c.production_version,
            deployments.c.canary_version,
            deployments.c.canary_weight,
        )
        .select_from(models)
        .outerjoin(counts, counts.c.model_name == models.c.name)
        .outerjoin(latest, latest.c.model_name == models.c.name)
        .outerjoin(deployments, deployments.c.model_name == models.c.name)
        .order_by(models.c.name)
    )
    return [
        ModelSummary(
            name=row.name,
            created_at=row.created_at,
            latest_version=row.latest,
            versions=row.n or 0,
            production=row.production_version,
            canary=row.canary_version,
            canary_weight=row.canary_weight or 0,
        )
        for row in conn.execute(query)
    ]


def audit_event(r: RowMapping) -> AuditEvent:
    """An audit row as an :class:`AuditEvent`."""
    return AuditEvent(
        seq=r["seq"],
        created_at=r["created_at"],
        actor=r["actor"],
        action=r["action"],
        model=r["model_name"],
        version=r["version"],
        reason=r["reason"],
        forced=bool(r["forced"]),
        before=loads(r["before"]),
        after=loads(r["after"]),
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


def deployment_state(dep: Deployment) -> dict[str, Any]:
    """The part of a deployment an audit event records (the shadow only while there is one)."""
    state: dict[str, Any] = {
        "production": dep.production,
        "canary": dep.canary,
        "weight": dep.canary_weight,
    }
    if dep.shadow is not None:
        state.update(shadow=dep.shadow, shadow_rate=dep.shadow_rate)
    return state
