"""No self-blessing: the public ``Registry.register`` cannot bless a folder by saying so.

A version registered through the Python API is unevaluated: not blessed, deployable only
with force and a reason, which the audit log records. Only mooring's evaluation (the
pipeline's register step, :func:`mooring.registry._judged.register_judged`) records a
gate decision. On SQLite and PostgreSQL (the ``registry`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.errors import ChecksFailedError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from tests._support.artifacts import BLESSED, LINEAGE, NOT_BLESSED, make_model_dir


@pytest.mark.parametrize("gate", [BLESSED, NOT_BLESSED, {"blessed": True}], ids=["blessed",
                         "failed", "bare"])  # fmt: skip
def test_a_record_with_a_gate_is_refused_and_nothing_is_stored(
    registry: Registry, tmp_path: Path, gate: dict[str, object]
) -> None:
    folder = make_model_dir(tmp_path / "model", 0)
    with pytest.raises(UsageError, match=r"record\.gate = .* is refused: a version's gate decision "
                       r"is computed by mooring's evaluation"):  # fmt: skip
        registry.register("income", folder, VersionRecord(lineage=LINEAGE, gate=gate))
    assert registry.models() == []
    assert not any((tmp_path / "artifacts").rglob("saved_model.pb"))


def test_a_version_registered_through_the_api_is_unevaluated(
    registry: Registry, tmp_path: Path
) -> None:
    folder = make_model_dir(tmp_path / "model", 0)
    mv = registry.register("income", folder, VersionRecord(lineage=LINEAGE), reason="imported")
    assert (mv.version, mv.blessed, mv.gate, mv.verdict) == (1, False, None, "unevaluated")
    with pytest.raises(ChecksFailedError, match=r"income@1 is unevaluated \(registered without "
                       r"mooring's evaluation\), so it cannot become production"):  # fmt: skip
        registry.promote("income", version=1)
    with pytest.raises(UsageError, match=r"needs a reason"):
        registry.promote("income", version=1, force=True)
    assert registry.deployment("income").production is None

    registry.promote("income", version=1, force=True, reason="owner accepts it", actor="ana")
    assert registry.deployment("income").production == 1
    event = registry.history("income")[-1]
    assert (event.action, event.version, event.forced, event.reason, event.actor) == (
        "promote", 1, True, "owner accepts it", "ana"
    )  # fmt: skip
