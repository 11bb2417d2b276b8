"""The registry's state against its audit log: what the events explain, and what they do not.

The hash chain (:mod:`mooring.registry._audit`) vouches for the events, not for the
tables beside them: someone with SQL access could change the production version or
delete a version without writing an event. :func:`state_problems` replays the events
that change what serves and what is stored, and names each value in the tables that
no event explains, as a ``state`` problem.

The replay, per model, from an empty registry (no versions, no aliases, nothing
deployed):

* ``register`` adds the version (status ``ready``) with the ``manifest_sha256``,
  ``blessed`` and ``artifact_key`` its event records; ``archive``/``restore`` set its
  status; ``delete`` removes it and every alias pointing at it.
* ``deploy``, ``promote``, ``rollback`` and ``demote`` set production, canary and canary weight
  from the state the event records after the change, and move the ``production`` and
  ``canary`` aliases with them. That state names the shadow only while there is one
  (and a registry from before shadows had none), so one without ``shadow`` means no
  shadow. ``shadow`` sets the shadow and its rate (compared only while the table holds
  the shadow the events explain: another shadow is named already); ``alias`` moves a
  user alias.
* ``attach`` records an attached artifact (a version's signature among them) with the
  ``manifest_sha256`` and ``artifact_key`` its event records; a second ``attach`` of the
  same name replaces it, and ``delete`` of the version removes them. So a signature row
  deleted or replaced by SQL (the version would read as unsigned, or as signed by another
  bundle) is named with the version and the digest the chain holds. Attach events have
  recorded both since attachments exist, so logs written before this check are read alike.
* Every other event (contract, seal) changes nothing checked here.

A field an event does not carry (an event written before the field existed) makes
that value unknown until a later event says it; an unknown value is never reported.
Beside the replay, a version's stored manifest must still hash to its
``manifest_sha256`` (a load checks the files against that manifest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mooring.registry._records import AuditProblem

__all__ = ["StoredState", "state_problems"]


class _Unsaid:
    """The value of a field the events do not say (their event predates the field)."""

    def __repr__(self) -> str:
        return "<unsaid>"


_UNSAID = _Unsaid()

_DEPLOYMENT_FIELDS = ("production", "canary", "weight", "shadow", "shadow_rate")
_DEPLOYED_NOTHING: dict[str, Any] = {
    "production": None,
    "canary": None,
    "weight": 0,
    "shadow": None,
    "shadow_rate": 0.0,
}
_VERSION_FIELDS = ("manifest_sha256", "blessed", "artifact_key", "status")
_DEPLOY_ACTIONS = ("deploy", "promote", "rollback", "demote")


@dataclass(frozen=True)
class StoredState:
    """What the registry's tables hold now, as :func:`state_problems` compares it.

    ``versions``: (model, version) → manifest_sha256, blessed, artifact_key, status and
    ``manifest_matches`` (the stored manifest still hashes to manifest_sha256);
    ``deployments``: model → production, canary, weight, shadow, shadow_rate;
    ``aliases``: (model, alias) → version; ``attached``: (model, version, artifact) →
    manifest_sha256, artifact_key and ``manifest_matches``.
    """

    versions: Mapping[tuple[str, int], Mapping[str, Any]] = field(default_factory=dict)
    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    aliases: Mapping[tuple[str, str], int] = field(default_factory=dict)
    attached: Mapping[tuple[str, int, str], Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fact:
    """A value the events explain, and the event that set it (seq 0: none did)."""

    value: Any
    seq: int = 0
    action: str | None = None

    @property
    def said(self) -> bool:
        return self.value is not _UNSAID

    def source(self, what: str) -> str:
        if self.seq == 0:
            return f"no event has {what}"
        return f"event {self.seq}, {self.action}"


def _json(text: str | None) -> dict[str, Any]:
    """A stored before/after column as a mapping (empty when absent or not an object)."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}  # an edited event: the chain names it
    return data if isinstance(data, dict) else {}


def _said(data: Mapping[str, Any], key: str) -> Any:
    return data.get(key, _UNSAID)


