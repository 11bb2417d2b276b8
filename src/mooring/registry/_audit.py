"""The audit log's hash chain: how an event is hashed and how the chain is verified.

Each event stores the hash of the event before it; the hash of an event covers
its content and that link. With an audit key (``MOORING_AUDIT_KEY``, or the key file
``mooring init`` writes) the hash is an HMAC-SHA256: someone who can write to the
database but does not hold the key cannot recompute a valid chain after editing it.
Without a key it is a plain sha256, which only catches accidents. Editing a row
breaks its own hash, deleting a row breaks the link of the next one (and the
sequence numbers), and moving a row puts a link out of place. :func:`verify_chain`
names the row in each case. The chain's head (last sequence number and hash) is stored
separately, so a deleted last row is detected too, unless the head is moved back with
it: only a head anchored outside the database (``verify_chain(expect_head=...)``)
catches that.

How each event was chained is not stored (a column the database's writers can edit
could not be trusted): it is recomputed. Events chained with plain sha256 are
accepted only as a prefix written before the registry had a key, and only once a
keyed event follows them (its HMAC covers the link to the last of them, so they can
no longer be rewritten without the key); a plain event after a keyed one is a
problem. A writer refuses to extend a keyed chain without the key or with another
key (:func:`writer_key`).

The key has one encoding (:func:`parse_key`): 32 bytes as 64 hex digits, the same text
in the key file and in ``MOORING_AUDIT_KEY``, so the file's content can be moved into
the variable. Anything else is refused, naming where it came from. mooring used to
take the variable's raw text as the key; a log keyed that way keeps working: with a
hex value its raw bytes are the second candidate (:meth:`AuditKey.keys`, chosen by
the HMAC the log carries), and any other value is given as ``text:VALUE``.

The chain vouches for the events; :mod:`mooring.registry._audit_state` checks that
the registry's tables hold what those events explain.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.errors import IntegrityError, UsageError
from mooring.formats._files import atomic_write
from mooring.registry._manifest import canonical_json
from mooring.registry._records import AuditProblem, AuditReport

__all__ = [
    "GENESIS_HASH",
    "KEY_ENV",
    "KEY_HEX_DIGITS",
    "LEGACY_TEXT_PREFIX",
    "AuditKey",
    "chain_key",
    "event_hash",
    "key_file",
    "load_audit_key",
    "parse_head",
    "parse_key",
    "verify_chain",
    "writer_key",
]

#: The environment variable holding the audit key (it wins over the key file).
KEY_ENV = "MOORING_AUDIT_KEY"

#: The key's one encoding, in the key file and in ``MOORING_AUDIT_KEY``: 32 bytes as hex.
KEY_HEX_DIGITS = 64

#: ``MOORING_AUDIT_KEY=text:SECRET``: SECRET's own bytes, as mooring read the variable
#: before it was hex (for logs keyed that way; at least :data:`LEGACY_TEXT_MIN` characters).
LEGACY_TEXT_PREFIX = "text:"
LEGACY_TEXT_MIN = 16

_GENERATE = "python -c 'import secrets; print(secrets.token_hex(32))'"

#: The link of the very first event.
GENESIS_HASH = "0" * 64


def event_hash(  # noqa: PLR0913 - one keyword per hashed field of an audit event
    *,
    created_at: str,
    actor: str,
    action: str,
    model: str | None,
    version: int | None,
    reason: str | None,
    forced: bool,
    before: str | None,
    after: str | None,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with ``key`` (sha256 without one) over the event's stored fields
    (``before``/``after`` as their stored JSON text).

    The sequence number is deliberately not hashed: order is carried by the links,
    so a moved row is reported as out of order rather than as edited.
    """
    payload = canonical_json(
        [created_at, actor, action, model, version, reason, bool(forced), before, after, prev_hash]
    ).encode()
    if key is not None:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


def key_file(cfg: MooringConfig) -> Path:
    """Where a project keeps its audit key: ``[project] audit_key_file``, else
    ``<home>/audit.key``."""
    given = cfg.project.audit_key_file
    return cfg.path(given) if given else cfg.home / "audit.key"


