"""Released by a second person: approvals, and the rule that a version reaches production
only once someone other than its registrant has approved it.

With ``[registry] production_requires = "approval"`` every road that makes a version the
production version (``promote``, ``deploy`` with a new production version, the dashboard's
and the monitor's promotions) first asks :meth:`Approvals.check_release`. An approval is an
``approve`` audit event for that version, recorded by :meth:`Approvals.approve`: it lives in
the hash chain with every other event, so it cannot be added, edited or removed behind the
registry's back without ``mooring audit verify`` naming it, and it needs no table of its own.
Until it is approved, a version serves no more than the first rollout step's weight
(``[rollout] steps[0]``) as a canary, on every road that sets a weight (``deploy`` from the
command line, the admin API, the dashboard, the rollout monitor advancing a step, the
pipeline): :meth:`Approvals.check_canary_weight`. An approval counts when its actor is not
the version's registrant and, with ``[registry] approvers`` set, is one of them;
both are judged again at release, against the rules in force then. The promotion's audit
reason names the approval it relied on.

``[registry] protected_aliases`` may be set, moved or removed only by an approver
(``production`` among them: every change of the production version, rollbacks included).

Actors are names people declare (``--actor``, ``$MOORING_ACTOR``, the login name, the
dashboard's "Your name"), or, on the admin API with a token of ``[serving] admin_tokens``,
the name the token maps to. The dashboard records its actors as ``NAME (mooring-ui)``:
:func:`person` is the name before the channel, and :func:`same_person` compares names
case-insensitively (``Alice`` is ``alice``); names are stored as given.

Examples:
    >>> person("ana (mooring-ui)")
    'ana'
    >>> same_person("Alice ", "alice (mooring-ui)")
    True
    >>> ReleaseRules(production_requires="approval", approvers=("bob",)).may_approve("ana")
    False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mooring.errors import ChecksFailedError, UsageError
from mooring.registry._names import check_model_name, check_version
from mooring.registry._provenance import default_actor
from mooring.registry._records import AuditEvent
from mooring.registry._store import Store

if TYPE_CHECKING:
    from mooring.config._registry import RegistryConfig

__all__ = [
    "APPROVE_ACTION",
    "ApprovalError",
    "Approvals",
    "ReleaseRules",
    "person",
    "same_person",
]

#: The audit action of an approval.
APPROVE_ACTION = "approve"

_CHANNEL = re.compile(r"\s*\([^()]*\)\s*$")


class ApprovalError(ChecksFailedError):
    """A release or an alias move that the ``[registry]`` release rules refuse."""


def person(actor: str) -> str:
    """The person an actor names: the name without a trailing ``(channel)``, as the
    dashboard records ``ana (mooring-ui)``.

    >>> person("mooring-ui"), person("bob")
    ('mooring-ui', 'bob')
    """
    return _CHANNEL.sub("", actor).strip() or actor.strip()


def same_person(a: str, b: str) -> bool:
    """Whether two declared actors name the same person: :func:`person` of each, compared
    case-insensitively (``casefold``), so ``Alice`` cannot approve what ``alice`` registered.

    >>> same_person("Bob", "bob (mooring-ui)"), same_person("bob", "bobby")
    (True, False)
    """
    return person(a).casefold() == person(b).casefold()


@dataclass(frozen=True)
class ReleaseRules:
    """``[registry]``'s release rules, as the registry enforces them (all off by default).

    Examples:
        >>> ReleaseRules().approval_required
        False
    """

    production_requires: str = "nothing"
    approvers: tuple[str, ...] = ()
    protected_aliases: tuple[str, ...] = ()
    #: The most an unapproved canary serves, in percent: the first ``[rollout] steps``.
    first_step: int = 5

    @classmethod
    def from_config(cls, section: RegistryConfig, first_step: int = 5) -> ReleaseRules:
        """The rules of a project's ``[registry]`` section; ``first_step`` is its
        ``[rollout] steps[0]``."""
        return cls(
            production_requires=section.production_requires,
            approvers=tuple(person(a) for a in section.approvers),
            protected_aliases=tuple(section.protected_aliases),
            first_step=first_step,
        )

    @property
    def approval_required(self) -> bool:
        """Whether a new production version needs an approval."""
        return self.production_requires == "approval"

    def may_approve(self, actor: str, registrant: str | None = None) -> bool:
        """Whether ``actor`` counts as an approver (of a version ``registrant`` registered):
        one of ``approvers`` when they are set, and never the registrant."""
        if registrant is not None and same_person(actor, registrant):
            return False
        return self.is_approver(actor)

    def is_approver(self, actor: str) -> bool:
        """Whether ``actor`` is among ``approvers`` (any actor, when none are set),
        case-insensitively."""
        return not self.approvers or any(same_person(actor, a) for a in self.approvers)

    def needed(self) -> str:
        """Who may approve, for messages."""
        if self.approvers:
            return "one of [registry] approvers (" + ", ".join(self.approvers) + ")"
        return "anyone"


class Approvals:
    """The approval methods of the registry (a base of :class:`~mooring.registry.Registry`).

    ``release`` holds the rules; :meth:`Registry.from_config` sets them from ``[registry]``.
    """

    store: Store
    release: ReleaseRules = ReleaseRules()

    def approve(
        self, name: str, *, version: int, reason: str | None, actor: str | None = None
    ) -> AuditEvent:
        """Record that ``actor`` approves ``name@version`` for production (an ``approve``
        audit event; returned).

        Raises:
            UsageError: no reason.
            NotFoundError: no such version.
            ApprovalError: the actor registered the version, or is not among ``approvers``.

        Example::

            registry.approve("income", version=4, reason="reviewed the eval report", actor="bob")
        """
        check_model_name(name)
        check_version(version)
        who = actor or default_actor()
        if not (reason or "").strip():
            raise UsageError(
                f"approving {name}@{version} needs a reason; pass reason='…' (CLI: -r TEXT) "
                "so the audit log records why it may be released"
            )
        registrant = self.store.get_version(name=name, version=version, heavy=False).created_by
        if same_person(who, registrant):
            raise ApprovalError(
                f"{who!r} registered {name}@{version} and cannot approve it: a release needs "
                f"an approval by someone other than {registrant!r} ({self.release.needed()}): "
                f"mooring models approve {name} {version} -r REASON --actor NAME"
            )
        if not self.release.may_approve(who):
            raise ApprovalError(
                f"{who!r} is not among [registry] approvers ({', '.join(self.release.approvers)})"
                f" and cannot approve {name}@{version}; ask one of them to run `mooring models "
                f"approve {name} {version} -r REASON --actor NAME`, or add the name to approvers"
            )
        self.store.record_event(
            action=APPROVE_ACTION,
            model=name,
            version=version,
            actor=who,
            reason=reason,
            before=None,
            after={"approved": version, "registered_by": registrant},
        )
        return self.approvals(name, version=version)[-1]

    def approvals(self, name: str, *, version: int) -> list[AuditEvent]:
        """Every approval recorded for ``name@version``, oldest first (counted or not)."""
        check_model_name(name)
        return [
            e
            for e in self.store.audit_events(name=name)
            if e.action == APPROVE_ACTION and e.version == version
        ]

    def check_release(
        self,
        name: str,
        version: int | None,
        current: int | None,
        actor: str | None,
        reason: str | None,
    ) -> str | None:
        """Refuse to make ``version`` production (``current`` is production now) without a
        counted approval, when the rules require one; return ``reason`` (when one is given)
        with the approval it relies on named, for the promotion's audit event.

        Raises:
            ApprovalError: naming the version, its registrant, who tried and what is needed.
        """
        if version is None or version == current:
            return reason
        who = actor or default_actor()
        self.check_alias_move(name, "production", who)
        if not self.release.approval_required:
            return reason
        registrant = self.store.get_version(name=name, version=version, heavy=False).created_by
        seen = self.approvals(name, version=version)
        counted = [e for e in seen if self.release.may_approve(e.actor, registrant)]
        if not counted:
            raise ApprovalError(_refusal(name, version, registrant, who, self.release, seen))
        used = counted[-1]
        if not (reason or "").strip():
            return reason  # a reason stays the caller's: --force still asks for one
        return f"{reason}; approved by {used.actor} (audit event {used.seq})"

    def check_canary_weight(
        self,
        name: str,
        canary: int | None,
        weight: int,
        now: tuple[int | None, int],
        actor: str | None,
    ) -> None:
        """Refuse to give an unapproved canary more than the first rollout step's weight,
        when the rules require an approval (``now``: the canary and its weight serving
        now; keeping or lowering them is never refused). A canary at 100% answers as
        production does, and :meth:`check_release` judges it.

        Raises:
            ApprovalError: naming the version, the weight asked, the most it may serve and
                the approval that would lift the bound.
        """
        if canary is None or not self.release.approval_required:
            return
        first = self.release.first_step
        if weight <= first or (canary == now[0] and weight <= now[1]):
            return
        registrant = self.store.get_version(name=name, version=canary, heavy=False).created_by
        seen = self.approvals(name, version=canary)
        if any(self.release.may_approve(e.actor, registrant) for e in seen):
            return
        who = actor or default_actor()
        raise ApprovalError(
            f"{name}@{canary} cannot serve {weight}% of requests as a canary: [registry] "
            f'production_requires = "approval", and until someone other than its registrant '
            f"{registrant!r} approves it a version serves at most the first rollout step, "
            f"{first}% ([rollout] steps); {who!r} asked for {weight}%. Deploy it at "
            f"--weight {first} or less, or have it approved ({self.release.needed()}): "
            f"mooring models approve {name} {canary} -r REASON --actor NAME"
        )

    def check_alias_move(self, name: str, alias: str, actor: str | None) -> None:
        """Refuse a change of a protected alias by anyone but an approver.

        Raises:
            ApprovalError: ``alias`` is in ``[registry] protected_aliases`` and ``actor`` is
                not among ``approvers``.
        """
        if alias not in self.release.protected_aliases:
            return
        who = actor or default_actor()
        if self.release.approvers and self.release.is_approver(who):
            return
        allowed = (
            f"only {self.release.needed()} may set or move it: ask one of them (--actor NAME)"
            if self.release.approvers
            else "no [registry] approvers are set, so nobody may: name them in mooring.toml"
        )
        raise ApprovalError(
            f"alias '{alias}' of model '{name}' is protected ([registry] protected_aliases) and "
            f"{who!r} is not an approver; {allowed}"
        )


def _refusal(
    name: str,
    version: int,
    registrant: str,
    who: str,
    rules: ReleaseRules,
    seen: Sequence[AuditEvent],
) -> str:
    """Why ``name@version`` cannot become production yet, and what would release it."""
    uncounted = "".join(
        f"; the approval by {e.actor!r} (audit event {e.seq}) does not count: "
        + ("they registered it" if same_person(e.actor, registrant) else "not an approver")
        for e in seen
    )
    return (
        f"{name}@{version} cannot become production: [registry] production_requires = "
        f'"approval", and it has no approval by someone other than its registrant '
        f"{registrant!r}{uncounted}; {who!r} tried to release it. Needed: an approval by "
        f"someone other than {registrant!r} ({rules.needed()}): mooring models approve "
        f"{name} {version} -r REASON --actor NAME"
    )
