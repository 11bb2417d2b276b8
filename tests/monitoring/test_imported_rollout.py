"""A canary of a broken imported model is rolled back, as a trained one's would be.

Two Keras models a team wrote for Adult (``[None, 1]`` inputs) are imported with
``--data``: the good one is blessed and serves; its twin with inverted outputs, which
answers every request 200, fails its gates and is forced out as a canary anyway, with a
reason. The monitor's guardrails judge it by its own evaluation against production's on
the same data, and roll it back while clients keep calling; no request fails.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mooring.monitoring._rollout import RolloutController
from mooring.pipeline._import import import_version
from mooring.registry import Registry
from tests._support.imported_models import ADULT_NUMBERS, build_adult_keras
from tests._support.rollout import NAME, project
from tests._support.server import following
from tests._support.traffic import Traffic, tick_until
from tests._support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.decisions, pytest.mark.xdist_group("rollout-e2e")]

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"
SERVING = {
    "poll_interval_s": 0.1,
    "warmup_requests": 2,
    "max_batch_size": 32,
    "batch_timeout_ms": 1.0,
    "log_sample_rate": 1.0,
    "log_flush_rows": 50,
    "log_flush_s": 0.2,
    "deadline_ms": 120_000,
}
PER_TICK = 100


def _adult(name: str, rows: int) -> pa.Table:
    with gzip.open(ADULT / name) as raw:
        return pacsv.read_csv(raw).slice(0, rows)


def _instances(table: pa.Table) -> list[dict[str, Any]]:
    """Adult rows as the models take them: one list of one value per input."""
    names = [*ADULT_NUMBERS, "sex"]
    return [{n: [row[n]] for n in names} for row in table.select(names).to_pylist()]


def test_an_inverted_imported_canary_is_rolled_back_and_no_request_fails(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    train, test = _adult("adult.data.csv.gz", 6000), _adult("adult.test.csv.gz", 3000)
    holdout = tmp_path / "holdout.parquet"
    pq.write_table(test.slice(0, 2000), holdout)
    rollout = {
        "steps": [50, 100],
        "min_requests": 20,
        "min_step_duration": "1h",  # it must never get to advance
        "guardrails": {"min_prediction_rows": 100, "latency_margin_ms": 1000},
    }
    cfg = project(home, serving=SERVING, rollout=rollout)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"eval": str(holdout)})})
    registry = Registry.from_config(cfg)
    good = import_version(
        registry, NAME, build_adult_keras(tmp_path / "good", train),
        task="binary", data=holdout, config=cfg, reason="the team's model",
    )  # fmt: skip
    assert good.verdict == "blessed", good.gate
    registry.promote(NAME, version=good.version)
    inverted = import_version(
        registry, NAME, build_adult_keras(tmp_path / "inverted", train, inverted=True),
        task="binary", data=holdout, config=cfg, reason="the team's rebuild",
    )  # fmt: skip
    assert inverted.verdict == "not blessed"
    rows = _instances(test.slice(2000))
    batches = ((rows[i : i + 4], None) for i in itertools.cycle(range(0, len(rows) - 4, 4)))
    with following(cfg, registry, NAME) as server:
        controller = RolloutController(cfg, registry, metrics=[server.url + "/metrics"])
        with Traffic(
            server.url, f"/v1/models/{NAME}:predict", batches, log=cfg.home / "predictions"
        ) as traffic:
            registry.deploy(
                NAME,
                production=good.version,
                canary=inverted.version,
                weight=50,
                force=True,
                reason="the team insists on trying it",
            )
            wait_until(
                lambda: any(
                    v["version"] == str(inverted.version)
                    for v in server.client.get(f"/v1/models/{NAME}").json()["model_version_status"]
                ),
                "the canary to load",
            )
            traffic.send(PER_TICK)  # the log holds both versions' answers by the first tick
            decisions = tick_until(controller, traffic, per_tick=PER_TICK, done=lambda d: d.changed)
            traffic.send(PER_TICK)  # clients keep calling after the rollback
        final = decisions[-1]
        assert final.action == "rollback", final.to_dict()
        assert traffic.failures == []
        assert traffic.seen[str(inverted.version)] > 0
        breached = [g.name for g in final.guardrails if g.status == "breach"]
        assert "validated" in breached, final.to_dict()
        # The log holds the imported models' scores under their role: outputs are compared.
        divergence = next(g for g in final.guardrails if g.name == "divergence")
        assert divergence.value is not None and divergence.value > 0.5, divergence
        dep = registry.deployment(NAME)
        assert (dep.production, dep.canary) == (good.version, None)
