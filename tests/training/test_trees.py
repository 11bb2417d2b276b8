"""``kind = "gbt"`` on an Adult sample: one SavedModel with the MLP's signature, served
outputs equal to YDF's own predictions, and the op library as part of the contract."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import ModelLoadError
from mooring.features._infer import build_feature_spec
from mooring.features._inputs import columns_from_records
from mooring.formats._model import METADATA_FILE, load_saved_model
from mooring.serving._loaded import load_served_model
from mooring.training._labels import resolve_label
from mooring.training._pipeline import load_training_data
from mooring.training._train import train_model
from mooring.training._trees import TREE_TOLERANCE, export_trees, fit_trees
from tests._support.blocked_import import run_without
from tests._support.project import request_rows, write_adult

NA = ["?", ""]
# One worker runs the module: the trained and exported trees are built once, not once per
# worker that draws one of its tests.
pytestmark = pytest.mark.xdist_group("trees")


def _config(data: dict[str, Path], **model: Any) -> MooringConfig:
    return MooringConfig.from_mapping(
        {
            "project": {"name": "income"},
            "data": {
                "train": str(data["train"]),
                "eval": str(data["test"]),
                "label": "class",
                "positive": ">50K",
                "na_values": NA,
            },
            "features": {"exclude": ["fnlwgt"]},
            "model": {"task": "binary", "parity_records": 50, "seed": 7, **model},
        },
        root=data["train"].parent,
    )


@pytest.fixture(scope="module")
def adult(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("adult-trees")
    data = write_adult(tmp / "data", train_rows=2500, test_rows=300)
    cfg = _config(data, kind="gbt", gbt={"num_trees": 40})
    stats = compute_statistics(data["train"], ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label="class")
    gbt = train_model(
        cfg, statistics=stats, schema=schema, output_dir=tmp / "gbt", tensorboard=False
    )
    mlp_cfg = _config(data, kind="mlp", epochs=1, hidden=[8])
    mlp = train_model(
        mlp_cfg, statistics=stats, schema=schema, output_dir=tmp / "mlp", tensorboard=False
    )
    return {"tmp": tmp, "data": data, "cfg": cfg, "stats": stats, "schema": schema,
            "gbt": gbt, "mlp": mlp}  # fmt: skip


def test_tree_version_records_its_kind_op_library_and_importances(adult: dict[str, Any]) -> None:
    meta = json.loads((adult["gbt"].model_dir / METADATA_FILE).read_text())
    assert meta["kind"] == "gbt"
    [library] = meta["op_libraries"]
    assert library["module"] == "ydf_tf"
    assert library["package"] == "ydf-tf"
    assert library["version"].startswith("2.21")
    assert meta["versions"]["ydf"].startswith("0.16")
    importances = meta["feature_importances"]
    assert "fnlwgt" not in importances  # excluded columns stay out
    assert set(importances) <= set(meta["signature"]["inputs"])
    assert sum(importances.values()) == pytest.approx(1.0)
    assert adult["gbt"].parity is not None
    assert adult["gbt"].parity.max_abs_diff <= TREE_TOLERANCE


def test_tree_signature_is_the_mlps(adult: dict[str, Any]) -> None:
    trees = load_saved_model(adult["gbt"].model_dir, warn=False)
    mlp = load_saved_model(adult["mlp"].model_dir, warn=False)
    assert trees.inputs == mlp.inputs
    assert trees.outputs == mlp.outputs
    assert trees.kind == "gbt"
    assert mlp.kind == "mlp"
    assert "fnlwgt" not in trees.inputs


def test_served_outputs_equal_ydf_predictions(adult: dict[str, Any]) -> None:
    cfg, stats, schema = adult["cfg"], adult["stats"], adult["schema"]
    label = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label="class")
    data = load_training_data(
        adult["data"]["train"],
        spec,
        label,
        options=ReadOptions.from_config(cfg.data),
        validation_split=0.1,
        seed=7,
        memory_limit_mb=2048.0,
    )
    tree = fit_trees(cfg, spec, label, data, None, 7)
    folder = export_trees(tree, adult["tmp"] / "direct")
    served = load_served_model("income", 3, folder)
    rows = [
        {k: v for k, v in row.items() if k in spec.names}  # fnlwgt is excluded
        for row in request_rows(adult["data"]["test"], 200)
    ]
    rows.append({name: None for name in spec.names})  # every value missing
    unseen = dict(rows[0], workclass="Astronaut", occupation="", education=None)
    rows.append(unseen)
    columns = columns_from_records(rows, spec)  # as the server decodes a request
    out = served.predict(columns)
    own = np.asarray(tree.model.predict(tree.inputs(columns)), dtype=np.float64)
    np.testing.assert_allclose(out["probabilities"][:, 1], own, atol=TREE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-6)
    expected = np.where(own > 0.5, ">50K", "<=50K")
    assert out["classes"].tolist() == expected.tolist()
    assert out["class_ids"].dtype == np.int64
    assert 0.0 < own[-2] < 1.0  # the all-missing row is scored, not refused


_REFUSE = """
import asyncio, json, sys
from pathlib import Path
from mooring.config import ServingConfig
from mooring.errors import ModelLoadError
from mooring.registry._records import Deployment
from mooring.serving._loaded import load_served_model
from mooring.serving._metrics import ServingMetrics
from mooring.serving._models import ModelManager

FOLDERS = {1: Path(sys.argv[1] if len(sys.argv) > 1 else %(mlp)r), 2: Path(%(gbt)r)}
try:
    load_served_model("income", 2, FOLDERS[2])
except ModelLoadError as exc:
    refused = str(exc)
else:
    refused = None


class Source:
    name = "income"
    def __init__(self):
        self.current = Deployment(name="income", production=1, revision=1)
    def deployment(self):
        return self.current
    def fetch(self, version):
        return FOLDERS[version]
    def contract_schema(self, version):
        return None


async def main():
    source = Source()
    manager = ModelManager(source, ServingConfig(warmup_requests=1), ServingMetrics())
    await manager.refresh()
    first = manager.production
    source.current = Deployment(name="income", production=2, revision=2, previous=(1,))
    await manager.refresh()
    return first, manager.production, manager.failures.get(2), manager.fallback

first, serving, failure, fallback = asyncio.run(main())
print(json.dumps({"refused": refused, "first": first, "serving": serving,
                  "failure": failure, "fallback": fallback,
                  "ydf_tf": "ydf_tf" in sys.modules}))
"""


def test_server_without_ydf_tf_refuses_the_tree_version_and_keeps_the_previous(
    adult: dict[str, Any],
) -> None:
    script = _REFUSE % {
        "mlp": str(adult["mlp"].model_dir),
        "gbt": str(adult["gbt"].model_dir),
    }
    done = run_without(("ydf_tf", "ydf"), textwrap.dedent(script), adult["tmp"])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ydf_tf"] is False
    assert "ydf_tf" in result["refused"]
    assert "pip install 'ydf-tf==" in result["refused"]
    assert "pip install 'mooring-ml[trees]'" in result["refused"]
    assert result["first"] == 1
    assert result["serving"] == 1  # the MLP keeps answering
    assert "ydf-tf" in result["failure"]
    assert result["fallback"]["wanted"] == 2


def test_loader_refuses_an_op_library_it_does_not_know(adult: dict[str, Any]) -> None:
    folder = adult["tmp"] / "forged"
    folder.mkdir()
    meta = json.loads((adult["gbt"].model_dir / METADATA_FILE).read_text())
    meta["op_libraries"] = [{"module": "os", "package": "os"}]
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="op library 'os', which mooring does not load"):
        load_saved_model(folder, warn=False)
