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
from mooring.registry._sql.tx import loads

__all__ = ["check_artifacts", "check_deployable", "check_inputs", "input_differences"]

_NUMBERS = frozenset({"integer", "float"})


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


def input_differences(serving: dict[str, str], candidate: dict[str, str]) -> list[str]:
    """How ``candidate``'s inputs differ from what the clients of ``serving`` send.

    The door refuses a request with a field the model does not read and one without a
    field it does, so both are differences, and so is a changed type (integer and float
    are one: both travel as numbers).

    Examples:
        >>> input_differences({"age": "integer", "workclass": "string"}, {"age": "float"})
        ["'workclass': clients send it and the new version refuses it (unexpected field)"]
    """
    out = [
        f"{name!r}: clients send it and the new version refuses it (unexpected field)"
        for name in serving
        if name not in candidate
    ]
    out += [
        f"{name!r}: the new version needs it and clients do not send it (missing field)"
        for name in candidate
        if name not in serving
    ]
    for name, kind in serving.items():
        other = candidate.get(name)
        if other is not None and other != kind and not {kind, other} <= _NUMBERS:
            out.append(f"{name!r}: clients send {kind}, the new version reads {other}")
    return out


def check_inputs(
    inputs: Callable[[int], dict[str, str] | None],
    production: int | None,
    versions: list[tuple[int, str]],
    force: bool,
    reason: str | None,
) -> tuple[str | None, bool]:
    """Refuse to put a version beside ``production`` (as canary, shadow or its successor)
    when its inputs differ from production's (:func:`input_differences`), unless forced
    with a reason; the audit log's reason then names the differences. Versions that do not
    record their inputs are not judged. Returns that reason and whether force was needed.
    """
    if production is None:
        return reason, False
    serving = inputs(production)
    if serving is None:
        return reason, False
    problems = []
    for version, role in versions:
        mine = inputs(version) if version != production else None
        found = input_differences(serving, mine) if mine is not None else []
        if found:
            problems.append(
                f"v{version} as {role} against production v{production}: " + "; ".join(found)
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
            f"forcing a version whose inputs differ from production's needs a reason "
            f"({'; '.join(problems)}); pass reason='…' (CLI: --reason TEXT)"
        )
    return f"{reason} [deployed although: {'; '.join(problems)}]", True
