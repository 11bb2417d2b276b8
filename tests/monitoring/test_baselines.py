"""Which evaluation data a version's numbers come from, and when two cannot be compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mooring.contract._statistics import compute_statistics
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.monitoring._baselines import (
    REFERENCES,
    comparability_note,
    evaluation_data_label,
    evaluation_reference,
    stale_evaluation,
)
from mooring.registry import ModelVersion, Registry
from mooring.registry._judged import register_judged
from tests._support.rollout import BLESSED, NAME, artifact_dir, project


def _version(reg: Registry, root: Path, seed: int, **lineage: str) -> ModelVersion:
    return register_judged(
        reg,
        name=NAME,
        artifact_dir=artifact_dir(root, seed),
        record=VersionRecord(
            lineage={"data_fingerprint": "0" * 64, **lineage}, gate=BLESSED, metrics={"auc": 0.8}
        ),
    )


def test_versions_name_their_evaluation_data_and_say_when_it_differs(tmp_path: Path) -> None:
    cfg = project(tmp_path / "home")
    with Registry.from_config(cfg) as reg:
        a = _version(reg, tmp_path, 1, eval_fingerprint="a" * 64, eval_data="/d/adult.test.csv")
        same = _version(reg, tmp_path, 2, eval_fingerprint="a" * 64, eval_data="/d/adult.test.csv")
        other = _version(reg, tmp_path, 3, eval_fingerprint="b" * 64, eval_data="/d/fresh.csv")
        unknown = _version(reg, tmp_path, 4)
        also_unknown = _version(reg, tmp_path, 5)
        assert evaluation_data_label(a) == "adult.test.csv " + "a" * 12
        assert evaluation_data_label(unknown) == "evaluation data unknown"
        assert comparability_note([a, same]) is None and comparability_note([a]) is None
        note = comparability_note([a, other], metric="auc")
        assert note == (
            f"auc of v1 and v3 come from different evaluation data (v1: adult.test.csv "
            f"{'a' * 12}; v3: fresh.csv {'b' * 12}): not comparable"
        )
        grouped = comparability_note([a, same, other, unknown])
        assert grouped == (
            f"the metrics of v1–v4 come from different evaluation data (v1 and v2: "
            f"adult.test.csv {'a' * 12}; v3: fresh.csv {'b' * 12}; v4: evaluation data "
            "unknown): not comparable"
        )
        assert comparability_note([unknown, also_unknown]) == (
            "the evaluation data of v4 and v5 is unknown, so whether the metrics of v4 and v5 "
            "are comparable cannot be told"
        )
        assert comparability_note([a, unknown]) == (
            f"the evaluation data of v4 is unknown (v1: adult.test.csv {'a' * 12}), so whether "
            "the metrics of v1 and v4 are comparable cannot be told"
        )
        assert evaluation_reference(unknown)["data_fingerprint"] is None


def test_frozen_references_win_over_the_lineage(tmp_path: Path) -> None:
    cfg = project(tmp_path / "home")
    frozen = {
        "evaluation": {"metrics": {"auc": 0.7}, "data": "/x/e.csv", "data_fingerprint": "c" * 64}
    }
    with Registry.from_config(cfg) as reg:
        mv = register_judged(
            reg,
            name=NAME,
            artifact_dir=artifact_dir(tmp_path, 9),
            record=VersionRecord(
                lineage={"data_fingerprint": "0" * 64, "eval_fingerprint": "d" * 64},
                gate=BLESSED,
                metrics={"auc": 0.8},
                run=RunRecord.read({REFERENCES: frozen}),
            ),
        )
        reference = evaluation_reference(mv)
        assert reference["metrics"] == {"auc": 0.7} and reference["version"] == mv.version
        assert evaluation_data_label(mv) == "e.csv " + "c" * 12


def test_eval_data_is_stale_only_when_most_features_moved_in_the_traffic() -> None:
    rng = np.random.default_rng(3)

    def table(n: int, moved: int) -> pa.Table:
        """Three numbers; the first ``moved`` of them shifted by two standard deviations."""
        return pa.table({f"x{i}": rng.normal(2.0 * (i < moved), 1.0, n) for i in range(3)})

    evaluation = compute_statistics(table(1000, 0))
    train = evaluation
    verdicts = {
        moved: stale_evaluation(
            "e.csv",
            evaluation,
            train=train,
            timestamp=None,
            traffic=compute_statistics(table(500, moved)),
        )
        for moved in (0, 1, 2, 3)
    }
    assert verdicts[0] is None and verdicts[1] is None
    assert verdicts[2] is not None and "2 of 3 features drifted" in verdicts[2]
    assert verdicts[3] is not None and "over the last 500 logged requests" in verdicts[3]
    # No traffic to compare with: no evidence either way.
    assert stale_evaluation("e.csv", evaluation, train=train, timestamp=None) is None


def test_a_calibration_cached_before_the_own_rate_of_new_values_is_measured_again(
    tmp_path: Path,
) -> None:
    """A version registered without stored references is calibrated from its training
    file and cached; a cache written before the training period's own rate of new values
    existed is measured again, not read as it is (its unseen shares would be judged by
    the older rule for ever)."""
    import orjson

    from mooring.formats._files import file_fingerprint
    from mooring.monitoring._baselines import calibration_for

    rng = np.random.default_rng(0)
    codes = [f"c{v}" for v in rng.zipf(1.5, 3000) % 500]
    train = tmp_path / "home" / "train.csv"
    train.parent.mkdir(parents=True)
    train.write_text("code,x\n" + "".join(f"{c},{i % 7}\n" for i, c in enumerate(codes)))
    cfg = project(tmp_path / "home")
    stats = compute_statistics(pa.table({"code": codes, "x": [i % 7 for i in range(3000)]}))
    with Registry.from_config(cfg) as reg:
        version = register_judged(
            reg,
            name=NAME,
            artifact_dir=artifact_dir(tmp_path, 1),
            record=VersionRecord(
                lineage={"train_data": str(train), "data_fingerprint": file_fingerprint(train)},
                gate=BLESSED,
                statistics=stats.to_dict(),
            ),
        )
        first, note = calibration_for(cfg, version)
        assert note is None and first is not None and first.novelty_split == "file"
        assert first.own_novelty("code", 1000) is not None
        (cache,) = (tmp_path / "home" / "monitoring" / NAME / "baseline").glob("calibration-*")
        older = first.to_dict()
        del older["novelty"], older["novelty_split"]
        cache.write_bytes(orjson.dumps(older))
        again, _ = calibration_for(cfg, version)
        assert again is not None and again.novelty == first.novelty
