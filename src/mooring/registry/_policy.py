"""Which version may be deployed: the blessing rule the store enforces in every write, and
the artifact check the registry runs before it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import RowMapping

from mooring.errors import (
    ChecksFailedError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    UsageError,
)
from mooring.formats._gate import UNGATED, DecisionRecord
from mooring.registry._clients import Door
from mooring.registry._sql.tx import loads

__all__ = ["check_artifacts", "check_deployable", "check_inputs"]


def check_deployable(
    row: RowMapping, name: str, version: int, role: str, force: bool, reason: str | None
) -> bool:
    """Raise unless version ``row`` may take ``role``; return True when force was needed.

    A ready, blessed version may; an unblessed one only with ``force`` and a reason (the
    audit log records it); an archived one never. An *ungated* version (its decision
    judged by no gate, :attr:`mooring.formats._gate.DecisionRecord.is_ungated`) is
    unblessed, and the refusal says so.
    """
    if row["status"] != "ready":
        raise ConflictError(
            f"{name}@{version} is archived and cannot become {role}; restore it first "
            f"(Registry.restore) or choose another version"
        )
    if row["blessed"]:
        return False
    if not force:
        decision = DecisionRecord.of(loads(row["gate"]))
        failed = [
            f"{g.name}={g.value} (bound {g.bound})"
            for g in (decision.failures if decision is not None else ())
        ]
        if decision is not None and decision.is_ungated:
            raise ChecksFailedError(
                f"{name}@{version} is not blessed ({UNGATED}), so it cannot become {role}; "
                "have gates judge a model (declare [[evaluation.gates]] or keep [evaluation] "
                "default_gates = true, then `mooring run`), or override with force=True and a "
                "reason (CLI: --force --reason TEXT)"
            )
        if decision is None:
            raise ChecksFailedError(
                f"{name}@{version} is unevaluated (registered without mooring's evaluation), "
                f"so it cannot become {role}; evaluate a model with gates (`mooring run`), or "
                "override with force=True and a reason (CLI: --force --reason TEXT)"
            )
        why = f"failed gates: {', '.join(failed)}" if failed else "its gate did not bless it"
        raise ChecksFailedError(
            f"{name}@{version} is not blessed ({why}), so it cannot become {role}; fix the "
            "model, or override with force=True and a reason (CLI: --force --reason TEXT)"
        )
    if not (reason and reason.strip()):
        raise UsageError(
            f"forcing unblessed {name}@{version} to {role} needs a reason; pass "
            "reason='…' (CLI: --reason TEXT) so the audit log records why"
        )
    return True


def check_artifacts(
    verify: Callable[..., None], versions: list[int], force: bool, reason: str | None
) -> tuple[str | None, bool]:
    """Refuse to deploy versions whose stored artifact fails ``verify`` (the check a server
    runs when it loads one), unless forced with a reason; then the reason recorded in the
    audit log says what failed. Returns that reason and whether force was needed.
    """
    failures = []
    for version in versions:
        try:
            verify(version=version)
        except IntegrityError as exc:
            failures.append(str(exc))
        except NotFoundError:
            pass  # the store names the missing version
    if not failures:
        return reason, False
    if not force:
        raise IntegrityError(
            "; ".join(failures) + ". A server could not load it (a restarted one would fall "
            "back or serve nothing); deploy another version, or override with force=True and "
            "a reason (CLI: --force --reason TEXT)"
        )
    if not (reason or "").strip():
        raise UsageError(
            "forcing a version whose artifact fails verification needs a reason, got "
            f"{'none' if reason is None else repr(reason)} ({'; '.join(failures)}); pass "
            "reason='…' (CLI: --reason TEXT) so the audit log records why"
        )
    return f"{reason} [deployed although: {'; '.join(failures)}]", True


def check_inputs(
    door: Callable[[int], Door | None],
    production: int | None,
    versions: list[tuple[int, str]],
    force: bool,
    reason: str | None,
) -> tuple[str | None, bool]:
    """Refuse to put a version beside ``production`` (as canary or shadow) or in its place
    (promote) when the server would answer production's clients 400 from it, unless forced
    with a reason; the audit log's reason then names the door's answer.

    The verdict is the server's own decoder's on a request production's clients send
    (:mod:`mooring.registry._clients`): a field the new version's contract knows (a column
    it excludes) is taken and ignored, as the server does, so it is no refusal. Versions
    that record neither a signature nor their inputs are not judged. Returns the reason
    and whether force was needed.
    """
    if production is None:
        return reason, False
    serving = door(production)
    if serving is None:
        return reason, False
    problems = []
    for version, role in versions:
        mine = door(version) if version != production else None
        answer = mine.answer(serving.request()) if mine is not None else None
        if answer is not None:
            problems.append(
                f"v{version} as {role} would answer production v{production}'s clients "
                f"400: {answer}"
            )
    if not problems:
        return reason, False
    if not force:
        raise ConflictError(
            "; ".join(problems) + ". Clients of production would get 400s from it; train it "
            "under production's contract, or override with force=True and a reason once "
            "clients send the new inputs (CLI: --force --reason TEXT)"
        )
    if not (reason or "").strip():
        raise UsageError(
            f"forcing a version the server would answer production's clients 400 from needs "
            f"a reason ({'; '.join(problems)}); pass reason='…' (CLI: --reason TEXT)"
        )
    return f"{reason} [deployed although: {'; '.join(problems)}]", True
