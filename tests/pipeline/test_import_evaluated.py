"""An imported model evaluated on labelled data exactly as a trained one is, and gated.

A Keras model written by hand for Adult (``[None, 1]`` inputs, a sigmoid) is imported with
``--data``: blessed, its report, metrics, references and card; its inverted twin, which
answers every request with 200, is refused by the gates against it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mooring.errors import ChecksFailedError, DataError, NotFoundError, UsageError
from mooring.monitoring._estimate import EstimationReference
from mooring.pipeline._import import default_config, import_version
from mooring.registry import Registry
from tests._support.imported_models import build_adult_keras, build_cnn, examples

pytestmark = pytest.mark.slow

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"


def _adult(name: str, rows: int) -> pa.Table:
    with gzip.open(ADULT / name) as raw:
        return pacsv.read_csv(raw).slice(0, rows)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adult-keras")
    train = _adult("adult.data.csv.gz", 6000)
    test = _adult("adult.test.csv.gz", 2000)
    pq.write_table(test, root / "test.parquet")
    return {
        "good": build_adult_keras(root / "good", train),
        "inverted": build_adult_keras(root / "inverted", train, inverted=True),
        "data": root / "test.parquet",
    }


def _registry(tmp_path: Path) -> Registry:
    return Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts")


def test_a_good_model_is_blessed_and_its_twin_inverted_is_refused(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    config = default_config("income", models["data"], "class").model_copy(update={"root": tmp_path})
    config.project.home = str(tmp_path / ".mooring")
    with _registry(tmp_path) as registry:
        good = import_version(
            registry, "income", models["good"], task="binary", data=models["data"], config=config
        )
        assert good.verdict == "blessed", good.gate
        assert good.metrics["auc"] > 0.75
        assert good.lineage.origin == "imported" and good.lineage.eval_data
        report = Path(good.record.run.evaluation_report or "")
        assert (report / "report.html").is_file() and (report / "report.json").is_file()
        references = good.record.run.references
        assert references is not None and references.outputs is not None
        estimation = EstimationReference.read(references.estimation)
        assert estimation is not None and estimation.refused is None, references.estimation
        assert "age" in (good.statistics or {}).get("columns", {})
        registry.promote("income", version=good.version)  # blessed: no force needed
        inverted = import_version(
            registry,
            "income",
            models["inverted"],
            task="binary",
            data=models["data"],
            config=config,
        )
        assert inverted.verdict == "not blessed"
        assert inverted.metrics["auc"] < 0.3
        assert inverted.parent_version == good.version
        with pytest.raises(ChecksFailedError, match="is not blessed"):
            registry.promote("income", version=inverted.version)


def test_bad_labels_and_settings_leave_the_registry_unchanged(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    config = default_config("income", models["data"], "class")
    with _registry(tmp_path) as registry:
        with pytest.raises(UsageError, match="needs its task"):
            import_version(registry, "income", models["good"], data=models["data"], config=config)
        with pytest.raises(DataError, match="--classes names 3 classes"):
            import_version(
                registry,
                "income",
                models["good"],
                task="binary",
                data=models["data"],
                config=config,
                classes=["<=50K", ">50K", "other"],
            )
        with pytest.raises(DataError, match="does not name"):
            import_version(
                registry,
                "income",
                models["good"],
                task="multiclass",
                data=models["data"],
                config=config,
                classes=["<=50K"],
            )
        missing = config.model_copy(
            update={"data": config.data.model_copy(update={"label": "nope"})}
        )
        with pytest.raises(DataError, match="no label column 'nope'"):
            import_version(
                registry,
                "income",
                models["good"],
                task="binary",
                data=models["data"],
                config=missing,
            )
        with pytest.raises(UsageError, match="not an output of the model"):
            import_version(registry, "income", models["good"], task="binary", output="nope")
        with pytest.raises(NotFoundError, match="registered: none yet"):
            registry.versions("income")
        assert not list((tmp_path / "artifacts").rglob("saved_model.pb"))


def test_an_image_model_is_evaluated_on_a_table_of_images(tmp_path: Path) -> None:
    model = build_cnn(tmp_path / "cnn")
    images = examples("cnn", rows=60, seed=3)["image"]
    labels = [f"digit{int(i.mean() * 30) % 3}" for i in images]
    pq.write_table(
        pa.table({"image": images.tolist(), "digit": labels}), tmp_path / "images.parquet"
    )
    config = default_config("digits", tmp_path / "images.parquet", "digit")
    with _registry(tmp_path) as registry:
        mv = import_version(
            registry,
            "digits",
            model,
            task="multiclass",
            data=tmp_path / "images.parquet",
            config=config,
            classes=["digit0", "digit1", "digit2"],
        )
        assert mv.record.run.evaluation_report
        assert "accuracy" in mv.metrics
        columns = (mv.statistics or {}).get("columns", {})
        assert {"image.mean", "image.std", "image.zeros"} <= set(columns)
