"""Admin actions: bearer token, a reason, the registry change and its audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mooring.dashboard._app import DEFAULT_ACTOR, create_ui, standalone_app
from mooring.registry._actors import token_digest
from mooring.registry._approval import ReleaseRules
from tests.dashboard._data import NAME, TOKEN
from tests.dashboard.conftest import Site

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui")]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def restore(site: Site) -> Iterator[None]:
    """Put production v1, canary v2 at 20% back after a test that changes them."""
    yield
    dep = site.registry.deployment(NAME)
    if (dep.production, dep.canary, dep.canary_weight) != (1, 2, 20):
        site.registry.deploy(NAME, production=1, canary=2, weight=20, reason="test cleanup")


def post(site: Site, action: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return site.client.post(f"/ui/api/models/{NAME}/{action}", json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_401_without_the_right_token_and_nothing_changes(
    site: Site, headers: dict[str, str] | None
) -> None:
    before = site.registry.history(NAME)
    res = post(site, "promote", {"version": 2, "reason": "try"}, headers)
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in res.json()["error"]
    assert site.registry.history(NAME) == before
    assert site.registry.deployment(NAME).production == 1


@pytest.mark.parametrize("reason", [None, "", "   ", 5])
def test_a_reason_is_required(site: Site, reason: Any) -> None:
    body: dict[str, Any] = {"version": 2}
    if reason is not None:
        body["reason"] = reason
    before = len(site.registry.history(NAME))
    res = post(site, "promote", body, AUTH)
    assert res.status_code == 400
    assert res.json()["error"].startswith("reason: required")
    assert len(site.registry.history(NAME)) == before


def test_only_json_bodies_are_accepted(site: Site) -> None:
    res = site.client.post(
        f"/ui/api/models/{NAME}/rollback",
        content=b"reason=because",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 400 and "Content-Type: application/json" in res.json()["error"]
    bad = site.client.post(
        f"/ui/api/models/{NAME}/rollback",
        content=b"{nope",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]


def test_promote_writes_the_audit_log_and_shows_on_the_page(site: Site, restore: None) -> None:
    res = post(site, "promote", {"version": 2, "reason": "v2 beat v1 on the canary"}, AUTH)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["deployment"]["production"] == 2 and body["deployment"]["canary"] is None
    event = site.registry.history(NAME, limit=1)[-1]
    assert body["event"]["seq"] == event.seq
    assert (event.action, event.version, event.actor) == ("promote", 2, DEFAULT_ACTOR)
    assert event.reason == "v2 beat v1 on the canary"
    assert site.registry.verify_audit().ok
    assert site.applied[-1] == (NAME, 2)
    page = site.client.get(f"/ui/models/{NAME}").text
    assert "v2 beat v1 on the canary" in page
    assert '<dd id="production">v2</dd>' in page


def test_the_actor_is_recorded_next_to_the_dashboard(site: Site, restore: None) -> None:
    res = post(site, "canary", {"version": 2, "weight": 50, "reason": "more", "actor": "ana"}, AUTH)
    assert res.status_code == 200, res.text
    event = site.registry.history(NAME, limit=1)[-1]
    assert event.actor == f"ana ({DEFAULT_ACTOR})"
    dep = site.registry.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight) == (1, 2, 50)
    assert event.after == {"production": 1, "canary": 2, "weight": 50}


def test_canary_off_and_weight_bounds(site: Site, restore: None) -> None:
    for weight in (-1, 101, "lots", 2.5):
        res = post(site, "canary", {"version": 2, "weight": weight, "reason": "r"}, AUTH)
        assert res.status_code == 400 and res.json()["error"].startswith("weight: expected")
    res = post(site, "canary", {"version": None, "reason": "stop the canary"}, AUTH)
    assert res.status_code == 200
    dep = site.registry.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight) == (1, None, 0)


def test_rollback_restores_the_previous_production(site: Site, restore: None) -> None:
    assert post(site, "promote", {"version": 2, "reason": "up"}, AUTH).status_code == 200
    res = post(site, "rollback", {"reason": "latency doubled"}, AUTH)
    assert res.status_code == 200, res.text
    assert res.json()["deployment"]["production"] == 1
    event = site.registry.history(NAME, limit=1)[-1]
    assert event.action == "rollback" and event.reason == "latency doubled"


def test_registry_refusals_come_back_as_4xx(site: Site) -> None:
    # v3 failed its gate: the registry refuses to promote it without force.
    res = post(site, "promote", {"version": 3, "reason": "please"}, AUTH)
    assert 400 <= res.status_code < 500
    assert "income@3 is not blessed" in res.json()["error"]
    assert site.registry.deployment(NAME).production == 1
    missing = post(site, "promote", {"version": 99, "reason": "x"}, AUTH)
    assert missing.status_code == 404
    unknown = site.client.post(
        "/ui/api/models/nope/promote", json={"version": 1, "reason": "x"}, headers=AUTH
    )
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    action = post(site, "explode", {"reason": "x"}, AUTH)
    assert (
        action.status_code == 404
        and "promote, approve, rollback, canary or shadow" in action.json()["error"]
    )


def test_an_approval_from_the_dashboard_releases_a_version(site: Site, restore: None) -> None:
    site.registry.release = ReleaseRules(production_requires="approval")
    try:
        registrant = site.registry.get(NAME, version=2).created_by
        refused = post(site, "promote", {"version": 2, "reason": "up"}, AUTH)
        assert refused.status_code == 422
        assert f"'{DEFAULT_ACTOR}' tried to release it" in refused.json()["error"]
        own = {"version": 2, "reason": "mine", "actor": registrant}
        res = post(site, "approve", own, AUTH)
        assert res.status_code == 422 and "cannot approve it" in res.json()["error"]
        res = post(site, "approve", {"version": 2, "reason": "read it", "actor": "rev"}, AUTH)
        assert res.status_code == 200, res.text
        assert res.json()["deployment"]["production"] == 1  # approving changes nothing
        event = site.registry.history(NAME, limit=1)[-1]
        assert (event.action, event.version) == ("approve", 2)
        assert event.actor == f"rev ({DEFAULT_ACTOR})"
        assert res.json()["event"]["seq"] == event.seq
        assert post(site, "promote", {"version": 2, "reason": "up"}, AUTH).status_code == 200
    finally:
        site.registry.release = ReleaseRules()
    page = site.client.get(f"/ui/models/{NAME}").text
    assert 'name="action" value="approve"' in page and ">Approve</button>" in page


def test_admin_actions_are_off_without_a_configured_token(site: Site) -> None:
    app = standalone_app(create_ui(registry=site.registry, home=site.home))
    with TestClient(app) as client:
        res = client.post(
            f"/ui/api/models/{NAME}/promote", json={"version": 2, "reason": "x"}, headers=AUTH
        )
    assert res.status_code == 404 and "admin actions are off" in res.json()["error"]
    assert site.registry.deployment(NAME).production == 1


def test_shadow_is_set_and_cleared_with_the_token_and_shows_on_the_page(site: Site) -> None:
    res = post(site, "shadow", {"version": 3, "rate": 0.25, "reason": "compare v3"}, AUTH)
    try:
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["deployment"]["shadow"] == 3 and body["deployment"]["shadow_rate"] == 0.25
        assert body["event"]["action"] == "shadow" and body["event"]["reason"] == "compare v3"
        assert body["event"]["actor"] == DEFAULT_ACTOR
        page = site.client.get(f"/ui/models/{NAME}").text
        assert "v3 at 25% of requests" in page and 'value="shadow">Set shadow' in page
        bad = post(site, "shadow", {"version": 3, "rate": 2, "reason": "too much"}, AUTH)
        assert bad.status_code == 400 and "shadow rate 2 is out of range" in bad.json()["error"]
        off = post(site, "shadow", {"version": "none", "reason": "done comparing"}, AUTH)
        assert off.status_code == 200 and off.json()["deployment"]["shadow"] is None
    finally:
        if site.registry.deployment(NAME).shadow is not None:
            site.registry.set_shadow(NAME, version=None, reason="test cleanup")


def test_a_persons_token_approves_as_that_person_and_no_one_else(site: Site) -> None:
    registrant = site.registry.get(NAME, version=2).created_by
    tokens = {token_digest("t-reg"): registrant, token_digest("t-rev"): "rev"}
    ui = create_ui(registry=site.registry, home=site.home, admin_tokens=tokens)
    before = len(site.registry.history(NAME))
    with TestClient(standalone_app(ui)) as client:

        def approve(token: str, actor: str | None) -> Any:
            body = {"version": 2, "reason": "read it", **({"actor": actor} if actor else {})}
            headers = {"Authorization": f"Bearer {token}"}
            return client.post(f"/ui/api/models/{NAME}/approve", json=body, headers=headers)

        # The registrant's token cannot approve in the reviewer's name ...
        res = approve("t-reg", "rev")
        assert res.status_code == 403
        assert res.json()["error"].startswith(
            f"actor: the request declares 'rev', but its token is {registrant!r}'s"
        )
        # ... nor in her own, whatever its letters.
        res = approve("t-reg", registrant.upper())
        assert res.status_code == 422 and "cannot approve it" in res.json()["error"]
        assert len(site.registry.history(NAME)) == before
        assert approve("t-rev", None).status_code == 200
    event = site.registry.history(NAME)[-1]
    assert (event.action, event.actor) == ("approve", f"rev ({DEFAULT_ACTOR})")
