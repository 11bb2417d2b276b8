"""``create_app`` from a project file: its registry, its deployment, its prediction log."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from mooring.config import load_config
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving import create_app
from tests._support.server import BLESSED, LINEAGE, NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import wait_until


def test_create_app_serves_the_projects_production_version(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "state"\n[data]\ntrain = "train.csv"\n'
        "[serving]\nwarmup_requests = 1\npoll_interval_s = 0.1\nlog_sample_rate = 1.0\n"
        "log_flush_rows = 2\n",
        encoding="utf-8",
    )
    cfg = load_config(config)
    with Registry.from_config(cfg) as reg:
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dirs["b"],
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
        reg.deploy(NAME, production=1)
    ready_calls: list[bool] = []
    app = create_app(cfg, on_ready=lambda: ready_calls.append(app.state.mooring.ready))
    with ServerThread(app) as server:
        server.wait_ready()
        wait_until(lambda: ready_calls, "the on_ready callback")
        assert ready_calls == [True]  # once, and only when the production version is ready
        for _ in range(3):
            res = server.client.post(f"/v1/models/{NAME}:predict", json={"instances": [row()]})
            assert res.status_code == 200 and res.json()["model_version"] == "1"
    logged = pq.read_table(tmp_path / "state" / "predictions")
    assert logged.num_rows == 3
    assert set(logged.column("model_version").to_pylist()) == {1}
    assert logged.column("workclass").to_pylist() == ["Private"] * 3
