"""Writing the deployment row: production, canary and its weight, the rollback stack, the shadow.

The shadow outlives ``deploy``, ``promote`` and ``rollback`` (the candidate keeps being
compared with whatever production is), except when it takes a serving role itself:
a shadow that becomes production or canary is no longer a shadow.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sqlalchemy import Connection, RowMapping, insert, select, update

from mooring.errors import ConflictError, UsageError
from mooring.registry._records import Deployment
from mooring.registry._sql.rows import deployment_record
from mooring.registry._sql.tables import deployments
from mooring.registry._sql.tx import WriteTransaction, dumps, now

__all__ = ["check_shadow_rate", "write_deployment", "write_shadow"]

MoveAlias = Callable[[Connection, str, str, int | None], object]


def deployment_row(conn: Connection, name: str) -> RowMapping | None:
    """The deployment row of ``name`` (None before the first deploy)."""
    return (
        conn.execute(select(deployments).where(deployments.c.model_name == name)).mappings().first()
    )


def write_deployment(
    conn: Connection,
    name: str,
    row: RowMapping | None,
    production: int | None,
    canary: int | None,
    weight: int,
    previous: list[int],
    move_alias: MoveAlias,
) -> Deployment:
    """Replace the serving part of the row (a new revision); the shadow stays unless it now
    serves as production or canary. Moves the ``production``/``canary`` aliases."""
    values: dict[str, object] = {
        "production_version": production,
        "canary_version": canary,
        "canary_weight": weight,
        "revision": (row["revision"] if row else 0) + 1,
        "updated_at": now(),
        "previous": dumps(previous),
    }
    if row is not None and row.get("shadow_version") in (production, canary):
        values.update(shadow_version=None, shadow_rate=0.0)
    if row is None:
        conn.execute(insert(deployments).values(model_name=name, **values))
    else:
        conn.execute(update(deployments).where(deployments.c.model_name == name).values(**values))
    move_alias(conn, name, "production", production)
    move_alias(conn, name, "canary", canary)
    return deployment_record(name, deployment_row(conn, name))


def check_shadow_rate(version: int | None, rate: float) -> float:
    """The rate, checked: 0 < rate <= 1 with a shadow version; ignored (0) without one."""
    if version is None:
        return 0.0
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise UsageError(
            f"shadow rate {rate!r} is not a number; use a share of requests in (0, 1], "
            "e.g. 0.1 (CLI: --rate 0.1)"
        )
    if not 0.0 < rate <= 1.0:
        raise UsageError(
            f"shadow rate {rate:g} is out of range; use a share of requests above 0 and at "
            "most 1, e.g. 0.1 for one request in ten (CLI: --rate 0.1)"
        )
    return float(rate)


def write_shadow(
    tx: WriteTransaction,
    name: str,
    version: int | None,
    version_status: str | None,
    rate: float,
    actor: str,
    reason: str | None,
) -> Deployment:
    """Set (or with ``version=None`` clear) the shadow of ``name``; audited as ``shadow``.

    ``version_status`` is the version row's status (the caller found the row). A shadow
    needs a production version to copy requests from, and cannot be the production or
    canary version, nor archived.
    """
    conn = tx.conn
    row = deployment_row(conn, name)
    before = deployment_record(name, row)
    if version is not None:
        if version_status != "ready":
            raise ConflictError(
                f"{name}@{version} is archived and cannot be the shadow; restore it first "
                "(mooring models restore) or choose another version"
            )
        if before.production is None:
            raise ConflictError(
                f"model '{name}' has no production version to copy requests from; deploy one "
                f"first (mooring models deploy {name} --production VERSION)"
            )
        for role, number in (("production", before.production), ("canary", before.canary)):
            if number == version:
                raise UsageError(
                    f"{name}@{version} is the {role} version and already answers requests; "
                    "choose another version as the shadow"
                )
    elif before.shadow is None:
        return before  # nothing to clear: no new revision, no audit event
    assert row is not None  # a production version implies a deployment row
    conn.execute(
        update(deployments)
        .where(deployments.c.model_name == name)
        .values(
            shadow_version=version,
            shadow_rate=rate,
            revision=row["revision"] + 1,
            updated_at=now(),
        )
    )
    after = deployment_record(name, deployment_row(conn, name))
    tx.audit(
        actor=actor,
        action="shadow",
        model=name,
        version=version if version is not None else before.shadow,
        reason=reason,
        before={"shadow": before.shadow, "shadow_rate": before.shadow_rate},
        after={"shadow": after.shadow, "shadow_rate": after.shadow_rate},
    )
    return after
