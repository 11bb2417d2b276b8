"""``mooring ops prometheus``: rules that promtool accepts, tests in which the alerts fire
exactly when mooring's monitor does, and checks that fail when the rules are wrong.

promtool comes from Debian's ``prometheus`` package; without it these tests are skipped,
unless ``MOORING_REQUIRE_PROMTOOL=1`` (as in CI), where a missing promtool fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.utils import floatToGoString

from mooring.config import MooringConfig
from mooring.formats._metrics import LATENCY_BUCKETS, Histogram
from mooring.ops._prometheus import _le, duration, latency_terms
from mooring.ops._rule_tests import write_prometheus
from tests._support.cli import run_mooring


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("MOORING_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (MOORING_REQUIRE_PROMTOOL=1): apt install prometheus")
        pytest.skip("promtool is not installed (Debian: apt install prometheus)")
    return found


def _config(**slo: Any) -> MooringConfig:
    return MooringConfig.model_validate(
        {
            "project": {"name": "income"},
            "data": {"train": "train.csv", "label": "class"},
            "monitoring": {"slo": slo},
        }
    )


def _promtool_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # A bound against a hang, not a speed check.
        [_promtool(), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _check(cfg: MooringConfig, folder: Path) -> Any:
    rules, tests, ruleset = write_prometheus(cfg, folder)
    checked = _promtool_run(folder, "check", "rules", rules.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool_run(folder, "test", "rules", tests.name)
    assert tested.returncode == 0, f"{cfg.monitoring.slo!r}\n{tested.stdout}{tested.stderr}"
    return ruleset


CONFIGS = {
    "defaults": {},
    # Sloth's four pairs: two page, two ticket.
    "sloth pairs": {
        "windows": [
            {"severity": "page", "long": "1h", "short": "5m", "burn_rate": 14.4},
            {"severity": "page", "long": "6h", "short": "30m", "burn_rate": 6},
            {"severity": "ticket", "long": "1d", "short": "2h", "burn_rate": 3},
            {"severity": "ticket", "long": "3d", "short": "6h", "burn_rate": 1},
        ]
    },
    # A threshold between two buckets (interpolated) and a looser availability target.
    "interpolated latency": {"availability": 0.99, "latency_ms": 200, "latency_target": 0.95},
    "availability only": {"latency_ms": False},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rules_pass_promtool_and_alert_with_the_monitor(name: str, tmp_path: Path) -> None:
    ruleset = _check(_config(**CONFIGS[name]), tmp_path)
    # The scenarios mean something: quiet fires nothing, a burst pages, a clean short
    # window after it stops the page, a slow burn opens a ticket without paging.
    by_name = {(s.objective, s.name): s.firing for s in ruleset.scenarios}
    assert by_name, "no scenarios were generated"
    for (objective, scenario), firing in by_name.items():
        if scenario == "quiet":
            assert not any(firing.values()), (objective, firing)
        elif scenario.startswith("burst") and scenario.endswith("clean"):
            assert not firing["page"], (objective, scenario, firing)
        elif scenario.startswith("burst"):
            assert firing["page"], (objective, scenario, firing)
        else:
            assert scenario.startswith("slow burn"), scenario
            assert firing["ticket"] and not firing["page"], (objective, scenario, firing)
    kinds = {s.name.split(" at ")[0] for s in ruleset.scenarios}
    assert kinds == {"quiet", "burst", "slow burn"}
    objectives = {s.objective for s in ruleset.scenarios}
    assert objectives == (
        {"availability"} if name == "availability only" else {"availability", "latency"}
    )


def _rules_file(folder: Path) -> Path:
    return next(folder.glob("*.rules.yml"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("(14.4 * 0.001)", "(30 * 0.001)"),  # a page threshold too high: the burst is missed
        ('status=~\\"5..\\"', 'status=~\\"4..\\"'),  # counting client errors as failures
        ("slo:sli_error:ratio_rate5m{", "slo:sli_error:ratio_rate1h{"),  # no short window
    ],
)
def test_promtool_tests_fail_on_wrong_rules(old: str, new: str, tmp_path: Path) -> None:
    _check(_config(), tmp_path)
    path = _rules_file(tmp_path)
    data = yaml.safe_load(path.read_text())
    text = yaml.safe_dump(data, width=10_000)
    as_json = __import__("json").dumps(data)
    assert old in as_json, f"{old!r} not in the generated rules"
    path.write_text(yaml.safe_dump(__import__("json").loads(as_json.replace(old, new))))
    assert text  # the file was rewritten from the parsed rules
    tested = _promtool_run(tmp_path, "test", "rules", next(tmp_path.glob("*.test.yml")).name)
    assert tested.returncode != 0
    assert "FAILED" in tested.stdout + tested.stderr


windows = st.builds(
    lambda severity, short_m, factor, burn: {
        "severity": severity,
        "long": short_m * factor * 60,
        "short": short_m * 60,
        "burn_rate": burn,
    },
    st.sampled_from(["page", "ticket"]),
    st.integers(1, 30),
    st.integers(2, 24),
    st.floats(1.0, 40.0).map(lambda x: round(x, 1)),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(windows, min_size=1, max_size=3),
    availability=st.sampled_from([0.9, 0.99, 0.995, 0.999, 0.9999]),
    latency_ms=st.sampled_from([1, 7, 100, 200, 250, 3000, 20000]),
    latency_target=st.sampled_from([0.9, 0.99, 0.999]),
)
def test_any_slo_config_alerts_exactly_when_the_monitor_does(
    pairs: list[dict[str, Any]],
    availability: float,
    latency_ms: float,
    latency_target: float,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _promtool()
    cfg = _config(
        windows=pairs,
        availability=availability,
        latency_ms=latency_ms,
        latency_target=latency_target,
    )
    _check(cfg, tmp_path_factory.mktemp("rules"))


def test_latency_terms_count_what_the_monitor_counts() -> None:
    bounds = (*LATENCY_BUCKETS, float("inf"))
    counts = tuple(float(i * 10 + 3) for i in range(len(bounds)))
    histogram = Histogram(bounds, counts)
    for threshold in (0.00005, 0.0001, 0.0002, 0.2, 0.25, 0.3, 7.0, 10.0, 20.0):
        terms = latency_terms(threshold)
        good = sum(w * counts[bounds.index(b)] for w, b in terms)
        assert good / counts[-1] == pytest.approx(histogram.share_below(threshold))


def test_bucket_labels_match_the_exposition() -> None:
    assert [_le(b) for b in LATENCY_BUCKETS] == [floatToGoString(b) for b in LATENCY_BUCKETS]


def test_durations() -> None:
    assert [duration(s) for s in (60, 300, 3600, 5400, 86400, 90, 0.25)] == [
        "1m",
        "5m",
        "1h",
        "90m",
        "1d",
        "90s",
        "250ms",
    ]
    with pytest.raises(ValueError, match="must be positive"):
        duration(0)


def test_cli_writes_and_checks_the_rules(tmp_path: Path) -> None:
    _promtool()
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "income"\nhome = "state"\n[data]\ntrain = "t.csv"\nlabel = "y"\n'
    )
    done = run_mooring("ops", "prometheus", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "promtool check rules mooring-income.rules.yml: ok" in done.stdout
    assert "promtool test rules mooring-income.rules.test.yml: ok" in done.stdout
    rules = yaml.safe_load((tmp_path / "state/ops/prometheus/mooring-income.rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for alert in alerts:
        assert alert["labels"]["severity"] in ("page", "ticket")
        assert alert["labels"]["model"] == "income"
        assert alert["annotations"]["rollback"].startswith(
            f"mooring models rollback income -c {config}"
        )


def test_cli_names_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "income"\n[data]\ntrain = "t.csv"\nlabel = "y"\n'
        "[monitoring.slo]\navailability = 2\n"
    )
    done = run_mooring("ops", "prometheus", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "availability" in done.stderr
    assert "Traceback" not in done.stderr