@dataclass
class _Replay:
    """The state the events explain, built event by event."""

    deployments: dict[str, dict[str, _Fact]] = field(default_factory=dict)
    versions: dict[tuple[str, int], dict[str, _Fact]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], _Fact] = field(default_factory=dict)
    #: Models with an alias event that does not name its alias: their aliases are unknown.
    unsaid_aliases: set[str] = field(default_factory=set)
    #: (model, version, artifact) → its manifest_sha256 and artifact_key (None: removed).
    attached: dict[tuple[str, int, str], dict[str, _Fact] | None] = field(default_factory=dict)

    def apply(self, row: Mapping[str, Any]) -> None:
        model, action = row["model"], row["action"]
        handler = _HANDLERS.get(action)
        if model is None or handler is None:
            return
        handler(self, row, model, action)

    def _register(self, row: Mapping[str, Any], model: str, action: str) -> None:
        after, seq = _json(row["after"]), row["seq"]
        facts = {"exists": _Fact(True, seq, action), "status": _Fact("ready", seq, action)}
        for name in ("manifest_sha256", "blessed", "artifact_key"):
            facts[name] = _Fact(_said(after, name), seq, action)
        self.versions[(model, row["version"])] = facts

    def _status(self, row: Mapping[str, Any], model: str, action: str) -> None:
        facts = self.versions.setdefault((model, row["version"]), {})
        status = _json(row["after"]).get("status", "archived" if action == "archive" else "ready")
        facts["status"] = _Fact(status, row["seq"], action)

    def _delete(self, row: Mapping[str, Any], model: str, action: str) -> None:
        version, seq = row["version"], row["seq"]
        self.versions[(model, version)] = {"exists": _Fact(False, seq, action)}
        for item in [k for k in self.attached if k[:2] == (model, version)]:
            self.attached[item] = None  # the table's foreign key removes them with the version
        for key, fact in list(self.aliases.items()):
            if key[0] == model and fact.value == version:
                self.aliases[key] = _Fact(None, seq, action)

    def _deploy(self, row: Mapping[str, Any], model: str, action: str) -> None:
        after, seq = _json(row["after"]), row["seq"]
        facts = {name: _Fact(_said(after, name), seq, action) for name in _DEPLOYMENT_FIELDS}
        if "production" in after:  # a deployment state: it names the shadow only while one is set
            facts["shadow"] = _Fact(after.get("shadow"), seq, action)
            facts["shadow_rate"] = _Fact(after.get("shadow_rate", 0.0), seq, action)
        self.deployments.setdefault(model, {}).update(facts)
        for alias in ("production", "canary"):
            self.aliases[(model, alias)] = facts[alias]

    def _shadow(self, row: Mapping[str, Any], model: str, action: str) -> None:
        after, seq = _json(row["after"]), row["seq"]
        self.deployments.setdefault(model, {}).update(
            shadow=_Fact(_said(after, "shadow"), seq, action),
            shadow_rate=_Fact(_said(after, "shadow_rate"), seq, action),
        )

    def _alias(self, row: Mapping[str, Any], model: str, action: str) -> None:
        after = _json(row["after"])
        if not isinstance(after.get("alias"), str):
            self.unsaid_aliases.add(model)
            return
        self.aliases[(model, after["alias"])] = _Fact(_said(after, "version"), row["seq"], action)

    def _attach(self, row: Mapping[str, Any], model: str, action: str) -> None:
        after, seq = _json(row["after"]), row["seq"]
        if not isinstance(after.get("artifact"), str) or row["version"] is None:
            return  # an edited event: the chain names it
        self.attached[(model, int(row["version"]), after["artifact"])] = {
            name: _Fact(_said(after, name), seq, action)
            for name in ("manifest_sha256", "artifact_key")
        }

    def deployment(self, model: str) -> dict[str, _Fact]:
        """Every deployment field of ``model`` as the events explain it."""
        explained = {name: _Fact(value) for name, value in _DEPLOYED_NOTHING.items()}
        explained.update(self.deployments.get(model, {}))
        return explained


_HANDLERS: dict[str, Callable[[_Replay, Mapping[str, Any], str, str], None]] = {
    "register": _Replay._register,
    "archive": _Replay._status,
    "restore": _Replay._status,
    "delete": _Replay._delete,
    "shadow": _Replay._shadow,
    "alias": _Replay._alias,
    "attach": _Replay._attach,
    **dict.fromkeys(_DEPLOY_ACTIONS, _Replay._deploy),
}


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and len(value) == 64:
        return f"{value[:12]}…"  # a sha256
    return str(value)


