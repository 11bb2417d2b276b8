"""Registering a version with the gate decision mooring's evaluation computed.

:meth:`Registry.register <mooring.registry._registry.Registry.register>` is the public
road and refuses a record with a ``gate``: a caller cannot bless a folder by saying so.
This is the road of the callers that evaluated the model themselves from data, with
mooring's gates: the pipeline's register step (``mooring run``). The record's ``gate``
is that evaluation's decision (``DecisionRecord.to_dict()``); the version is blessed when
it says so.

Examples:
    >>> register_judged(reg, "income", export_dir,
    ...                 VersionRecord(lineage=lineage, gate=evaluated.decision))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mooring.formats._version_record import VersionRecord

if TYPE_CHECKING:
    from mooring.registry._records import ModelVersion
    from mooring.registry._registry import Registry
    from mooring.registry._store import CardRenderer

__all__ = ["register_judged"]


def register_judged(
    registry: Registry,
    name: str,
    artifact_dir: str | os.PathLike[str],
    record: VersionRecord,
    *,
    reason: str | None = None,
    render_card: CardRenderer | None = None,
    created_by: str | None = None,
) -> ModelVersion:
    """Store ``artifact_dir`` as the next version of ``name`` with ``record.gate``, the
    decision of mooring's evaluation, as :meth:`Registry.register` stores the rest."""
    return registry._add(name, artifact_dir, record, reason, render_card, created_by)
