"""TF Lite for imported models: a CNN evaluated at import exports through the same
accuracy gate as a trained model; what cannot be checked or converted says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mooring.errors import UsageError
from mooring.export._lite import export_lite
from mooring.export._runtime import LiteModel
from mooring.pipeline._import import default_config, import_version
from mooring.registry import Registry
from tests._support.imported_models import build_cnn, build_text, examples, own_outputs

pytestmark = pytest.mark.slow


def _images(folder: Path, tmp_path: Path) -> Path:
    """Images labelled by the CNN itself: what a faithful export must agree with."""
    images = examples("cnn", rows=300, seed=4)["image"]
    scores = own_outputs(folder, {"image": images})["output_0"]
    labels = [f"c{int(k)}" for k in scores.argmax(axis=1)]
    path = tmp_path / "images.parquet"
    pq.write_table(pa.table({"image": images.tolist(), "shape": labels}), path)
    return path


def test_an_imported_cnn_exports_through_the_accuracy_gate(tmp_path: Path) -> None:
    cnn = build_cnn(tmp_path / "cnn")
    data = _images(cnn, tmp_path)
    config = default_config("shapes", data, "shape").model_copy(update={"root": tmp_path})
    config.project.home = str(tmp_path / "home")
    with Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts"
    ) as registry:
        mv = import_version(
            registry, "shapes", cnn, task="multiclass", data=data, config=config,
            classes=["c0", "c1", "c2"],
        )  # fmt: skip
        result = export_lite(registry, "shapes", version=mv.version, mode="float16", config=config)
        assert result.passed, result.reason
        assert result.metrics["tflite"]["accuracy"] == pytest.approx(
            result.metrics["savedmodel"]["accuracy"], abs=0.01
        )
        assert result.agreement is not None and result.agreement["within_tolerance"]
        assert {a.artifact for a in registry.version_artifacts("shapes", version=mv.version)} == {
            "tflite-float16"
        }
        assert result.path is not None
        lite = LiteModel.from_file(result.path)
        image = examples("cnn", rows=2, seed=9)["image"]
        np.testing.assert_allclose(
            lite.predict({"image": image})["output_0"],
            own_outputs(cnn, {"image": image})["output_0"],
            atol=1e-2,
        )


def test_what_cannot_be_checked_or_converted_says_why(tmp_path: Path) -> None:
    config = default_config("texts", tmp_path / "none.parquet", "label")
    with Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts"
    ) as registry:
        unevaluated = import_version(registry, "texts", build_text(tmp_path / "text"))
        with pytest.raises(UsageError, match="imported without --data"):
            export_lite(registry, "texts", version=unevaluated.version, config=config)
        texts = [" ".join(t) for t in (("good", "fine"), ("bad", "awful"), ("odd", "plain"))] * 20
        path = tmp_path / "texts.parquet"
        pq.write_table(pa.table({"text": texts, "label": ["a", "b", "a"] * 20}), path)
        config = default_config("texts", path, "label")
        evaluated = import_version(
            registry, "texts", build_text(tmp_path / "text2"), task="binary", data=path,
            config=config, classes=["a", "b"],
        )  # fmt: skip
        result = export_lite(
            registry, "texts", version=evaluated.version, mode="dynamic", config=config,
            out=tmp_path / "export",
        )  # fmt: skip
        assert not result.passed
        assert "texts@2" in result.reason and "StringSplitV2" in result.reason
        assert "run that step before the model on the device" in result.reason