def _plain(value: Any) -> str:
    """A value whole, as SQL would set it."""
    return (
        "NULL" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def _same(stored: Any, explained: Any) -> bool:
    if isinstance(stored, float) or isinstance(explained, float):
        both = (stored, explained)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in both):
            return math.isclose(float(stored), float(explained), rel_tol=1e-9, abs_tol=1e-12)
    return bool(stored == explained)


_DEPLOYMENT_LABELS = {
    "production": "the production version",
    "canary": "the canary version",
    "weight": "the canary weight",
    "shadow": "the shadow version",
    "shadow_rate": "the shadow rate",
}


def _deployment_fix(model: str, name: str, value: Any) -> str:
    if name in ("shadow", "shadow_rate"):
        command = (
            f"mooring models shadow {model} --version VERSION --rate RATE -r REASON` or `--off"
        )
    else:
        command = f"mooring models deploy {model} -p VERSION [--canary V -w W] -r REASON"
    return (
        f"set it back to {_shown(value)} (from a backup), or set what should serve through the "
        f"registry, which audits it (`{command}`)"
    )


def _deployment_problems(
    model: str, stored: Mapping[str, Any], replay: _Replay
) -> list[AuditProblem]:
    explained = replay.deployment(model)
    problems = []
    for name in _DEPLOYMENT_FIELDS:
        fact = explained[name]
        shadow = explained["shadow"].value
        if name == "shadow_rate" and (shadow is None or stored["shadow"] != shadow):
            continue  # no shadow, or another one (named already): the rate says nothing more
        if not fact.said or _same(stored[name], fact.value):
            continue
        problems.append(
            AuditProblem(
                fact.seq,
                "state",
                f"model '{model}': {_DEPLOYMENT_LABELS[name]} is {_shown(stored[name])} in table "
                f"deployments, but the audit events explain {_shown(fact.value)} "
                f"({fact.source('deployed it')}): it was changed outside the registry; "
                + _deployment_fix(model, name, fact.value),
            )
        )
    return problems


def _version_problems(
    key: tuple[str, int], stored: Mapping[str, Any] | None, replay: _Replay
) -> list[AuditProblem]:
    model, version = key
    facts = replay.versions.get(key, {})
    exists = facts.get("exists", _Fact(False))
    ref = f"model '{model}': version {version}"
    if stored is None:
        if exists.value is not True:
            return []
        where = facts.get("artifact_key", _Fact(_UNSAID))
        files = f" (its files may still be in the artifact store at {where.value})"
        return [
            AuditProblem(
                exists.seq,
                "state",
                f"{ref} was registered (event {exists.seq}) and no event deleted it, but it is not "
                "in table versions: it was deleted outside the registry; restore its row from a "
                "backup of the database" + (files if where.said else ""),
            )
        ]
    if exists.value is not True:  # never registered, or deleted by an event
        why = f"event {exists.seq} deleted it" if exists.seq else "no event registered it"
        return [
            AuditProblem(
                exists.seq,
                "state",
                f"{ref} is in table versions, but {why}: it was inserted outside the registry; "
                "do not deploy it; restore the table from a backup, or delete the row: DELETE "
                f"FROM versions WHERE model_name = '{model}' AND version = {version} (not "
                "Registry.delete, which would also remove the files its artifact_key names, "
                "perhaps another version's)",
            )
        ]
    return _field_problems(ref, stored, facts)


def _field_problems(
    ref: str, stored: Mapping[str, Any], facts: Mapping[str, _Fact]
) -> list[AuditProblem]:
    problems = []
    for name in _VERSION_FIELDS:
        fact = facts.get(name, _Fact(_UNSAID))
        if not fact.said or _same(stored[name], fact.value):
            continue
        problems.append(
            AuditProblem(
                fact.seq,
                "state",
                f"{ref}'s {name} is {_shown(stored[name])} in table versions, but event "
                f"{fact.seq} ({fact.action}) recorded {_shown(fact.value)}: the row was changed "
                f"outside the registry; set {name} back to {_plain(fact.value)} or restore the row "
                "from a backup",
            )
        )
    if not stored.get("manifest_matches", True):
        problems.append(
            AuditProblem(
                facts["exists"].seq if "exists" in facts else 0,
                "state",
                f"{ref}'s manifest (table versions, column manifest) no longer hashes to its "
                f"manifest_sha256 {_shown(stored['manifest_sha256'])}: it was changed outside the "
                "registry, and a load would check the files against the changed list; restore "
                "the row from a backup",
            )
        )
    return problems


