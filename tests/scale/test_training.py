"""Training workers as Ray actors on a two-node cluster: the model one process trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mooring.scale._training import training_launcher
from mooring.training._fit import TrainingResult
from tests._support.distributed import adult_auc, train_adult
from tests._support.ray_cluster import GROUP


@pytest.mark.slow
@pytest.mark.xdist_group(GROUP)
def test_two_ray_workers_train_what_local_workers_train(
    ray_address: str, tmp_path: Path, adult_training: Callable[..., TrainingResult]
) -> None:
    from mooring.config import MooringConfig

    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": "m", "ray_address": ray_address},
            "data": {"train": "t.csv"},
            "training": {"workers": 2, "engine": "ray"},
        }
    )
    launcher = training_launcher(cfg)
    assert launcher is not None
    on_ray = train_adult(tmp_path / "ray", workers=2, engine="ray", launcher=launcher)
    local = adult_training(2)
    assert on_ray.record.distributed["engine"] == "ray"
    assert on_ray.parity is not None and on_ray.parity.passed
    assert abs(adult_auc(on_ray.model_dir) - adult_auc(local.model_dir)) <= 0.003
    # The same seed and shards: the same weights whichever engine ran the workers.
    last = f"checkpoints/epoch-{len(local.epochs):04d}/weights.npz"
    with np.load(on_ray.model_dir.parent / last) as a, np.load(local.model_dir.parent / last) as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