def parse_key(text: str, source: str, *, legacy_text: bool = False) -> bytes:
    """The audit key in its one encoding: :data:`KEY_HEX_DIGITS` hex digits (32 bytes),
    surrounding whitespace ignored, in the key file and in ``MOORING_AUDIT_KEY`` alike.

    ``source`` names where the text came from, for the error. With ``legacy_text``
    (the environment variable only) ``text:SECRET`` is SECRET's own bytes: how mooring
    read the variable before it was hex, kept for logs keyed that way.

    Raises:
        UsageError: not 64 hex digits (nor ``text:`` with 16 characters or more), naming
            ``source``, what it holds (its length, never its content) and the fix.
    """
    if legacy_text and text.startswith(LEGACY_TEXT_PREFIX):
        secret = text[len(LEGACY_TEXT_PREFIX) :]
        if len(secret) >= LEGACY_TEXT_MIN:
            return secret.encode()
        raise UsageError(
            f"{source} holds {LEGACY_TEXT_PREFIX} and a secret of {len(secret)} characters; "
            f"the {LEGACY_TEXT_PREFIX} form is only for a log keyed with that text by an older "
            f"mooring and needs at least {LEGACY_TEXT_MIN}; otherwise set {KEY_HEX_DIGITS} hex "
            f"digits ({_GENERATE})"
        )
    digits = text.strip()
    if len(digits) == KEY_HEX_DIGITS and all(c in string.hexdigits for c in digits):
        return bytes.fromhex(digits)
    odd = ", not all of them hex digits" if any(c not in string.hexdigits for c in digits) else ""
    fix = (
        f"set {KEY_ENV} to the same text as the key file (e.g. {KEY_ENV}=$(cat "
        f".mooring/audit.key)) or to a new key ({_GENERATE}); if an older mooring keyed this "
        f"registry's log with the value as plain text, keep it as "
        f"{KEY_ENV}={LEGACY_TEXT_PREFIX}VALUE"
        if legacy_text
        else f"restore the file from a backup (without the key the audit log cannot be "
        f"verified), or set {KEY_ENV}"
    )
    raise UsageError(
        f"{source} does not hold an audit key: expected {KEY_HEX_DIGITS} hex digits (32 "
        f"bytes, as `mooring init` writes the key file), got {len(digits)} characters{odd}; "
        f"{fix}"
    )


def load_audit_key(path: Path | None, *, create: bool) -> bytes | None:
    """The audit key: ``MOORING_AUDIT_KEY`` if set, else the key file at ``path``; both
    hold the same text (:func:`parse_key`).

    A missing key file is created (32 random bytes as hex, mode 0600, written
    atomically) when ``create`` is true; otherwise there is no key.
    """
    given = os.environ.get(KEY_ENV)
    if given:
        return parse_key(given, KEY_ENV, legacy_text=True)
    if path is None:
        return None
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (secrets.token_hex(32) + "\n").encode(), private=True)  # 0600
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"the audit key file '{path}' cannot be read ({exc}); make it readable by this "
            f"user, restore it from a backup, or set {KEY_ENV}"
        ) from None
    return parse_key(text, f"the audit key file '{path}'")


def _legacy_env_key() -> bytes | None:
    """``MOORING_AUDIT_KEY``'s raw bytes when it is a hex key an older mooring would
    have used as text: a log keyed that way is recognised by its HMAC (:meth:`AuditKey.keys`)."""
    given = os.environ.get(KEY_ENV)
    if not given or given.startswith(LEGACY_TEXT_PREFIX):
        return None
    return given.encode()


@dataclass
class AuditKey:
    """Where a registry's audit key comes from, loaded when first needed.

    ``given`` (bytes passed to :meth:`Registry.open`) wins, then ``MOORING_AUDIT_KEY``,
    then the key file at ``path``. Reading never creates the file; :meth:`create`
    (a writer, on a chain that is not keyed yet) does.
    """

    given: bytes | None = None
    path: Path | None = None
    _loaded: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes | None:
        """The key if there is one (no file is created)."""
        if self.given is not None:
            return self.given
        if self._loaded is None:
            self._loaded = load_audit_key(self.path, create=False)
        return self._loaded

    def keys(self) -> tuple[bytes, ...]:
        """The key (none without one), then, when it comes from ``MOORING_AUDIT_KEY``, the
        variable's raw bytes: an older mooring keyed the log with those, and a log that
        carries their HMAC is read and extended with them (:func:`chain_key`)."""
        key = self.read()
        if key is None:
            return ()
        legacy = None if self.given is not None else _legacy_env_key()
        return (key,) if legacy is None or legacy == key else (key, legacy)

    def create(self) -> bytes | None:
        """The key, creating the key file when there is none (None without a key file)."""
        if self.given is None and self._loaded is None:
            self._loaded = load_audit_key(self.path, create=True)
        return self.read()

    def where(self) -> str:
        """Where the key was looked for, for messages."""
        if self.given is not None:
            return "the key passed to Registry.open"
        if os.environ.get(KEY_ENV):
            return KEY_ENV
        if self.path is None:
            return f"{KEY_ENV} (not set; no key file: the registry was opened by URL)"
        return f"{KEY_ENV} (not set), then the key file '{self.path}'"

    def missing(self) -> str:
        """Why there is no key and how to provide one."""
        found = "does not exist" if self.path is not None else "is not configured"
        return (
            f"no audit key: {KEY_ENV} is not set and the key file {found}"
            + (f" ('{self.path}')" if self.path is not None else "")
            + f"; set {KEY_ENV} from your secret store, or pass -c mooring.toml whose "
            "[project] audit_key_file (default <home>/audit.key, written by `mooring init`) "
            "holds it; restore a lost key file from a backup"
        )