def _alias_problems(
    key: tuple[str, str], stored: int | None, replay: _Replay
) -> list[AuditProblem]:
    model, alias = key
    fact = replay.aliases.get(key, _Fact(None))
    if model in replay.unsaid_aliases or not fact.said or _same(stored, fact.value):
        return []
    if alias in ("production", "canary"):
        fix = f"deploy through the registry (`mooring models deploy {model} ... -r REASON`)"
    else:
        fix = f"point it through the registry (`mooring models alias {model} {alias} VERSION`)"
    return [
        AuditProblem(
            fact.seq,
            "state",
            f"model '{model}': alias '{alias}' points at version {_shown(stored)} in table "
            f"aliases, but the audit events explain {_shown(fact.value)} "
            f"({fact.source('set it')}): it was changed outside the registry; set it back to "
            f"{_shown(fact.value)} (from a backup), or {fix}, which audits it",
        )
    ]


def _attached_what(key: tuple[str, int, str]) -> str:
    model, version, artifact = key
    if artifact == "signature":
        return f"model '{model}': version {version}'s signature (attached artifact 'signature')"
    return f"model '{model}': version {version}'s attached artifact '{artifact}'"


def _resign(key: tuple[str, int, str]) -> str:
    model, version, artifact = key
    if artifact != "signature":
        return "restore the row from a backup of the database"
    return (
        "restore the row from a backup of the database, or sign the version again "
        f"(`mooring models sign {model} {version} --replace -r REASON`), which audits it"
    )


def _attached_problems(
    key: tuple[str, int, str], stored: Mapping[str, Any] | None, replay: _Replay
) -> list[AuditProblem]:
    facts = replay.attached.get(key)
    what = _attached_what(key)
    if stored is None:
        if facts is None:
            return []
        digest, by = facts["manifest_sha256"], facts["manifest_sha256"].seq
        recorded = f"sha256 {_shown(digest.value)} of its manifest" if digest.said else "it"
        unsigned = " (the version now reads as unsigned)" if key[2] == "signature" else ""
        return [
            AuditProblem(
                by,
                "state",
                f"{what} is missing from table version_artifacts, but event {by} (attach) "
                f"recorded {recorded} and no event removed it: it was deleted outside the "
                f"registry{unsigned}; " + _resign(key),
            )
        ]
    if facts is None:
        return [
            AuditProblem(
                0,
                "state",
                f"{what} is in table version_artifacts, but no event attached it: it was "
                "inserted outside the registry; do not trust it; delete the row or restore "
                "the table from a backup",
            )
        ]
    problems = []
    for name in ("manifest_sha256", "artifact_key"):
        fact = facts[name]
        if not fact.said or _same(stored[name], fact.value):
            continue
        problems.append(
            AuditProblem(
                fact.seq,
                "state",
                f"{what}'s {name} is {_shown(stored[name])} in table version_artifacts, but "
                f"event {fact.seq} (attach) recorded {_shown(fact.value)}: it was replaced "
                "outside the registry; " + _resign(key),
            )
        )
    if not stored.get("manifest_matches", True):
        problems.append(
            AuditProblem(
                facts["manifest_sha256"].seq,
                "state",
                f"{what}'s manifest (table version_artifacts, column manifest) no longer hashes "
                f"to its manifest_sha256 {_shown(stored['manifest_sha256'])}: it was changed "
                "outside the registry; " + _resign(key),
            )
        )
    return problems


def state_problems(rows: Iterable[Mapping[str, Any]], stored: StoredState) -> list[AuditProblem]:
    """Each value in ``stored`` that the audit ``rows`` (stored columns, ``before``/``after``
    as JSON text, in order) do not explain, as a ``state`` problem, by model."""
    replay = _Replay()
    for row in rows:
        replay.apply(row)
    problems: list[AuditProblem] = []
    for model in sorted(set(replay.deployments) | set(stored.deployments)):
        problems += _deployment_problems(
            model, stored.deployments.get(model, _DEPLOYED_NOTHING), replay
        )
    for key in sorted(set(replay.versions) | set(stored.versions)):
        problems += _version_problems(key, stored.versions.get(key), replay)
    for alias_key in sorted(set(replay.aliases) | set(stored.aliases)):
        problems += _alias_problems(alias_key, stored.aliases.get(alias_key), replay)
    for item in sorted(set(replay.attached) | set(stored.attached)):
        problems += _attached_problems(item, stored.attached.get(item), replay)
    return problems
