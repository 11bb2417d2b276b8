"""``run_pipeline``: validate → train → evaluate → gate → register → replay → deploy.

Each step's inputs are fingerprinted (see :mod:`mooring.pipeline.fingerprint`);
when the fingerprint matches a completed earlier step, its outputs are reused
and the step is reported as ``cached``. So a change re-runs only the steps
downstream of it: new eval data re-runs validate and evaluate but not train; a
new ``[model]`` setting re-runs train and everything after it.

A failed data contract, gate or replay test stops the run (status ``rejected``)
and nothing is deployed. A run that was killed or failed is continued by the next
run with the same inputs: same run id, completed steps reused, training resumed
from its last checkpoint.

Example:
    >>> result = run_pipeline(Project.load("mooring.toml"))  # doctest: +SKIP
    >>> result.status, result.version, result.deployed_as  # doctest: +SKIP
    ('succeeded', 2, 'canary')
"""

from __future__ import annotations

import contextlib
import os
import secrets
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from mooring.config import MooringConfig
from mooring.contract import DatasetStatistics
from mooring.contract.io import file_fingerprint
from mooring.contract.schema import Schema
from mooring.errors import ConflictError, MooringError
from mooring.pipeline.cache import StepCache
from mooring.pipeline.cost import run_cost, serving_cost_from_metrics
from mooring.pipeline.fingerprint import code_version, digest
from mooring.pipeline.record import (
    RUN_FILE,
    STEPS,
    Meter,
    RunResult,
    StepRecord,
    load_run,
    now_iso,
    process_info,
    write_run,
)
from mooring.pipeline.replay import ReplayReport, read_prediction_tail, replay

if TYPE_CHECKING:
    from mooring.evaluation import EvaluationRun
    from mooring.registry import ModelVersion, Registry
    from mooring.training import TrainingResult

__all__ = ["RECORD_KIND", "ProjectLike", "RunObserver", "find_runs", "run_pipeline"]

RECORD_KIND = "mooring.run"


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


class _RejectedError(Exception):
    """A check failed: the run stops, nothing is deployed."""


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def find_runs(home: Path) -> list[dict[str, Any]]:
    """Every pipeline run record under ``<home>/runs``, newest first."""
    runs = []
    root = home / "runs"
    if not root.is_dir():
        return []
    for path in sorted(root.glob(f"*/{RUN_FILE}"), reverse=True):
        record = load_run(path)
        if record is not None and record.get("kind") == RECORD_KIND:
            runs.append(record)
    return runs


