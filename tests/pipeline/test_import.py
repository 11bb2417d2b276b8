"""An imported model registered: unevaluated, with its source in the lineage and a card;
a failed import leaves the registry as it was."""

from __future__ import annotations

import json
import multiprocessing.util
import tempfile
from pathlib import Path

import pytest

from mooring.errors import ChecksFailedError, ModelLoadError, UsageError
from mooring.pipeline._import import import_version
from mooring.registry import Registry
from mooring.training._import import folder_sha256
from tests._support.byom import ranker_module, tabular_keras, tabular_saved_model

pytestmark = pytest.mark.slow


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # multiprocessing makes its temporary folder once per process, where the first caller
    # finds tempfile's: made here, the probe box's forkserver socket path would be too
    # long for AF_UNIX, and gone with this test's folder for every later test.
    multiprocessing.util.get_temp_dir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the import works
    return Registry.open(f"sqlite:///{tmp_path / 'home' / 'registry.db'}")


def _unchanged(registry: Registry, events: int) -> None:
    assert registry.models() == []
    assert registry.artifacts.list_keys() == []
    assert len(registry.history()) == events
    # TensorFlow's autograph writes the functions it converts there too, and Python their
    # bytecode beside them: not the import's.
    scratch = Path(tempfile.gettempdir())
    left = [*scratch.iterdir(), *scratch.glob("__pycache__/*")]
    assert [
        p
        for p in left
        if p.name != "__pycache__" and not p.name.startswith("__autograph_generated_file")
    ] == []


def test_an_imported_savedmodel_is_registered_unevaluated_with_its_source(
    registry: Registry, tmp_path: Path
) -> None:
    source = ranker_module(tmp_path / "ranker")
    mv = import_version(
        registry,
        "ranker",
        source,
        signature="predict",
        task="regression",
        input_shapes={"ids": (4,)},
        reason="the research team's ranker",
        actor="ana",
    )
    assert (mv.name, mv.version, mv.gate, mv.blessed) == ("ranker", 1, None, False)
    assert mv.created_by == "ana"
    assert mv.lineage.origin == "imported" and mv.record.origin == "imported"
    assert mv.lineage.source_path == str(source.resolve())
    assert mv.lineage.source_format == "saved_model"
    assert mv.lineage.source_sha256 == folder_sha256(source)
    assert mv.lineage.signature == "predict"
    assert (mv.lineage.actor, mv.lineage.reason) == ("ana", "the research team's ranker")
    assert mv.record.kind == "imported" and mv.record.task == "regression"
    assert set(mv.manifest["files"]) >= {"saved_model.pb", "mooring.json"}
    stored = registry.load("ranker", version=1)
    meta = json.loads((stored / "mooring.json").read_text())
    assert meta["source"]["signature"] == "predict" and meta["task"] == "regression"
    assert meta["signature"]["inputs"]["ids"]["example_shape"] == [4]
    card = registry.model_card("ranker")
    assert "# Model card: ranker version 1" in card
    assert f"sha256 {folder_sha256(source)}" in card
    assert "No gate was evaluated: this version is **not blessed**." in card
    assert "| model kind | imported |" in card
    [event] = registry.history("ranker")
    assert (event.action, event.actor, event.reason) == (
        "register",
        "ana",
        "the research team's ranker",
    )


def test_an_imported_version_is_promoted_only_with_force_and_a_reason(
    registry: Registry, tmp_path: Path
) -> None:
    import_version(registry, "income", tabular_keras(tmp_path / "income.keras"), actor="ana")
    with pytest.raises(ChecksFailedError, match=r"income@1 is unevaluated"):
        registry.promote("income", version=1)
    with pytest.raises(UsageError, match=r"needs a reason"):
        registry.promote("income", version=1, force=True)
    deployment = registry.promote("income", version=1, force=True, reason="trusted by hand")
    assert deployment.production == 1
    forced = [e for e in registry.history("income") if e.forced]
    assert [(e.action, e.reason) for e in forced] == [("promote", "trusted by hand")]


def test_a_second_import_is_the_next_version(registry: Registry, tmp_path: Path) -> None:
    exported = tabular_saved_model(tmp_path / "exported")
    first = import_version(registry, "income", exported)
    second = import_version(registry, "income", tabular_keras(tmp_path / "income.keras"))
    assert (first.version, second.version) == (1, 2)
    assert second.lineage.source_format == "keras"
    assert second.lineage.reason is None
    assert registry.history("income")[-1].reason == f"imported from {tmp_path / 'income.keras'}"


def test_a_refused_model_leaves_the_registry_as_it_was(registry: Registry, tmp_path: Path) -> None:
    events = len(registry.history())
    summing = ranker_module(tmp_path / "summing", batch_sum=True)
    with pytest.raises(ModelLoadError, match=r"output 'total' has shape \[\]"):
        import_version(registry, "ranker", summing, signature="predict")
    _unchanged(registry, events)
    with pytest.raises(ModelLoadError, match=r"no signature 'serving_default'"):
        import_version(registry, "ranker", summing)
    _unchanged(registry, events)
    with pytest.raises(UsageError, match=r"model name '\.\./x' is not allowed"):
        import_version(registry, "../x", tabular_keras(tmp_path / "t.keras"))
    _unchanged(registry, events)


def test_a_failed_registration_leaves_no_version_and_no_file(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = len(registry.history())

    def refuse(**_: object) -> None:
        raise ModelLoadError("the database went away")

    monkeypatch.setattr(registry.store, "add_version", refuse)
    with pytest.raises(ModelLoadError, match=r"the database went away"):
        import_version(registry, "income", tabular_saved_model(tmp_path / "exported"))
    _unchanged(registry, events)