def chain_key(rows: Sequence[Mapping[str, Any]], keys: Sequence[bytes]) -> bytes | None:
    """Of the candidate ``keys`` (:meth:`AuditKey.keys`), the one whose HMAC the most
    stored ``rows`` carry; the first on a tie (and for an empty log)."""
    if len(keys) < 2:
        return keys[0] if keys else None

    def carried(key: bytes) -> int:
        return sum(event_hash(**_fields(r, r["prev_hash"]), key=key) == r["hash"] for r in rows)

    return max(keys, key=carried)


def writer_key(
    source: AuditKey,
    head: Mapping[str, Any] | None,
    rows: Callable[[], Sequence[Mapping[str, Any]]],
) -> bytes | None:
    """The key a writer chains its events with, given the chain's last event ``head``
    (its stored row; None for an empty log) and, read only when there is no key yet,
    all its ``rows``.

    The key file is created when the log is empty or every event is plain sha256 (a
    registry from before keyed audit: the first keyed event binds them; the whole log
    is read for this, once). Refused (rather than forking the chain with a new key)
    when an event is keyed and there is no key, or when the last event carries neither
    this key's HMAC nor a plain sha256. Without a key file only the last event is
    checked before a plain sha256 event is appended.

    Raises:
        UsageError: the log is keyed and no key was found.
        IntegrityError: the last event was not chained with this key.
    """
    keys = source.keys()
    if not keys:
        suspects = rows() if source.path is not None else [] if head is None else [head]
        keyed = next((row for row in suspects if not _plain(row)), None)
        if keyed is None:
            return source.create()
        raise UsageError(
            f"the audit log is keyed (event {keyed['seq']} carries an HMAC), so it cannot be "
            f"extended without its key: {source.missing()}"
        )
    if head is None or _plain(head):
        return keys[0]
    for key in keys:  # the key, then the raw text an older mooring keyed the log with
        if event_hash(**_fields(head, head["prev_hash"]), key=key) == head["hash"]:
            return key
    raise IntegrityError(
        f"the last audit event ({head['seq']}, {head['action']}) does not carry the HMAC of "
        f"the audit key from {source.where()}: it is not the key the log was written with, or "
        "the event was rewritten; nothing was written. Use the registry's key, and run "
        "`mooring audit verify` to see what changed"
    )


def _plain(row: Mapping[str, Any]) -> bool:
    return bool(event_hash(**_fields(row, row["prev_hash"])) == row["hash"])


def parse_head(text: str) -> tuple[int, str]:
    """``"SEQ:HASH"`` (as ``mooring audit head`` prints it) → (seq, hash).

    >>> parse_head("12:" + "ab" * 32)[0]
    12
    """
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(
            f"expected head {text!r} to look like SEQ:HASH (64 hex digits), as "
            "`mooring audit head` prints it"
        )
    return int(seq), digest


