"""A regime change built from the bundled Adult records, and the models trained on each side.

The population splits at age 35: ``young`` rows (positive rate ≈ 8%) and ``old`` rows
(≈ 36%). Production is trained and evaluated on young rows only; traffic, labels and the
retrained candidate come from the old ones. Broken candidates have the same signature:
one trained on flipped labels (its scores are inverted), one trained on shuffled labels
(it has learned nothing), and one that answers a constant.

Every version is registered as ``mooring run`` registers it: training statistics,
lineage with the fingerprints of its train and eval files, its evaluation metrics and
the references frozen with them (:func:`mooring.monitoring._baselines.freeze_references`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.formats._files import file_fingerprint
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import ModelVersion, Registry
from mooring.registry._judged import register_judged

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult"
FEATURES = ["age", "hours-per-week", "workclass", "sex"]
OPTIONS = ReadOptions(na_values=("?", ""))
NAME = "income"
SPLIT_AGE = 35

TOML = """
[project]
name = "income"
home = "{home}"

[data]
train = "{train}"
eval = "{eval}"
label = "class"
positive = ">50K"
na_values = ["?", ""]

[model]
hidden = [16]
epochs = 2
batch_size = 128
learning_rate = 0.01
schedule = "constant"
parity_records = 0
seed = 3

[monitoring]
segments = ["sex"]
window_rows = 2000
min_samples = 500
live_min_labels = 100
"""


@dataclass
class Regime:
    """The files of both populations and the trained model folders."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    models: dict[str, Path] = field(default_factory=dict)
    traffic: pa.Table | None = None

    def config(
        self,
        train: str = "young_train",
        eval_: str = "young_eval",
        *,
        home: Path | None = None,
        extra: str = "",
    ) -> MooringConfig:
        """A project config whose data are the files named ``train`` and ``eval_``.

        ``home`` defaults to ``<root>/home``; ``extra`` is appended TOML (more tables).
        """
        home = home or self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        toml = home / f"mooring-{train}-{eval_}.toml"
        text = TOML.format(
            home=home.as_posix(),
            train=self.files[train].as_posix(),
            eval=self.files[eval_].as_posix(),
        )
        toml.write_text(text + extra, encoding="utf-8")
        return load_config(toml)


def _population(table: pa.Table, *, young: bool) -> pa.Table:
    mask = pc.less(table["age"], SPLIT_AGE)
    return table.filter(mask if young else pc.invert(mask))


def _write(table: pa.Table, path: Path) -> Path:
    pacsv.write_csv(table, path)
    return path


def build_regime(root: Path) -> Regime:
    """Write the populations' files and train production, the candidate and the broken ones."""
    root.mkdir(parents=True, exist_ok=True)
    regime = Regime(root)
    columns = [*FEATURES, "class"]
    train = read_table(ADULT / "adult.data.csv.gz", OPTIONS).select(columns)
    test = read_table(ADULT / "adult.test.csv.gz", OPTIONS).select(columns)
    young, old = _population(train, young=True), _population(train, young=False)
    young_test, old_test = _population(test, young=True), _population(test, young=False)
    rng = np.random.default_rng(0)
    files = regime.files
    files["young_train"] = _write(young.slice(0, 5000), root / "young-train.csv")
    files["young_eval"] = _write(young_test.slice(0, 2000), root / "young-eval.csv")
    files["old_train"] = _write(old.slice(0, 5000), root / "old-train.csv")
    files["old_eval"] = _write(old_test.slice(0, 2000), root / "old-eval.csv")
    labels = old.slice(0, 5000)["class"]
    flipped = pc.if_else(pc.equal(labels, ">50K"), "<=50K", ">50K")
    shuffled = pa.array(np.asarray(labels.to_pylist(), dtype=object)[rng.permutation(len(labels))])
    base = old.slice(0, 5000)
    at = base.column_names.index("class")
    files["inverted_train"] = _write(base.set_column(at, "class", flipped), root / "inverted.csv")
    files["shuffled_train"] = _write(base.set_column(at, "class", shuffled), root / "shuffled.csv")
    regime.traffic = old_test.slice(2000)
    for name, data in (
        ("production", "young_train"),
        ("candidate", "old_train"),
        ("inverted", "inverted_train"),
        ("shuffled", "shuffled_train"),
    ):
        regime.models[name] = _train(regime, data, root / "models" / name)
    from tests._support.serving_model import build_constant_model_dir

    constant = build_constant_model_dir(root / "models" / "constant", positive=0.3)
    # The same signature and label encoding as the trained models.
    metadata = regime.models["production"] / "mooring.json"
    (constant / "mooring.json").write_bytes(metadata.read_bytes())
    regime.models["constant"] = constant
    return regime


