"""Taking a version out of production: what serves instead, in the same write.

A production version found bad (a leak, a wrong label) is *demoted*: the newest earlier
production version that is still ready serves instead (the one ``rollback`` would
restore, skipping archived ones), or the version named ``to``; with neither, nothing
serves the model (the server answers 503 until a version is deployed) and the canary,
which needs a production version to split traffic with, is dropped. Otherwise the canary
keeps its share beside the new production version. The demoted version leaves the
rollback stack, so no later rollback brings it back; with ``archive`` it is archived in
the same transaction, so no server is ever left pointing at an archived version.

Audited as ``demote`` (the deployment before and after; the reason is required), then
``archive``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, RowMapping, update

from mooring.errors import ConflictError
from mooring.registry._records import Deployment
from mooring.registry._sql.deploy import MoveAlias, deployment_row, write_deployment
from mooring.registry._sql.rows import deployment_record, deployment_state
from mooring.registry._sql.tables import versions
from mooring.registry._sql.tx import WriteTransaction

__all__ = ["DEMOTE_ACTION", "write_demotion"]

#: The audit action of a demotion.
DEMOTE_ACTION = "demote"

VersionRow = Callable[[Connection, str, int], RowMapping]


def write_demotion(
    tx: WriteTransaction,
    *,
    name: str,
    version: int,
    to: int | None,
    archive: bool,
    actor: str,
    reason: str,
    version_row: VersionRow,
    move_alias: MoveAlias,
    check_to: Callable[[RowMapping], object],
) -> Deployment:
    """Demote production ``version`` of ``name`` (and archive it); the new deployment.

    ``check_to`` judges the row of ``to`` (ready and blessed, as a deploy does).
    """
    conn = tx.conn
    row = deployment_row(conn, name)
    before = deployment_record(name, row)
    if before.production != version:
        now = (
            "nothing is production"
            if before.production is None
            else (f"production is {name}@{before.production}")
        )
        raise ConflictError(
            f"{name}@{version} is not the production version ({now}); demote only what "
            f"serves, or archive it directly (mooring models archive {name} {version})"
        )
    version_row(conn, name, version)  # raises naming a missing version
    if to is not None:
        if to == version:
            raise ConflictError(
                f"--to {to} is the version being demoted; name another version to serve "
                "instead, or leave --to out for the previous production version"
            )
        check_to(version_row(conn, name, to))
        target: int | None = to
    else:
        target = next(
            (
                v
                for v in reversed(before.previous)
                if v != version and version_row(conn, name, v)["status"] == "ready"
            ),
            None,
        )
    previous = [v for v in before.previous if v not in (version, target)]
    canary = before.canary if target is not None and before.canary != target else None
    weight = before.canary_weight if canary is not None else 0
    after = write_deployment(conn, name, row, target, canary, weight, previous, move_alias)
    tx.audit(
        actor=actor,
        action=DEMOTE_ACTION,
        model=name,
        version=version,
        reason=reason,
        before=deployment_state(before),
        after=deployment_state(after),
    )
    if archive and version_row(conn, name, version)["status"] != "archived":
        conn.execute(
            update(versions)
            .where(versions.c.model_name == name, versions.c.version == version)
            .values(status="archived")
        )
        tx.audit(
            actor=actor,
            action="archive",
            model=name,
            version=version,
            reason=reason,
            before={"status": "ready"},
            after={"status": "archived"},
        )
    return after
