"""The model page's rollout panel: each guardrail's state, estimate, interval, boundary, needed;
and the monitor's estimate of production's quality before labels beside it.

The rollout.json is the real controller's, after two ticks that leave the canary undecided.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mooring.dashboard._app import create_ui, standalone_app
from mooring.monitoring._estimate import estimate_line
from mooring.monitoring._rollout_state import RolloutDecision
from mooring.monitoring._rollout_view import rollout_path
from mooring.monitoring._state import estimate_file
from mooring.registry import Registry
from tests._support.rollout import NAME, registry_with_versions
from tests._support.rollout_evidence import rollout_project, undecided_rollout

pytestmark = pytest.mark.xdist_group("ui")


class Site:
    def __init__(self, root: Path) -> None:
        self.cfg = rollout_project(root / "home")
        self.registry: Registry = registry_with_versions(self.cfg)
        self.state_file = rollout_path(self.cfg.home, NAME)
        ui = create_ui(registry=self.registry, home=self.cfg.home)
        self.client = TestClient(standalone_app(ui), base_url="http://127.0.0.1")

    def page(self) -> str:
        res = self.client.get(f"/ui/models/{NAME}")
        html: str = res.text
        assert res.status_code == 200, html
        return html

    def undecided(self) -> RolloutDecision:
        return undecided_rollout(self.cfg, self.registry)[1]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path)
    yield made
    made.client.close()
    made.registry.close()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _panel(html: str) -> str:
    match = re.search(
        r'<section aria-labelledby="rollout-h" id="rollout">(.*?)</section>', html, re.S
    )
    assert match is not None, "no rollout panel on the page"
    return match.group(1)


def test_the_panel_lists_every_judging_guardrail_with_its_evidence(site: Site) -> None:
    decision = site.undecided()
    html = _panel(site.page())
    text = _text(html)
    assert "canary v2 at 10% against production v1: 2 ticks," in text
    assert "Last decision: insufficient_data canary v2 at 10%" in text
    assert "requests: canary has 5 of 20 needed at 10%" in text
    for g in decision.guardrails:
        if g.state == "off":
            continue
        row = re.search(rf'<tr class="guardrail-{g.state}">\s*<th scope="row">{g.name}</th>', html)
        assert row is not None, g.name
    errors = next(g for g in decision.guardrails if g.name == "errors")
    assert errors.interval is not None and errors.needed is not None
    lo, hi = errors.interval
    assert (
        f"errors undecided +0 [{lo:+.4g}, {hi:+.4g}] passes below +0.03, fails above +0 "
        f"{errors.needed}"
    ) in text
    assert '<span class="badge undecided">undecided</span>' in html
    assert '<span class="badge ok">pass</span>' in html  # load
    assert "more canary requests expected" in text
    assert f"From {site.state_file}" in text


def test_everything_from_the_file_is_escaped(site: Site) -> None:
    site.undecided()
    saved = json.loads(site.state_file.read_text())
    evil = "<script>alert(1)</script>"
    saved["last_decision"]["guardrails"][1]["message"] = evil
    saved["last_decision"]["guardrails"][1]["needed"] = f"{evil} more"
    saved["last_decision"]["reasons"].append(f"requests: {evil}")
    site.state_file.write_text(json.dumps(saved))
    html = site.page()
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; more" in _panel(html)


def test_a_malformed_rollout_file_is_a_note_on_a_working_page(site: Site) -> None:
    site.registry.deploy(NAME, production=1, canary=2, weight=10)
    site.state_file.parent.mkdir(parents=True)
    site.state_file.write_text('{"step": {"canary": 2}, "last_decision": 7}')
    text = _text(_panel(site.page()))
    assert f"no rollout shown: {site.state_file} has a malformed step (missing field 'weight')" in (
        text
    )
    assert "the last decision in" in text
    assert "is malformed (last_decision is not an object (got int))" in text
    assert "Guardrail" not in text


def test_no_panel_without_a_canary_or_a_rollout_file(site: Site) -> None:
    site.registry.deploy(NAME, production=1)
    assert 'id="rollout"' not in site.page()


def test_the_panel_shows_the_policy_and_a_failing_monitor(site: Site) -> None:
    controller = undecided_rollout(site.cfg, site.registry)[0]

    def broken(*_: object) -> list[object]:
        raise KeyError("<b>count_distinct</b>")

    controller._read_outputs = broken  # type: ignore[method-assign]
    for _ in range(3):
        controller.tick()
    html = _panel(site.page())
    text = _text(html)
    assert "Monitor (rollout): held: the monitor failed 3 ticks in a row since" in text
    assert "&lt;b&gt;count_distinct&lt;/b&gt;" in html  # escaped
    assert "End-of-horizon policy: bias_to_action: an undecided step advances after 30m" in text


def test_the_monitors_estimate_before_labels_is_shown_beside_the_rollout(site: Site) -> None:
    site.registry.deploy(NAME, production=1)
    assert 'id="estimate"' not in site.page()  # the monitor has estimated nothing yet
    found = {
        "version": 1,
        "rows": 1800,
        "metric": "auc",
        "estimate": {"value": 0.65, "low": 0.62, "high": 0.68},
        "evaluation": 0.83,
        "worse_windows": 2,
    }
    path = estimate_file(site.cfg.home, NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found), encoding="utf-8")
    html = site.page()
    section = re.search(
        r'<section aria-labelledby="estimate-h" id="estimate">(.*?)</section>', html, re.S
    )
    assert section is not None, html
    assert estimate_line(found) in _text(section.group(1))
    assert "badge bad" not in section.group(1)
    # Unreliable on its window: the line says why, beside the evaluation value, no number.
    why = "scores moved beyond their natural variation (distance 0.31, natural 0.04)"
    path.write_text(json.dumps({**found, "unreliable": why}), encoding="utf-8")
    section = re.search(
        r'<section aria-labelledby="estimate-h" id="estimate">(.*?)</section>', site.page(), re.S
    )
    assert section is not None
    shown = _text(section.group(1))
    assert f"unreliable v1 estimated auc unreliable: {why} · evaluation 0.8300" in shown, shown
    assert '<span class="badge bad">unreliable</span>' in section.group(1)
    assert "0.65" not in shown