def _train(regime: Regime, data: str, out: Path) -> Path:
    from mooring.training._train import train_model

    cfg = regime.config(data, "old_eval")
    stats = compute_statistics(regime.files[data], ReadOptions.from_config(cfg.data))
    result = train_model(cfg, statistics=stats, schema=None, output_dir=out, tensorboard=False)
    return Path(result.model_dir)


def register(
    regime: Regime,
    registry: Registry,
    model: str,
    *,
    train: str,
    eval_: str,
    production: ModelVersion | None = None,
    cfg: MooringConfig | None = None,
) -> ModelVersion:
    """Register ``model`` as the pipeline would, with its references frozen now.

    With ``production``, that version is evaluated on the same eval data, as ``mooring
    run`` does for its change gates.
    """
    from mooring.evaluation._model import evaluate_model_dir
    from mooring.monitoring._baselines import REFERENCES, evaluation_outputs, freeze_references

    cfg = regime.config(train, eval_, home=cfg.home if cfg is not None else None)
    options = ReadOptions.from_config(cfg.data)
    train_path, eval_path = regime.files[train], regime.files[eval_]
    stats = compute_statistics(train_path, options)
    run = evaluate_model_dir(
        cfg,
        regime.models[model],
        read_table(eval_path, options),
        baseline_dir=None
        if production is None
        else registry.load(NAME, version=production.version),
        out=cfg.home / "reports" / model,
    )
    evaluation = run.result
    baseline = None
    if production is not None and run.baseline is not None:
        numbers = run.baseline.metrics.items()
        baseline = {
            "version": production.version,
            "metrics": {k: float(v) for k, v in numbers if isinstance(v, int | float)},
        }
    metrics = {k: float(v) for k, v in evaluation.metrics.items() if isinstance(v, int | float)}
    outputs = evaluation_outputs(
        evaluation.task,
        evaluation.predictions,
        evaluation.label_vocabulary,
        evaluation.operating_threshold,
    )
    references = freeze_references(
        cfg,
        train_table=read_table(train_path, options),
        train_statistics=stats,
        outputs=outputs,
        metrics=metrics,
        eval_data=str(eval_path),
        eval_fingerprint=file_fingerprint(eval_path),
        eval_rows=evaluation.rows,
        baseline=baseline,
    )
    lineage: dict[str, Any] = {
        "data_fingerprint": file_fingerprint(train_path),
        "train_data": str(train_path),
        "eval_fingerprint": file_fingerprint(eval_path),
        "eval_data": str(eval_path),
        "model_key": model,
    }
    return register_judged(
        registry,
        name=NAME,
        artifact_dir=regime.models[model],
        record=VersionRecord(
            lineage=lineage,
            metrics=metrics,
            gate={"blessed": True, "gates": []},
            statistics=stats.to_dict(),
            run=RunRecord.read({REFERENCES: references}),
        ),
        reason=f"{model} trained on {train_path.name}",
    )


def traffic_rows(regime: Regime) -> list[tuple[dict[str, Any], str]]:
    """The old population's test rows as request instances, each with its label."""
    assert regime.traffic is not None
    out = []
    for record in regime.traffic.to_pylist():
        label = str(record.pop("class"))
        row = {
            "age": float(record["age"]),
            "hours-per-week": float(record["hours-per-week"]),
            "workclass": record["workclass"] or "",
            "sex": record["sex"] or "",
        }
        out.append((row, label))
    return out