@contextlib.contextmanager
def _exclusive(home: Path) -> Iterator[None]:
    """One ``mooring run`` per home at a time (an OS lock: released if the process dies)."""
    path = home / "pipeline" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            yield
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ConflictError(
                f"another `mooring run` is in progress on '{home}' (pid {holder}); wait for it "
                "to finish or stop it, then run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _plain_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


class Pipeline:
    """One invocation of the pipeline on a project (see :func:`run_pipeline`)."""

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

    # -- plumbing ------------------------------------------------------------------
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

    def _write(self) -> None:
        self.record["steps"] = [s.to_dict() for s in self.steps]
        self.record["updated_at"] = now_iso()
        write_run(self.run_dir / RUN_FILE, self.record)

    def _run_inputs(self) -> dict[str, Any]:
        eval_fp = self.project.data_fingerprint("eval") if self.cfg.data.eval else None
        return {
            "train_data": str(self.project.data_path("train")),
            "train_fingerprint": self.project.data_fingerprint("train"),
            "eval_fingerprint": eval_fp,
            "config_sha256": digest(self.cfg.model_dump(mode="json", by_alias=True)),
            "code_version": self.code["code_version"],
        }

    def _resumable(self, inputs_key: str) -> dict[str, Any] | None:
        """The latest run, when it was interrupted or failed with these same inputs."""
        if self.force:
            return None
        runs = find_runs(self.home)
        if not runs:
            return None
        latest = runs[0]
        if latest.get("status") in ("running", "interrupted", "failed") and (
            latest.get("inputs_key") == inputs_key
        ):
            return latest
        return None

    # -- the run -------------------------------------------------------------------
    def run(self) -> RunResult:
        self.home.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.home):
            try:
                return self._run()
            finally:
                if self._registry is not None:
                    self._registry.close()

    def _run(self) -> RunResult:
        inputs = self._run_inputs()
        inputs_key = digest(inputs)
        previous = self._resumable(inputs_key)
        resumed = previous is not None
        if previous is not None:
            self.run_id = str(previous["run_id"])
            attempts = list(previous.get("attempts", []))
            if attempts and attempts[-1].get("status") == "running":
                # Its process died without a word: it was killed.
                attempts[-1]["status"] = "interrupted"
            done = [
                s["name"]
                for s in previous.get("steps", [])
                if s.get("status") in ("done", "cached", "skipped")
            ]
            self.record = dict(previous)
            self.record["resumed_after"] = done[-1] if done else None
        else:
            self.run_id = _new_run_id()
            attempts = []
            self.record = {
                "kind": RECORD_KIND,
                "run_id": self.run_id,
                "model": self.name,
                "created_at": now_iso(),
                "inputs": inputs,
                "inputs_key": inputs_key,
                "code": self.code,
                "force": self.force,
            }
        attempts.append({"started_at": now_iso(), "status": "running", **process_info()})
        self.record.update(status="running", attempts=attempts, reason=None, error=None)
        self.steps = [StepRecord(name) for name in STEPS]
        self._write()
        self.observer.run_started(self.run_id, resumed)

        status = "succeeded"
        reason: str | None = None
        meter = Meter().start()
        for record in self.steps:
            try:
                rejected = self._one_step(record)
            except BaseException as exc:
                self._failed(record, exc, attempts)
                raise
            if rejected is not None:
                status, reason = "rejected", f"{record.name}: {rejected}"
                break
        wall, cpu = meter.stop()
        attempts[-1]["status"] = status
        attempts[-1]["duration_s"] = round(wall, 4)
        self.record.update(
            status=status,
            reason=reason,
            finished_at=now_iso(),
            duration_s=round(wall, 4),
            cpu_seconds=round(cpu, 4),
            cached_steps=[s.name for s in self.steps if s.status == "cached"],
            cost=self._cost(cpu),
            result=self._result(),
        )
        self._write()
        result = self.record["result"]
        return RunResult(
            run_id=self.run_id,
            model=self.name,
            status=status,  # type: ignore[arg-type]
            steps=self.steps,
            record_path=self.run_dir / RUN_FILE,
            version=result.get("version"),
            deployed_as=result.get("deployed_as"),
            canary_weight=result.get("canary_weight"),
            reason=reason,
            resumed=resumed,
            record=self.record,
        )

    def _one_step(self, record: StepRecord) -> str | None:
        """Run one step (or reuse it); the reason when a check rejects the run."""
        record.status = "running"
        record.started_at = now_iso()
        self.observer.step_started(record.name)
        self._write()
        meter = Meter().start()
        rejected: str | None = None
        try:
            cacheable = bool(getattr(self, f"_step_{record.name}")(record))
        except _RejectedError as exc:
            record.status = "rejected"
            record.message = rejected = str(exc)
            cacheable = False
        except BaseException as exc:
            record.status = "failed"
            record.message = str(exc) or type(exc).__name__
            raise
        finally:
            wall, cpu = meter.stop()
            record.duration_s, record.cpu_seconds = round(wall, 4), round(cpu, 4)
            record.finished_at = now_iso()
        outcome: str = record.status  # set by the step
        if record.completed:
            self.outputs[record.name] = record.outputs
        if cacheable and outcome == "done" and record.key is not None:
            self.cache.put(
                record.name,
                record.key,
                record.outputs,
                run_id=self.run_id,
                duration_s=record.duration_s,
                cpu_seconds=record.cpu_seconds,
            )
        self._write()
        self.observer.step_finished(record)
        return rejected

    def _failed(self, record: StepRecord, exc: BaseException, attempts: list[Any]) -> None:
        """Record where and why the run stopped; the next run continues after the last step."""
        interrupted = isinstance(exc, KeyboardInterrupt)
        attempts[-1]["status"] = "interrupted" if interrupted else "failed"
        self.record.update(
            status="interrupted" if interrupted else "failed",
            error={
                "step": record.name,
                "type": type(exc).__name__,
                "message": str(exc) or type(exc).__name__,
                "user_error": isinstance(exc, MooringError),
            },
            finished_at=now_iso(),
        )
        self._write()
        if record.status == "failed":
            with contextlib.suppress(Exception):
                self.observer.step_finished(record)

    def _result(self) -> dict[str, Any]:
        register = self.outputs.get("register", {})
        deploy = self.outputs.get("deploy", {})
        evaluate = self.outputs.get("evaluate", {})
        production, canary, weight = (
            self._deployment() if self._registry is not None else (None, None, 0)
        )
        return {
            "version": register.get("version"),
            "blessed": evaluate.get("blessed"),
            "metrics": evaluate.get("metrics"),
            "report": evaluate.get("report"),
            "deployed_as": deploy.get("deployed_as"),
            "canary_weight": deploy.get("canary_weight"),
            "deployment": {"production": production, "canary": canary, "canary_weight": weight},
        }

    def _cost(self, cpu: float) -> dict[str, Any]:
        settings = self.cfg.pipeline
        price = settings.cpu_hour_price
        train = next(s for s in self.steps if s.name == "train")
        if train.status == "cached":
            entry = self.cache.get("train", train.key or "") if train.key else None
            train_cpu = float(entry.get("cpu_seconds", 0.0)) if entry else 0.0
            train_source = f"run {entry.get('run_id')}" if entry else "unknown"
        else:
            train_cpu, train_source = train.cpu_seconds, "this run"
        out = run_cost(cpu_seconds=cpu, train_cpu_seconds=train_cpu, price=price)
        out["training_cpu_seconds"] = round(train_cpu, 3)
        out["training_run"] = train_source
        out["per_1000_predictions"] = self._serving_cost(price)
        return out

    def _serving_cost(self, price: float | None) -> dict[str, Any]:
        settings = self.cfg.pipeline
        if settings.metrics_url:
            try:
                with urllib.request.urlopen(settings.metrics_url, timeout=5) as response:
                    text = response.read().decode("utf-8")
            except OSError as exc:
                return {"source": "metrics", "error": f"{settings.metrics_url}: {exc}"}
            per_version = serving_cost_from_metrics(
                text, self.name, price=price, cpus=settings.serving_cpus
            )
            return {"source": "metrics", "url": settings.metrics_url, "versions": per_version}
        replayed = self.outputs.get("replay", {})
        per_row = replayed.get("cpu_seconds_per_1000", {})
        if per_row:
            return {
                "source": "replay",
                "versions": {
                    label: {
                        "cpu_seconds_per_1000": seconds,
                        "cost_per_1000": None if price is None else seconds / 3600.0 * price,
                    }
                    for label, seconds in per_row.items()
                },
            }
        return {
            "source": None,
            "note": "no serving figures: set [pipeline] metrics_url to a server's /metrics, "
            "or let the replay test run against a prediction log",
        }

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
            raise _RejectedError(
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
        record.inputs = {k: v for k, v in inputs.items() if k not in ("features", "model", "data")}
        record.inputs["params_sha256"] = digest(
            {k: inputs[k] for k in ("features", "model", "data")}
        )
        record.key = key = digest(inputs)
        self.keys["train"] = key
        entry = self.cache.get("train", key)
        if entry is not None and (Path(entry["outputs"]["model_dir"]) / "mooring.json").is_file():
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
        record.inputs = {
            "model_key": model_key,
            "eval_fingerprint": inputs["eval_fingerprint"],
            "baseline_version": baseline,
        }
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
            raise _RejectedError(
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
        from mooring.training import load_model

        candidate = load_model(self.registry.load(self.name, version=version), warn=False)
        current = load_model(self.registry.load(self.name, version=production), warn=False)
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
            raise _RejectedError(f"replay test failed: {shown}; nothing was deployed")
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


def run_pipeline(
    project: ProjectLike, *, force: bool = False, observer: RunObserver | None = None
) -> RunResult:
    """Run validate → train → evaluate → gate → register → replay → deploy on a project.

    ``force`` re-runs every step (no cache, no resume). A failed check returns a
    result with ``status == "rejected"`` and the reason; an error raises after the
    run record says where it stopped (re-run to continue from there).

    Example:
        >>> from mooring.project import Project
        >>> result = run_pipeline(Project.load("mooring.toml"))  # doctest: +SKIP
        >>> [s.status for s in result.steps]  # doctest: +SKIP
        ['cached', 'cached', 'cached', 'cached', 'cached', 'skipped', 'cached']
    """
    return Pipeline(project, force=force, observer=observer).run()
