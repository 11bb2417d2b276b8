from __future__ import annotations

from pathlib import Path

import pytest

from mooring.config import MooringConfig, load_config
from mooring.config._base import parse_duration
from mooring.errors import ConfigError, NotFoundError

MINIMAL = {"project": {"name": "income"}, "data": {"train": "train.csv"}}


def test_minimal_config_fills_defaults() -> None:
    cfg = MooringConfig.from_mapping(MINIMAL)
    assert cfg.project.home == ".mooring"
    assert cfg.data.delimiter == ","
    assert cfg.contract.severity == "warning"


def test_unknown_key_names_key_section_and_suggestion() -> None:
    bad = {"project": {"name": "income"}, "data": {"train": "t.csv", "lable": "class"}}
    with pytest.raises(ConfigError, match=r"\[data\]: unknown key 'lable'; did you mean 'label'"):
        MooringConfig.from_mapping(bad)


def test_unknown_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'modle'"):
        MooringConfig.from_mapping({**MINIMAL, "modle": {}})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"\[data\]: required key 'train' is missing"):
        MooringConfig.from_mapping({"project": {"name": "x"}, "data": {}})


def test_wrong_type_names_value() -> None:
    bad = {**MINIMAL, "contract": {"range_margin": "wide"}}
    with pytest.raises(ConfigError, match=r"\[contract\] key 'range_margin'.*got 'wide' \(str\)"):
        MooringConfig.from_mapping(bad)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_serving_grpc_port_is_a_port(port: object) -> None:
    assert MooringConfig.from_mapping(MINIMAL).serving.grpc_port is None  # gRPC off by default
    ok = MooringConfig.from_mapping({**MINIMAL, "serving": {"grpc_port": 8500}})
    assert ok.serving.grpc_port == 8500
    with pytest.raises(ConfigError, match=r"\[serving\] key 'grpc_port'"):
        MooringConfig.from_mapping({**MINIMAL, "serving": {"grpc_port": port}})


def test_all_problems_reported_at_once() -> None:
    bad = {"project": {"name": "../evil"}, "data": {"train": "t.csv", "delimiter": ";;"}}
    with pytest.raises(ConfigError, match=r"2 configuration problems") as info:
        MooringConfig.from_mapping(bad)
    assert "'name'" in str(info.value) and "'delimiter'" in str(info.value)