def _fields(row: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    return {
        "created_at": row["created_at"],
        "actor": row["actor"],
        "action": row["action"],
        "model": row["model"],
        "version": row["version"],
        "reason": row["reason"],
        "forced": row["forced"],
        "before": row["before"],
        "after": row["after"],
        "prev_hash": prev_hash,
    }


def verify_chain(
    rows: Sequence[dict[str, Any]],
    *,
    head_seq: int | None,
    head_hash: str | None,
    key: bytes | None = None,
    expect_head: tuple[int, str] | None = None,
) -> AuditReport:
    """Check stored audit rows (ordered by ``seq``) against their hashes and links.

    ``rows`` carry the stored columns: seq, created_at, actor, action, model,
    version, reason, forced, before, after (JSON text), prev_hash, hash. With ``key``
    every event must carry its HMAC, except a prefix of plain sha256 events written
    before the registry had a key and followed by a keyed event (counted as
    ``legacy_events``); a plain event after a keyed one is ``unkeyed``, a plain prefix
    with no keyed event after it ``unsealed``. ``expect_head`` (seq, hash), anchored
    elsewhere earlier, must still be in the chain. ``head_seq``/``head_hash`` None: the
    recorded head is missing (a ``head`` problem; the report's ``head_seq`` is then 0).
    """
    problems: list[AuditProblem] = []
    position = {row["hash"]: row["seq"] for row in rows}
    expected_prev = GENESIS_HASH
    expected_seq = 1
    legacy: list[int] = []  # plain sha256 events before the first keyed one
    keyed_seen = False
    for row in rows:
        seq = row["seq"]
        recomputed = event_hash(**_fields(row, row["prev_hash"]), key=key)
        plain = key is not None and event_hash(**_fields(row, row["prev_hash"])) == row["hash"]
        if recomputed == row["hash"]:
            keyed_seen = keyed_seen or key is not None
        elif plain and not keyed_seen:
            legacy.append(seq)
        elif plain:
            problems.append(
                AuditProblem(
                    seq,
                    "unkeyed",
                    f"audit event {seq} ({row['action']}) is chained with plain sha256 after "
                    "keyed events: it was rewritten by someone without the audit key, or "
                    "written by a writer without it",
                )
            )
        else:
            problems.append(
                AuditProblem(
                    seq,
                    "edited",
                    f"audit event {seq} ({row['action']}) was edited: its content no longer "
                    "matches its recorded "
                    + ("HMAC (or it was chained with another key)" if key is not None else "hash"),
                )
            )
        if seq > expected_seq:
            gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            problems.append(
                AuditProblem(
                    seq,
                    "deleted",
                    f"audit event(s) {gap} before event {seq} were deleted",
                )
            )
        elif row["prev_hash"] != expected_prev:
            linked = position.get(row["prev_hash"])
            if linked is not None and linked != seq:
                problems.append(
                    AuditProblem(
                        seq,
                        "reordered",
                        f"audit event {seq} is out of order: it was written after the event now "
                        f"at {linked}",
                    )
                )
            else:
                problems.append(
                    AuditProblem(
                        seq,
                        "deleted",
                        f"audit event {seq} does not follow the event before it: an event "
                        "between them was deleted or rewritten",
                    )
                )
        expected_prev = row["hash"]
        expected_seq = seq + 1
    problems.extend(_head_problems(rows, head_seq, head_hash))
    if expect_head is not None:
        seq, digest = expect_head
        found = next((row for row in rows if row["seq"] == seq), None)
        if found is None or found["hash"] != digest:
            problems.append(
                AuditProblem(
                    seq,
                    "deleted" if found is None else "edited",
                    f"the anchored head {seq}:{digest[:12]}… is not in the chain "
                    + (
                        "(the log was cut short before it)"
                        if found is None
                        else f"(event {seq} now hashes to {found['hash'][:12]}…)"
                    ),
                )
            )
    if legacy and not keyed_seen:
        problems.append(
            AuditProblem(
                legacy[-1],
                "unsealed",
                f"audit event(s) {_span(legacy)} are chained with plain sha256 (written before "
                "the registry had an audit key) and no keyed event follows them, so a rewrite "
                "of them cannot be ruled out; the next registry write with the key, or "
                "`mooring audit seal -r REASON`, binds them to it",
            )
        )
    return AuditReport(
        events=len(rows),
        head_seq=head_seq or 0,
        problems=tuple(problems),
        keyed=key is not None,
        legacy_events=len(legacy),
    )


def _head_problems(
    rows: Sequence[Mapping[str, Any]], head_seq: int | None, head_hash: str | None
) -> list[AuditProblem]:
    """The last event against the recorded head (a cut or extended log), or the head's absence."""
    last_seq = rows[-1]["seq"] if rows else 0
    last_hash = rows[-1]["hash"] if rows else GENESIS_HASH
    if head_seq is None or head_hash is None:
        return [
            AuditProblem(
                last_seq,
                "head",
                "the recorded head of the chain (table audit_head, row id 1) is missing: it was "
                "deleted outside the registry, so a cut end of the log cannot be told from the "
                "chain alone, and writers refuse to write; restore the row from a backup, or, "
                "once the last event is checked against a head anchored elsewhere (--expect-head)"
                f", put it back: INSERT INTO audit_head (id, seq, hash) VALUES (1, {last_seq}, "
                f"'{last_hash}')",
            )
        ]
    if head_seq > last_seq:
        return [
            AuditProblem(
                last_seq + 1,
                "deleted",
                f"audit event(s) {last_seq + 1}-{head_seq} at the end of the log were deleted",
            )
        ]
    if head_seq < last_seq:
        return [
            AuditProblem(
                head_seq + 1,
                "edited",
                f"audit event(s) {head_seq + 1}-{last_seq} were added outside the registry "
                f"(the recorded head of the chain is event {head_seq})",
            )
        ]
    if head_hash != last_hash:
        return [
            AuditProblem(
                last_seq,
                "edited",
                f"audit event {last_seq} does not match the recorded head of the chain",
            )
        ]
    return []


def _span(seqs: Sequence[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}-{seqs[-1]}"
