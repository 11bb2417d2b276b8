"""The audit log's side of :class:`~mooring.registry.Registry`: read, verify, anchor, seal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mooring.errors import UsageError
from mooring.registry._audit import parse_head
from mooring.registry._names import check_model_name
from mooring.registry._provenance import default_actor
from mooring.registry._records import AuditEvent, AuditReport
from mooring.registry._store import Store

__all__ = ["CONTRACT_ACTIONS", "WAIVE_ACTION", "AuditTrail"]

#: The audit actions of a model's data contract.
CONTRACT_ACTIONS = ("contract_adopted", "contract_accepted")
#: The audit action of a version blessed with its comparisons with production waived.
WAIVE_ACTION = "waive"


class AuditTrail:
    """The audit methods of the registry (a base of :class:`~mooring.registry.Registry`)."""

    store: Store

    def history(self, name: str | None = None, *, limit: int | None = None) -> list[AuditEvent]:
        """Audit events, oldest first; for one model when ``name`` is given."""
        if name is not None:
            check_model_name(name)
        if limit is not None and limit < 1:
            raise UsageError(f"limit {limit} is not valid; use a positive number of events")
        return self.store.audit_events(name=name, limit=limit)

    def verify_audit(
        self, *, expect_head: str | None = None, require_key: bool = False
    ) -> AuditReport:
        """Check the audit chain (HMAC with the audit key), and that the registry's
        versions, deployments and aliases are what its events explain (``state`` problems
        name the rest); ``expect_head`` (``"SEQ:HASH"`` from :meth:`audit_head`) must still
        be in the chain; ``require_key``: refuse without a key."""
        anchor = parse_head(expect_head) if expect_head is not None else None
        return self.store.verify_audit(expect_head=anchor, require_key=require_key)

    def audit_head(self) -> str:
        """The chain's head as ``"SEQ:HASH"``: anchor it elsewhere (a CI log, a ticket)."""
        seq, digest = self.store.audit_head()
        return f"{seq}:{digest}"

    def record_contract(
        self,
        name: str,
        *,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        reason: str | None,
        actor: str | None = None,
    ) -> None:
        """Audit a change of ``name``'s data contract: ``action`` is ``contract_adopted``
        (a project's first contract) or ``contract_accepted`` (a reviewed change; it needs a
        reason). ``after`` holds the new contract's fingerprint, ``before`` the old one's."""
        check_model_name(name)
        if action not in CONTRACT_ACTIONS:
            raise UsageError(f"contract action {action!r} is not one of {list(CONTRACT_ACTIONS)}")
        if action == "contract_accepted" and not (reason or "").strip():
            raise UsageError(
                "accepting a change of the data contract needs a reason; pass reason='…' "
                "(CLI: --reason TEXT) so the audit log records why"
            )
        self.store.record_event(
            action=action,
            model=name,
            actor=actor or default_actor(),
            reason=reason,
            before=before,
            after=after,
        )

    def record_waiver(
        self,
        name: str,
        *,
        version: int,
        gates: Sequence[Mapping[str, Any]],
        reason: str,
        actor: str | None = None,
    ) -> None:
        """Audit that ``name@version`` was blessed with its failed gates that compare with
        production waived (``mooring run --waive-change -r REASON``): a ``waive`` event
        naming each gate with its value, production's and the difference.

        Example::

            registry.record_waiver("loans", version=2, gates=[{"name": "auc change", ...}],
                                   reason="production v1 read a leak")
        """
        check_model_name(name)
        if not reason.strip():
            raise UsageError(
                f"waiving gates of {name}@{version} needs a reason; pass reason='…' "
                "(CLI: mooring run --waive-change -r TEXT) so the audit log records why"
            )
        self.store.record_event(
            action=WAIVE_ACTION,
            model=name,
            version=version,
            actor=actor or default_actor(),
            reason=reason,
            before=None,
            after={"waived": [dict(g) for g in gates]},
        )

    def contract_events(self, name: str) -> list[AuditEvent]:
        """``name``'s contract events (adopted, accepted), oldest first."""
        return [e for e in self.history(name) if e.action in CONTRACT_ACTIONS]

    def seal_audit(self, *, actor: str | None = None, reason: str | None = None) -> AuditReport:
        """Append a keyed ``seal_audit`` event: it binds events written before the key."""
        return self.store.seal_audit(actor=actor or default_actor(), reason=reason)