def test_per_column_override_unknown_key() -> None:
    bad = {**MINIMAL, "contract": {"columns": {"age": {"maxx": 3}}}}
    with pytest.raises(ConfigError, match=r"\[contract.columns.age\]: unknown key 'maxx'"):
        MooringConfig.from_mapping(bad)


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "mooring.toml"
    path.write_text("[project\nname = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"does not exist"):
        load_config(tmp_path / "nope.toml")


def test_paths_resolve_relative_to_file(tmp_path: Path) -> None:
    path = tmp_path / "mooring.toml"
    path.write_text('[project]\nname = "m"\n[data]\ntrain = "d/train.csv"\n')
    cfg = load_config(path)
    assert cfg.path(cfg.data.train) == tmp_path / "d" / "train.csv"
    assert cfg.home == tmp_path / ".mooring"


def test_example_project_loads(adult_dir: Path) -> None:
    cfg = load_config(adult_dir / "mooring.toml")
    assert cfg.project.name == "income"
    assert cfg.path(cfg.data.train).is_file()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800.0), ("36h", 129600.0), ("2d", 172800.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_in_config() -> None:
    with pytest.raises(ConfigError, match=r"max_age.*expected a duration"):
        MooringConfig.from_mapping({**MINIMAL, "contract": {"max_age": "soon"}})


def test_monitoring_keeps_reports_for_a_while_and_rejects_nonsense() -> None:
    keep = {**MINIMAL, "monitoring": {"keep_reports": {"days": "2d", "files": 50}}}
    cfg = MooringConfig.from_mapping(keep)
    assert (cfg.monitoring.keep_reports.days, cfg.monitoring.keep_reports.files) == (172800.0, 50)
    assert MooringConfig.from_mapping(MINIMAL).monitoring.keep_reports.files == 2000
    bad = {**MINIMAL, "monitoring": {"keep_reports": {"files": 0}}}
    with pytest.raises(ConfigError, match=r"\[monitoring.keep_reports\] key 'files'.*got 0"):
        MooringConfig.from_mapping(bad)
    soon = {**MINIMAL, "monitoring": {"keep_reports": {"days": "soon"}}}
    with pytest.raises(ConfigError, match=r"keep_reports\] key 'days': expected a duration such"):
        MooringConfig.from_mapping(soon)
    typo = {**MINIMAL, "monitoring": {"keep_reports": {"weeks": 2}}}
    with pytest.raises(ConfigError, match=r"keep_reports\]: unknown key 'weeks'; known keys: days"):
        MooringConfig.from_mapping(typo)
    margin = {**MINIMAL, "monitoring": {"calibration_margin": 0.5}}
    with pytest.raises(ConfigError, match=r"key 'calibration_margin'.*got 0.5"):
        MooringConfig.from_mapping(margin)


def test_observability_is_off_by_default_and_checks_its_endpoint() -> None:
    off = MooringConfig.from_mapping(MINIMAL).observability
    assert (off.enabled, off.traces_url, off.service_name, off.sample_ratio) == (
        False,
        None,
        "mooring",
        1.0,
    )
    on = {**MINIMAL, "observability": {"otlp_endpoint": "http://collector:4318/"}}
    assert MooringConfig.from_mapping(on).observability.traces_url == (
        "http://collector:4318/v1/traces"
    )
    full = {**MINIMAL, "observability": {"otlp_endpoint": "https://otel.example/v1/traces"}}
    assert MooringConfig.from_mapping(full).observability.traces_url == (
        "https://otel.example/v1/traces"
    )
    bare = {**MINIMAL, "observability": {"otlp_endpoint": "collector:4318"}}
    with pytest.raises(ConfigError, match=r"key 'otlp_endpoint': expected an http:// or https://"):
        MooringConfig.from_mapping(bare)
    ratio = {**MINIMAL, "observability": {"sample_ratio": 1.5}}
    with pytest.raises(ConfigError, match=r"\[observability\] key 'sample_ratio'.*got 1.5"):
        MooringConfig.from_mapping(ratio)
    typo = {**MINIMAL, "observability": {"otlp_endpiont": "http://c:4318"}}
    with pytest.raises(ConfigError, match=r"unknown key 'otlp_endpiont'; did you mean 'otlp_end"):
        MooringConfig.from_mapping(typo)


# [[model.candidates]], [model] select and the baseline gate.
@pytest.mark.parametrize(
    ("model", "gates", "match"),
    [
        ({"select": "auroc"}, [], "select = 'auroc' is not a metric mooring computes"),
        ({"task": "regression", "select": "auc"}, [], "is not a regression metric"),
        ({"candidates": [{"name": "a", "kind": "svm"}]}, [], "'mlp', 'linear' or 'gbt'"),
        (
            {"candidates": [{"name": "a", "kind": "mlp"}, {"name": "a", "kind": "gbt"}]},
            [],
            "candidate names must be distinct",
        ),
        (
            {"candidates": [{"name": "a", "kind": "mlp", "hiden": [4]}]},
            [],
            "candidate 'a': hiden",
        ),
        (
            {"candidates": [{"name": "a", "kind": "mlp", "select": "auc"}]},
            [],
            "describe the whole set",
        ),
        (
            {"candidates": [{"name": "a", "kind": "mlp"}]},
            [{"kind": "baseline", "metric": "auc", "baseline": "linear"}],
            "baseline = 'linear', which is not a",
        ),
        ({}, [{"kind": "baseline", "metric": "auc"}], "needs baseline = the name"),
    ],
)
def test_config_errors_name_the_field_and_the_allowed_values(
    model: dict[str, object], gates: list[dict[str, object]], match: str
) -> None:
    mapping = {
        "project": {"name": "x"},
        "data": {"train": "a.csv", "label": "y"},
        "model": model,
        "evaluation": {"gates": gates},
    }
    with pytest.raises(ConfigError, match=match):
        MooringConfig.from_mapping(mapping)
