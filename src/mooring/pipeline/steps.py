"""The seven steps of a run, each a method that fills in its :class:`StepRecord`.

A step sets its record's ``key`` (the fingerprint of its inputs), ``inputs``,
``outputs``, ``status`` and ``message``, and returns whether its outputs may be
cached. A step that finds its key in the cache reuses the outputs (``cached``); a
failed check raises :class:`RejectedError`. :class:`~mooring.pipeline.run.Pipeline`
runs them in order and keeps the run record.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from mooring.config import MooringConfig
from mooring.contract import DatasetStatistics
from mooring.contract.schema import Schema
from mooring.formats.files import file_fingerprint
from mooring.formats.model import METADATA_FILE
from mooring.pipeline.cache import StepCache
from mooring.pipeline.fingerprint import code_version, digest
from mooring.pipeline.record import StepRecord
from mooring.pipeline.replay import ReplayReport, read_prediction_tail, replay

if TYPE_CHECKING:
    from mooring.evaluation import EvaluationRun
    from mooring.registry import ModelVersion, Registry
    from mooring.training import TrainingResult

__all__ = ["ProjectLike", "RejectedError", "RunObserver", "Steps"]


class ProjectLike(Protocol):
    """What the pipeline needs from a project (:class:`mooring.project.Project` has it)."""

    config: MooringConfig

    @property
    def name(self) -> str: ...

    @property
    def home(self) -> Path: ...

    def data_path(self, which: str = "train") -> Path: ...

    def data_fingerprint(self, which: str = "train") -> str: ...

    def statistics(self, which: str = "train") -> DatasetStatistics: ...

    def schema(self, statistics: DatasetStatistics | None = None) -> Schema: ...

    def validate(self) -> Any: ...

    def train(
        self,
        *,
        output_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
    ) -> TrainingResult: ...

    def evaluate(
        self,
        *,
        model_dir: str | Path | None = None,
        baseline_dir: str | Path | None = None,
        out: str | Path | None = None,
    ) -> EvaluationRun: ...


class RunObserver:
    """Hooks called as a run progresses (the CLI draws its progress display with them).

    Subclass and override what you need; an exception raised in a hook stops the
    run like any other failure (the next run continues after the last completed step).
    """

    def run_started(self, run_id: str, resumed: bool) -> None:
        """Called once, before the first step."""

    def step_started(self, name: str) -> None:
        """Called before each step."""

    def step_finished(self, record: StepRecord) -> None:
        """Called after each step, with its record."""

    def training_callbacks(self, epochs: int, steps_per_epoch: int) -> Sequence[Any]:
        """Keras callbacks to pass to training (e.g. a progress bar)."""
        return ()


class RejectedError(Exception):
    """A check failed: the run stops, nothing is deployed."""


def _plain_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


class Steps:
    """The state of one run and the steps that use it."""

    def __init__(
        self, project: ProjectLike, *, force: bool = False, observer: RunObserver | None = None
    ) -> None:
        self.project = project
        self.cfg = project.config
        self.name = project.name
        self.home = project.home
        self.force = force
        self.observer = observer or RunObserver()
        settings = self.cfg.pipeline
        self.cache = StepCache(
            self.home / "pipeline" / "cache", enabled=settings.cache and not force
        )
        self.code = code_version(settings.code_fingerprint)
        self.keys: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.steps: list[StepRecord] = []
        self.run_id = ""
        self.record: dict[str, Any] = {}
        self._registry: Registry | None = None
        self._statistics: DatasetStatistics | None = None
        self._versions: list[ModelVersion] | None = None
        self._earlier: dict[str, dict[str, Any]] = {}

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from mooring.registry import Registry

            self._registry = Registry.from_config(self.cfg)
        return self._registry

    def _deployment(self) -> tuple[int | None, int | None, int]:
        """(production, canary, weight); all empty before the model's first version."""
        from mooring.errors import NotFoundError

        try:
            dep = self.registry.deployment(self.name)
        except NotFoundError:
            return None, None, 0
        return dep.production, dep.canary, dep.canary_weight

    def _version(self, number: int | None) -> ModelVersion | None:
        if number is None:
            return None
        for mv in self._all_versions():
            if mv.version == number:
                return mv
        return None

    def _all_versions(self) -> list[ModelVersion]:
        from mooring.errors import NotFoundError

        if self._versions is None:
            try:
                self._versions = self.registry.versions(self.name)
            except NotFoundError:
                self._versions = []
        return self._versions

    def _train_statistics(self) -> DatasetStatistics:
        if self._statistics is None:
            self._statistics = self.project.statistics("train")
        return self._statistics

    @property
    def run_dir(self) -> Path:
        return self.home / "runs" / self.run_id

    def _cached(self, record: StepRecord, step: str, key: str) -> dict[str, Any] | None:
        entry = self.cache.get(step, key)
        if entry is None:
            return None
        record.status = "cached"
        record.outputs = dict(entry["outputs"])
        record.message = f"inputs unchanged: reused the outputs of run {entry.get('run_id')}"
        return entry

    # -- steps ---------------------------------------------------------------------
    def _step_validate(self, record: StepRecord) -> bool:
        cfg = self.cfg
        schema_file = cfg.contract.schema_file
        inputs = {
            "train_fingerprint": self.project.data_fingerprint("train"),
            "eval_fingerprint": self.project.data_fingerprint("eval") if cfg.data.eval else None,
            "read": cfg.data.model_dump(mode="json", exclude={"train", "eval", "positive"}),
            "contract": cfg.contract.model_dump(mode="json", by_alias=True),
            "schema_file_sha256": file_fingerprint(cfg.path(schema_file)) if schema_file else None,
            "code_version": self.code["code_version"],
        }
        record.inputs = inputs
        record.key = key = digest(inputs)
        if self._cached(record, "validate", key):
            return False
        result = self.project.validate()
        self._statistics = result.statistics
        report = self.home / "reports" / "validation.json"
        if not result.ok:
            errors = [a for r in result.results for a in r.errors]
            shown = "; ".join(f"{a.column or 'table'}: {a.message}" for a in errors[:3]) + (
                f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
            )
            record.outputs = {"ok": False, "errors": len(errors), "report": str(report)}
            raise RejectedError(
                f"the data contract failed with {len(errors)} error(s): {shown} (report: {report})"
            )
        warnings = sum(len(r.warnings) for r in result.results)
        record.outputs = {
            "ok": True,
            "rows": result.statistics.num_rows,
            "eval_rows": result.eval.num_rows if result.eval is not None else None,
            "warnings": warnings,
            "schema_fingerprint": result.schema.fingerprint(),
            "statistics_hash": digest(result.statistics.to_dict()),
            "report": str(report),
        }
        record.status = "done"
        record.message = f"contract ok ({warnings} warning(s))"
        return True

    def _step_train(self, record: StepRecord) -> bool:
        cfg = self.cfg
        validated = self.outputs["validate"]
        inputs = {
            "train_fingerprint": self.project.data_fingerprint("train"),
            "statistics_hash": validated["statistics_hash"],
            "schema_fingerprint": validated["schema_fingerprint"],
            "features": cfg.features.model_dump(mode="json"),
            "model": cfg.model.model_dump(mode="json"),
            "data": cfg.data.model_dump(mode="json", exclude={"train", "eval"}),
            "code_version": self.code["code_version"],
        }
        record.inputs = inputs
        record.key = key = digest(inputs)
        self.keys["train"] = key
        entry = self.cache.get("train", key)
        if entry is not None and (Path(entry["outputs"]["model_dir"]) / METADATA_FILE).is_file():
            self._cached(record, "train", key)
            return False
        statistics = self._train_statistics()
        output = self.run_dir / "train"
        resume = (output / "checkpoints").is_dir() and any((output / "checkpoints").iterdir())
        rows = statistics.num_rows * (1.0 - cfg.model.validation_split)
        steps = max(1, int(-(-rows // cfg.model.batch_size)))
        callbacks = self.observer.training_callbacks(cfg.model.epochs, steps)
        result = self.project.train(output_dir=output, resume=resume, callbacks=callbacks)
        last = result.epochs[-1] if result.epochs else {}
        record.outputs = {
            "model_dir": str(result.model_dir),
            "training_record": str(result.run_record_path),
            "task": result.task,
            "epochs": len(result.epochs),
            "last_epoch": {k: float(v) for k, v in last.items()},
            "fit_seconds": result.timings.get("fit_seconds"),
            "feature_spec_hash": result.feature_spec_hash,
            "statistics_hash": result.statistics_hash,
            "schema_hash": result.schema_hash,
            "parity_max_abs_diff": result.parity.max_abs_diff if result.parity else None,
            "resumed_from_epoch": result.resumed_from,
        }
        record.status = "done"
        record.message = (
            f"{len(result.epochs)} epoch(s)"
            + (f", resumed after epoch {result.resumed_from}" if result.resumed_from else "")
            + f" → {result.model_dir}"
        )
        return True

    def _baseline(self, model_key: str) -> int | None:
        """The production version to compare with, unless it is this very model."""
        production, _, _ = self._deployment()
        mv = self._version(production)
        if mv is None or mv.lineage.get("model_key") == model_key:
            return None
        return mv.version

    def _deployed_is(self, model_key: str) -> bool:
        production, canary, _ = self._deployment()
        return any(
            (mv := self._version(v)) is not None and mv.lineage.get("model_key") == model_key
            for v in (production, canary)
        )

    def _step_evaluate(self, record: StepRecord) -> bool:
        from mooring.evaluation import record_threshold

        cfg = self.cfg
        model_key = self.keys["train"]
        inputs = {
            "model_key": model_key,
            "eval_fingerprint": self.project.data_fingerprint("eval"),
            "evaluation": cfg.evaluation.model_dump(mode="json"),
            "code_version": self.code["code_version"],
        }
        record.key = key = digest(inputs)
        baseline = self._baseline(model_key)
        record.inputs = {**inputs, "baseline_version": baseline}
        entry = self.cache.get("evaluate", key)
        if entry is not None and Path(entry["outputs"].get("report_json", "")).is_file():
            same_baseline = entry["outputs"].get("baseline_version") == baseline
            if same_baseline or self._deployed_is(model_key):
                self._cached(record, "evaluate", key)
                self.keys["evaluate"] = key
                return False
            record.message = (
                f"production changed to version {baseline} since this model was evaluated "
                f"against {entry['outputs'].get('baseline_version')}: evaluating again; "
            )
        self.keys["evaluate"] = key
        model_dir = Path(self.outputs["train"]["model_dir"])
        baseline_dir = (
            self.registry.load(self.name, version=baseline) if baseline is not None else None
        )
        run = self.project.evaluate(
            model_dir=model_dir, baseline_dir=baseline_dir, out=self.run_dir / "evaluation"
        )
        record_threshold(model_dir, run.result)
        folder = run.folder or self.run_dir / "evaluation"
        record.outputs = {
            "report": str(folder / "report.html"),
            "report_json": str(folder / "report.json"),
            "rows": run.result.rows,
            "metrics": _plain_metrics(run.result.metrics),
            "threshold": run.result.operating_threshold,
            "baseline_version": baseline,
            "blessed": run.decision.blessed,
            "decision": run.decision.to_dict(),
        }
        record.status = "done"
        record.message += "blessed" if run.decision.blessed else "not blessed"
        return True

    def _step_gate(self, record: StepRecord) -> bool:
        evaluated = self.outputs["evaluate"]
        decision = evaluated["decision"]
        record.key = self.keys["evaluate"]
        record.inputs = {"evaluation_key": record.key}
        failures = [g for g in decision.get("gates", []) if not g.get("passed")]
        record.outputs = {
            "blessed": bool(decision.get("blessed")),
            "gates": len(decision.get("gates", [])),
            "failed": [g.get("message") for g in failures],
            "warnings": decision.get("warnings", []),
        }
        if not decision.get("blessed"):
            shown = "; ".join(str(g.get("message")) for g in failures)
            raise RejectedError(
                f"not blessed: {len(failures)} gate(s) failed: {shown} "
                f"(report: {evaluated.get('report')}); nothing was deployed"
            )
        step = next(s for s in self.steps if s.name == "evaluate")
        record.status = "cached" if step.status == "cached" else "done"
        record.message = f"blessed: {len(decision.get('gates', []))} gate(s) passed"
        return False

    def _step_register(self, record: StepRecord) -> bool:
        from mooring.registry import build_manifest

        trained = self.outputs["train"]
        evaluated = self.outputs["evaluate"]
        model_dir = Path(trained["model_dir"])
        manifest = build_manifest(model_dir)
        record.inputs = {"model_key": self.keys["train"], "manifest_sha256": manifest.sha256}
        record.key = digest(record.inputs)
        for mv in self._all_versions():
            if mv.manifest_sha256 == manifest.sha256:
                record.status = "cached"
                record.outputs = {"version": mv.version, "manifest_sha256": mv.manifest_sha256}
                record.message = (
                    f"the registry already holds this model as version {mv.version} "
                    f"(registered by run {mv.lineage.get('run_id', '?')})"
                )
                return False
        production, _, _ = self._deployment()
        validated = self.outputs["validate"]
        training_record = Path(trained["training_record"])
        run_record = orjson.loads(training_record.read_bytes()) if training_record.is_file() else {}
        # The dashboard links a version to its evaluation report through this key.
        run_record["evaluation_report"] = str(Path(evaluated["report"]).parent)
        run_record["pipeline_run"] = self.run_id
        # The server checks requests against the contract the data was validated with,
        # including a hand-edited schema file, not one re-inferred from the statistics.
        run_record["schema"] = self.project.schema(self._train_statistics()).to_dict()
        lineage = {
            "data_fingerprint": self.project.data_fingerprint("train"),
            "eval_fingerprint": self.project.data_fingerprint("eval"),
            "train_data": str(self.project.data_path("train")),
            "statistics_hash": trained.get("statistics_hash"),
            "schema_hash": trained.get("schema_hash"),
            "schema_fingerprint": validated.get("schema_fingerprint"),
            "feature_spec_hash": trained.get("feature_spec_hash"),
            "model_key": self.keys["train"],
            "code_version": self.code["code_version"],
            "source_sha256": self.code["source_sha256"],
            "run_id": self.run_id,
        }
        mv = self.registry.register(
            name=self.name,
            artifact_dir=model_dir,
            lineage=lineage,
            metrics=evaluated["metrics"],
            gate=evaluated["decision"],
            statistics=self._train_statistics().to_dict(),
            params=self.cfg.model.model_dump(mode="json"),
            run_record=run_record,
            parent_version=production,
            reason=f"mooring run {self.run_id}",
        )
        self._versions = None
        record.outputs = {
            "version": mv.version,
            "manifest_sha256": mv.manifest_sha256,
            "files": mv.file_count,
            "size_bytes": mv.size_bytes,
        }
        record.status = "done"
        record.message = f"registered {mv.ref}"
        return False

    def _step_replay(self, record: StepRecord) -> bool:
        settings = self.cfg.pipeline
        version = int(self.outputs["register"]["version"])
        production, _, _ = self._deployment()
        record.inputs = {"candidate": version, "production": production}
        if not settings.replay:
            record.status, record.message = "skipped", "[pipeline] replay = false"
            return False
        if production is None:
            record.status = "skipped"
            record.message = "first model: there is no production version to replay against"
            return False
        if production == version:
            record.status, record.message = "skipped", "the candidate is the production version"
            return False
        gates = settings.model_dump(mode="json", include={"replay_rows", "replay_latency_requests"})
        gates.update(
            {
                k: v
                for k, v in settings.model_dump(mode="json").items()
                if k.startswith("replay_max")
            }
        )
        record.inputs["settings"] = gates
        record.key = key = digest(record.inputs)
        if self._cached(record, "replay", key):
            return False
        url = self.cfg.serving.log_url or str(self.home / "predictions")
        table = read_prediction_tail(url, self.name, rows=settings.replay_rows)
        if table is None:
            record.status = "done"
            record.outputs = ReplayReport(
                status="no_log",
                message=f"no prediction log yet under {url}: nothing to replay (the server "
                "writes one when [serving] log_sample_rate > 0)",
            ).to_dict()
            record.message = record.outputs["message"]
            return False
        from mooring.formats.model import load_saved_model

        candidate = load_saved_model(self.registry.load(self.name, version=version), warn=False)
        current = load_saved_model(self.registry.load(self.name, version=production), warn=False)
        report = replay(candidate, current, table, settings, production_version=production)
        report.log = {"url": url, "rows": table.num_rows}
        record.outputs = report.to_dict()
        if report.status == "compared":
            record.message = (
                f"{report.rows} rows: mean |Δscore| {report.mean_abs_diff:.4g}, "
                + (f"flip rate {report.flip_rate:.2%}, " if report.flip_rate is not None else "")
                + (
                    f"p95 latency ratio {report.latency_ratio_p95:.2f}"
                    if report.latency_ratio_p95 is not None
                    else ""
                )
            )
        else:
            record.message = report.message
        if not report.passed:
            shown = "; ".join(g["message"] for g in report.failures)
            raise RejectedError(f"replay test failed: {shown}; nothing was deployed")
        record.status = "done"
        return report.status == "compared"

    def _step_deploy(self, record: StepRecord) -> bool:
        from mooring.registry import default_actor

        version = int(self.outputs["register"]["version"])
        record.inputs = {"version": version}
        record.key = key = f"{self.name}-v{version}"
        if not self.cfg.pipeline.deploy:
            record.status, record.message = "skipped", "[pipeline] deploy = false: registered only"
            return False
        production, canary, weight = self._deployment()
        if production == version:
            record.status, record.message = "cached", f"version {version} is already production"
            record.outputs = {"deployed_as": "production", "canary_weight": None}
            return False
        if canary == version:
            record.status = "cached"
            record.message = f"version {version} is already the canary at {weight}%"
            record.outputs = {"deployed_as": "canary", "canary_weight": weight}
            return False
        earlier = self.cache.get("deploy", key)
        if earlier is not None:
            record.status = "skipped"
            record.message = (
                f"version {version} was deployed by run {earlier.get('run_id')} and has since "
                "been replaced or rolled back; not deploying it again (pass --force to)"
            )
            record.outputs = {"deployed_as": None, "canary_weight": None}
            return False
        actor = default_actor()
        if production is None:
            self.registry.deploy(
                self.name,
                production=version,
                actor=actor,
                reason=f"mooring run {self.run_id}: first model",
            )
            record.outputs = {"deployed_as": "production", "canary_weight": None}
            record.message = f"version {version} is production (first model)"
        else:
            steps = self.cfg.rollout.steps
            start = steps[0] if steps else 100
            if start >= 100:
                self.registry.promote(
                    self.name,
                    version=version,
                    actor=actor,
                    reason=f"mooring run {self.run_id}: [rollout] steps start at 100%",
                )
                record.outputs = {"deployed_as": "production", "canary_weight": None}
                record.message = f"version {version} is production ([rollout] steps start at 100)"
            else:
                replaced = f"; replaces canary {canary}" if canary is not None else ""
                self.registry.deploy(
                    self.name,
                    production=production,
                    canary=version,
                    weight=start,
                    actor=actor,
                    reason=f"mooring run {self.run_id}: canary at {start}% "
                    f"(rollout step 1 of {len(steps)}){replaced}",
                )
                record.outputs = {"deployed_as": "canary", "canary_weight": start}
                record.message = (
                    f"version {version} is the canary at {start}% next to production "
                    f"{production}{replaced}"
                )
        record.status = "done"
        return True
