"""Released by a second person: with ``production_requires = "approval"`` a version reaches
production only once someone other than its registrant approved it; approvers and
protected aliases are enforced. On SQLite and PostgreSQL (the ``registry`` fixture), with
small blessed folders, no trained model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.config._registry import RegistryConfig
from mooring.errors import UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._approval import ApprovalError, ReleaseRules, person
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir
from tests._support.cli import mooring_in_process

APPROVAL = ReleaseRules(production_requires="approval")


def _blessed(registry: Registry, tmp_path: Path, seed: int, *, by: str) -> int:
    folder = make_model_dir(tmp_path / f"m{seed}", seed)
    record = VersionRecord(lineage=LINEAGE, gate=BLESSED)
    return register_judged(registry, "income", folder, record, created_by=by).version


def test_one_actor_cannot_register_and_promote_alone(registry: Registry, tmp_path: Path) -> None:
    registry.release = APPROVAL
    v1 = _blessed(registry, tmp_path, 1, by="ana")
    with pytest.raises(
        ApprovalError,
        match=r"income@1 cannot become production: \[registry\] production_requires = "
        r"\"approval\", and it has no approval by someone other than its registrant 'ana'; "
        r"'ana' tried to release it\. Needed: an approval by someone other than 'ana' "
        r"\(anyone\): mooring models approve income 1 -r REASON --actor NAME",
    ):
        registry.promote("income", version=v1, actor="ana", reason="good")
    with pytest.raises(ApprovalError, match=r"'ana' tried to release it"):
        registry.deploy("income", production=v1, actor="ana")
    with pytest.raises(ApprovalError, match=r"'ana' registered income@1 and cannot approve it"):
        registry.approve("income", version=v1, reason="mine is fine", actor="ana")
    # The dashboard's actors carry their channel: still the same person.
    with pytest.raises(ApprovalError, match=r"'ana \(mooring-ui\)' registered income@1"):
        registry.approve("income", version=v1, reason="mine", actor="ana (mooring-ui)")
    assert registry.deployment("income").production is None
    assert [e.action for e in registry.history("income")] == ["register"]


def test_two_actors_release_and_both_are_in_the_audit_log(
    registry: Registry, tmp_path: Path
) -> None:
    registry.release = APPROVAL
    v1 = _blessed(registry, tmp_path, 1, by="ana")
    with pytest.raises(UsageError, match=r"approving income@1 needs a reason"):
        registry.approve("income", version=v1, reason=" ", actor="bob")
    event = registry.approve("income", version=v1, reason="eval report reviewed", actor="bob")
    assert (event.action, event.version, event.actor, event.after) == (
        "approve", 1, "bob", {"approved": 1, "registered_by": "ana"}
    )  # fmt: skip
    registry.promote("income", version=v1, actor="ana", reason="beats the baseline")
    assert registry.deployment("income").production == v1
    log = [(e.action, e.actor, e.version) for e in registry.history("income")]
    assert log == [("register", "ana", 1), ("approve", "bob", 1), ("promote", "ana", 1)]
    promoted = registry.history("income")[-1]
    assert promoted.reason == f"beats the baseline; approved by bob (audit event {event.seq})"
    assert registry.verify_audit().ok

    # An approval is of one version: the next needs its own, also through deploy.
    v2 = _blessed(registry, tmp_path, 2, by="ana")
    with pytest.raises(ApprovalError, match=r"income@2 cannot become production"):
        registry.deploy("income", production=v2, actor="carol")
    # A canary at the first rollout step is not production: it needs no approval, and its
    # promotion does.
    registry.deploy("income", production=v1, canary=v2, weight=5, actor="ana")
    with pytest.raises(ApprovalError, match=r"income@2 cannot become production"):
        registry.promote("income", version=v2, actor="mooring-monitor", reason="steps passed")
    registry.approve("income", version=v2, reason="canary looked fine", actor="bob (mooring-ui)")
    registry.promote("income", version=v2, actor="mooring-monitor", reason="steps passed")
    assert registry.deployment("income").production == v2
    # Rolling back restores a version that was production: no new approval.
    assert registry.rollback("income", actor="ana").production == v1


def test_an_unapproved_canary_serves_at_most_the_first_rollout_step(
    registry: Registry, tmp_path: Path
) -> None:
    registry.release = ReleaseRules(production_requires="approval", first_step=5)
    v1 = _blessed(registry, tmp_path, 1, by="bob")
    registry.approve("income", version=v1, reason="first model", actor="carol")
    registry.deploy("income", production=v1, actor="carol")
    v2 = _blessed(registry, tmp_path, 2, by="alice")
    for weight in (99, 6):
        with pytest.raises(
            ApprovalError,
            match=rf"income@2 cannot serve {weight}% of requests as a canary: \[registry\] "
            r"production_requires = \"approval\", and until someone other than its registrant "
            rf"'alice' approves it a version serves at most the first rollout step, 5% "
            rf"\(\[rollout\] steps\); 'alice' asked for {weight}%\. Deploy it at --weight 5 "
            r"or less, or have it approved \(anyone\): mooring models approve income 2",
        ):
            registry.deploy("income", production=v1, canary=v2, weight=weight, actor="alice")
    registry.deploy("income", production=v1, canary=v2, weight=5, actor="alice")
    # Raising the weight of the canary serving now is the same road.
    with pytest.raises(ApprovalError, match=r"income@2 cannot serve 50% of requests"):
        registry.deploy("income", production=v1, canary=v2, weight=50, actor="alice")
    # Her own name in other letters is still her: it does not count as a second person.
    with pytest.raises(ApprovalError, match=r"'Alice ' registered income@2 and cannot approve"):
        registry.approve("income", version=v2, reason="looks fine", actor="Alice ")
    assert registry.deployment("income").canary_weight == 5
    registry.approve("income", version=v2, reason="eval read", actor="Carol")
    assert registry.deploy("income", production=v1, canary=v2, weight=99).canary_weight == 99
    assert registry.verify_audit().ok


def test_names_are_compared_whatever_their_letters_case(registry: Registry, tmp_path: Path) -> None:
    registry.release = ReleaseRules(production_requires="approval", approvers=("Carol",))
    v1 = _blessed(registry, tmp_path, 1, by="alice")
    # An approval by the registrant under other letters (as names were compared before they
    # were compared case-insensitively) stays in the log as given and never counts.
    registry.store.record_event(
        action="approve",
        model="income",
        version=v1,
        actor="ALICE",
        reason="mine",
        before=None,
        after={"approved": v1, "registered_by": "alice"},
    )
    registry.release = ReleaseRules(production_requires="approval")
    with pytest.raises(
        ApprovalError, match=r"the approval by 'ALICE' \(audit event 2\) does not count: they "
    ):
        registry.promote("income", version=v1, actor="bob")
    registry.release = ReleaseRules(production_requires="approval", approvers=("Carol",))
    event = registry.approve("income", version=v1, reason="reviewed", actor="cAROL (mooring-ui)")
    assert event.actor == "cAROL (mooring-ui)"
    assert registry.promote("income", version=v1, actor="bob").production == v1


def test_the_approver_list_is_enforced_at_approval_and_at_release(
    registry: Registry, tmp_path: Path
) -> None:
    registry.release = ReleaseRules(production_requires="approval", approvers=("carol",))
    v1 = _blessed(registry, tmp_path, 1, by="ana")
    with pytest.raises(
        ApprovalError,
        match=r"'bob' is not among \[registry\] approvers \(carol\) and cannot approve "
        r"income@1; ask one of them",
    ):
        registry.approve("income", version=v1, reason="looks fine", actor="bob")
    # An approval recorded before the list named its approvers no longer counts.
    registry.release = APPROVAL
    registry.approve("income", version=v1, reason="looks fine", actor="bob")
    registry.release = ReleaseRules(production_requires="approval", approvers=("carol",))
    with pytest.raises(
        ApprovalError,
        match=r"the approval by 'bob' \(audit event 2\) does not count: not an approver; "
        r"'dave' tried to release it\. Needed: an approval by someone other than 'ana' "
        r"\(one of \[registry\] approvers \(carol\)\)",
    ):
        registry.promote("income", version=v1, actor="dave")
    registry.approve("income", version=v1, reason="reviewed", actor="carol")
    assert registry.promote("income", version=v1, actor="dave").production == v1


def test_protected_aliases_move_only_by_approvers(registry: Registry, tmp_path: Path) -> None:
    registry.release = ReleaseRules(approvers=("carol",), protected_aliases=("champion",))
    v1 = _blessed(registry, tmp_path, 1, by="ana")
    registry.set_alias("income", "candidate", version=v1, actor="ana")  # not protected
    with pytest.raises(
        ApprovalError,
        match=r"alias 'champion' of model 'income' is protected \(\[registry\] "
        r"protected_aliases\) and 'ana' is not an approver; only one of \[registry\] "
        r"approvers \(carol\) may set or move it",
    ):
        registry.set_alias("income", "champion", version=v1, actor="ana")
    registry.set_alias("income", "champion", version=v1, actor="carol (mooring-ui)")
    with pytest.raises(ApprovalError, match=r"'bob' is not an approver"):
        registry.remove_alias("income", "champion", actor="bob")
    assert registry.aliases("income")["champion"] == v1
    registry.remove_alias("income", "champion", actor="carol")
    assert "champion" not in registry.aliases("income")


def test_a_protected_production_is_changed_only_by_approvers(
    registry: Registry, tmp_path: Path
) -> None:
    registry.release = ReleaseRules(approvers=("carol",), protected_aliases=("production",))
    v1 = _blessed(registry, tmp_path, 1, by="ana")
    v2 = _blessed(registry, tmp_path, 2, by="ana")
    with pytest.raises(ApprovalError, match=r"alias 'production' of model 'income' is protected"):
        registry.promote("income", version=v1, actor="ana")
    registry.promote("income", version=v1, actor="carol")
    registry.promote("income", version=v2, actor="carol")
    with pytest.raises(ApprovalError, match=r"'ana' is not an approver"):
        registry.rollback("income", actor="ana")
    assert registry.rollback("income", actor="carol").production == v1


def test_protected_aliases_without_approvers_are_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match=r"protected_aliases = \['champion'\] needs approvers"):
        RegistryConfig(protected_aliases=["champion"])
    rules = ReleaseRules.from_config(
        RegistryConfig(production_requires="approval", approvers=["carol (mooring-ui)", "dave"])
    )
    assert (rules.approval_required, rules.approvers) == (True, ("carol", "dave"))


@given(
    name=st.text(st.characters(exclude_characters="()", exclude_categories=("Cs",)), min_size=1)
    .map(str.strip)
    .filter(bool),
    channel=st.text(st.characters(exclude_characters="()", exclude_categories=("Cs",))),
)
def test_a_channel_never_changes_who_acts(name: str, channel: str) -> None:
    assert person(f"{name} ({channel})") == person(name) == name
    rules = ReleaseRules(production_requires="approval")
    assert not rules.may_approve(f"{name} ({channel})", registrant=name)


def test_the_command_line_approves_and_refuses_as_the_api_does(tmp_path: Path) -> None:
    project = tmp_path / "mooring.toml"
    project.write_text(
        '[project]\nname = "income"\n[data]\ntrain = "train.csv"\n'
        '[registry]\nproduction_requires = "approval"\n'
    )
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(url, artifacts=tmp_path / "artifacts") as registry:
        _blessed(registry, tmp_path, 1, by="ana")
        _blessed(registry, tmp_path, 2, by="ana")
    where = ["--registry", url, "--artifacts", str(tmp_path / "artifacts"), "-c", str(project)]
    refused = mooring_in_process("models", "promote", "income", "1", "--actor", "ana", *where)
    assert refused.returncode == 1
    assert "Needed: an approval by someone other than 'ana'" in " ".join(refused.stderr.split())
    approved = mooring_in_process(
        "models", "approve", "income", "1", "-r", "reviewed", "--actor", "bob", *where
    )
    assert approved.returncode == 0, approved.stderr
    assert "income@1: approved by bob (audit event 3)" in approved.stdout
    promoted = mooring_in_process("models", "promote", "income", "1", "--actor", "ana", *where)
    assert promoted.returncode == 0, promoted.stderr
    # A second version by the same registrant: no canary past the first step of [rollout]
    # steps (the default, 5%) on the command line, and no approval by her under other letters.
    canary = ["models", "deploy", "income", "-p", "1", "--canary", "2", "--actor", "ana"]
    refused = mooring_in_process(*canary, "-w", "99", *where)
    assert refused.returncode == 1
    assert "at most the first rollout step, 5% ([rollout] steps); 'ana' asked for 99%" in " ".join(
        refused.stderr.split()
    )
    assert mooring_in_process(*canary, "-w", "5", *where).returncode == 0
    own = mooring_in_process(
        "models", "approve", "income", "2", "-r", "x", "--actor", "Ana", *where
    )
    assert own.returncode == 1
    assert "'Ana' registered income@2 and cannot approve it" in " ".join(own.stderr.split())
