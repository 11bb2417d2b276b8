"""A training run's record (``run.json`` beside a model), typed: today's records read and
written back exactly, older ones (``"format": "mooring.run"``, fewer keys) read with
defaults, unknown keys kept, and the register step's reading of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mooring.formats._training_run import LEGACY_TRAINING_FORMAT, TrainingRun
from mooring.formats._version_record import RunRecord
from tests._support.stored_json import json_values, training_runs, unknown_keys, without_some


@given(training_runs)
def test_todays_records_round_trip_exactly(data: dict[str, Any]) -> None:
    run = TrainingRun.read(json.loads(json.dumps(data)))
    assert run.to_dict() == data and not run.extra and run.is_training_run
    assert (run.kind, run.task, run.model_dir) == (data["kind"], data["task"], data["model_dir"])
    assert list(run.epochs) == data["epochs"] and dict(run.timings) == data["timings"]
    assert run.trees == data.get("trees") and run.distributed == data.get("distributed")


@given(st.data())
def test_older_records_read_with_defaults_and_write_back_as_they_were(
    data: st.DataObject,
) -> None:
    stored = without_some({**data.draw(training_runs), "format": LEGACY_TRAINING_FORMAT}, data.draw)
    more = data.draw(st.dictionaries(unknown_keys, json_values, max_size=2))
    run = TrainingRun.read({**stored, **more})
    assert run.to_dict() == {**stored, **more} and dict(run.extra) == more
    assert run.is_training_run == ("format" in stored)
    assert run.epochs == tuple(stored.get("epochs", ()))
    assert run.stopped_early == stored.get("stopped_early", False)
    assert run.best_epoch == stored.get("best_epoch")
    # A version registered from an older record is still one mooring trained.
    assert RunRecord.read(run.to_dict()).origin == ("trained" if "format" in stored else "imported")


@given(st.dictionaries(st.sampled_from(["epochs", "timings", "seed", "format", "x"]), json_values))
def test_any_mapping_reads_without_raising_and_writes_back(data: dict[str, Any]) -> None:
    run = TrainingRun.read(data)
    assert run.to_dict() == data
    assert isinstance(run.epochs, tuple) and isinstance(run.format, str)


def test_a_distributed_outcome_is_added_and_a_missing_file_reads_empty(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"format": "mooring.run", "kind": "mlp", "distributed": None}))
    run = TrainingRun.load(path).updated(distributed={"workers": 2})
    assert run.to_dict() == {"format": "mooring.run", "kind": "mlp", "distributed": {"workers": 2}}
    assert TrainingRun.load(tmp_path / "absent.json").to_dict() == {}
    assert TrainingRun.read(["not", "a", "mapping"]).to_dict() == {}
