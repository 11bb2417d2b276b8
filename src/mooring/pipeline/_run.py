"""``run_pipeline``: validate → train → evaluate → gate → register → replay → deploy.

Each step's inputs are fingerprinted (see :mod:`mooring.pipeline._fingerprint`);
when the fingerprint matches a completed earlier step, its outputs are reused
and the step is reported as ``cached``. So a change re-runs only the steps
downstream of it: new eval data re-runs validate and evaluate but not train; a
new ``[model]`` setting re-runs train and everything after it.

A failed data contract, gate or replay test stops the run (status ``rejected``)
and nothing is deployed. A run that was killed or failed is continued by the next
run with the same inputs: same run id, completed steps reused, training resumed
from its last checkpoint.

The steps are :data:`mooring.pipeline._steps.PIPELINE`, run in order by
:func:`run_pipeline`; this module keeps the run record around them.

Examples:
    >>> result = run_pipeline(load_config("mooring.toml"))  # doctest: +SKIP
    >>> result.status, result.version, result.deployed_as  # doctest: +SKIP
    ('succeeded', 2, 'canary')
"""

from __future__ import annotations

import contextlib
import os
import secrets
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring._interrupts import stop_if_interrupted
from mooring._tracing import Tracing, start_tracing
from mooring.config import MooringConfig
from mooring.errors import ConfigError, ConflictError, MooringError
from mooring.formats._pipeline_run import PIPELINE_RUN_KIND, PipelineRun, RunOutcome
from mooring.pipeline._cache import StepCache
from mooring.pipeline._context import RejectedError, RunContext, RunObserver
from mooring.pipeline._cost import run_cost, serving_cost_from_metrics
from mooring.pipeline._fingerprint import code_version, digest
from mooring.pipeline._record import (
    RUN_FILE,
    Meter,
    RunResult,
    StepRecord,
    load_run,
    now_iso,
    process_info,
    write_run,
)
from mooring.pipeline._steps import PIPELINE, Step, step_name
from mooring.pipeline._workspace import Workspace

if TYPE_CHECKING:
    from mooring.evaluation._gates import Waiver

__all__ = ["RECORD_KIND", "RunObserver", "find_runs", "run_pipeline"]

#: The ``kind`` of a pipeline run's record (``formats._pipeline_run.PIPELINE_RUN_KIND``).
RECORD_KIND = PIPELINE_RUN_KIND


def _new_run_id() -> str:
    """UTC time to the millisecond plus a random suffix: ``20240501T120000123Z-1a2b3c``."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


def find_runs(home: Path) -> list[PipelineRun]:
    """Every pipeline run's record under ``<home>/runs``, the most recently active first.

    Ordered by the record's last write (a resumed run is active again), not by its id.
    """
    root = home / "runs"
    if not root.is_dir():
        return []
    runs = []
    for path in root.glob(f"*/{RUN_FILE}"):
        record = load_run(path)
        run = PipelineRun.read(record)
        if record is not None and run.is_pipeline_run:
            runs.append(run)
    runs.sort(key=lambda r: r.activity, reverse=True)
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


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the inputs that differ, one level into sections (``model.seed``).

    Examples:
        >>> changed_inputs({"model": {"seed": 1, "epochs": 2}, "x": 1},
        ...                {"model": {"seed": 7, "epochs": 2}, "x": 1})
        ['model.seed']
    """
    names = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            names += [
                f"{key}.{sub}"
                for sub in sorted(set(old) | set(new))
                if old.get(sub) != new.get(sub)
            ]
        else:
            names.append(key)
    return names


class _Run:
    """One invocation of the pipeline: its record kept around the steps of ``PIPELINE``."""

    def __init__(self, ctx: RunContext, tracing: Tracing | None = None) -> None:
        self.ctx = ctx
        self.tracing = tracing
        self.steps: list[StepRecord] = []
        self.record = PipelineRun()
        self.earlier = PipelineRun()

    def _write(self) -> None:
        self.record = self.record.updated(
            steps=tuple(s.to_dict() for s in self.steps), updated_at=now_iso()
        )
        write_run(self.ctx.run_dir / RUN_FILE, self.record.to_dict())

    def _inputs(self) -> dict[str, Any]:
        ws, cfg = self.ctx.workspace, self.ctx.config
        return {
            "train_data": str(ws.data_path("train")),
            "train_fingerprint": ws.data_fingerprint("train"),
            "eval_fingerprint": ws.data_fingerprint("eval") if cfg.data.eval else None,
            "config_sha256": digest(cfg.model_dump(mode="json", by_alias=True)),
            "code_version": self.ctx.code["code_version"],
        }

    def _resumable(self, inputs_key: str) -> PipelineRun | None:
        """The latest run, when it was interrupted or failed with these same inputs."""
        if self.ctx.force:
            return None
        runs = find_runs(self.ctx.home)
        if not runs:
            return None
        latest = runs[0]
        if latest.status in ("running", "interrupted", "failed") and (
            latest.inputs_key == inputs_key
        ):
            return latest
        return None

    def _attributes(self) -> dict[str, str]:
        return {"mooring.project": self.ctx.config.project.name, "mooring.model": self.ctx.name}

    def run(self) -> RunResult:
        """The run, in a ``mooring run`` span when tracing is on (outcome: the run's status)."""
        if self.tracing is None:
            return self._run()
        with self.tracing.span("mooring run", self._attributes()) as span:
            try:
                result = self._run()
            finally:
                span.set_attribute("mooring.run_id", self.ctx.run_id)
                span.set_attribute("mooring.outcome", str(self.record.status))
            span.set_attribute("mooring.resumed", result.resumed)
            return result

    def _run(self) -> RunResult:
        ctx = self.ctx
        inputs = self._inputs()
        inputs_key = digest(inputs)
        previous = self._resumable(inputs_key)
        resumed = previous is not None
        if previous is not None:
            ctx.run_id = str(previous.run_id)
            self.record = previous
            if previous.last_attempt_status == "running":
                # Its process died without a word: it was killed.
                self.record = self.record.attempt_ended("interrupted")
            done = previous.finished_steps
            self.record = self.record.updated(resumed_after=done[-1] if done else None)
        else:
            ctx.run_id = _new_run_id()
            self.record = PipelineRun.of(
                kind=RECORD_KIND,
                run_id=ctx.run_id,
                model=ctx.name,
                created_at=now_iso(),
                inputs=inputs,
                inputs_key=inputs_key,
                code=ctx.code,
                force=ctx.force,
            )
        self.record = self.record.updated(status="running").attempt_started(
            now_iso(), process_info()
        )
        self.record = self.record.updated(reason=None, error=None)
        self.steps = [StepRecord(step_name(step)) for step in PIPELINE]
        earlier = next((r for r in find_runs(ctx.home) if r.run_id != ctx.run_id), None)
        self.earlier = earlier or PipelineRun()
        self._write()
        ctx.observer.run_started(ctx.run_id, resumed)

        status = "succeeded"
        reason: str | None = None
        meter = Meter().start()
        for step, record in zip(PIPELINE, self.steps, strict=True):
            try:
                # A Ctrl-C whose KeyboardInterrupt Python dropped (raised in a weak
                # reference's callback) still stops the run, here, between two steps.
                stop_if_interrupted(f"stopped before {record.name}")
                rejected = self._one_step(step, record)
            except BaseException as exc:
                self._failed(record, exc)
                raise
            if rejected is not None:
                status, reason = "rejected", f"{record.name}: {rejected}"
                break
        wall, cpu = meter.stop()
        self.record = self.record.attempt_ended(status, round(wall, 4)).updated(
            status=status,
            reason=reason,
            finished_at=now_iso(),
            duration_s=round(wall, 4),
            cpu_seconds=round(cpu, 4),
            cached_steps=tuple(s.name for s in self.steps if s.status == "cached"),
            cost=self._cost(cpu),
            result=self._result(),
        )
        self._write()
        result = self.record.result or RunOutcome()
        return RunResult(
            run_id=ctx.run_id,
            model=ctx.name,
            status=status,  # type: ignore[arg-type]
            steps=self.steps,
            record_path=ctx.run_dir / RUN_FILE,
            version=result.version,
            deployed_as=result.deployed_as,
            canary_weight=result.canary_weight,
            reason=reason,
            resumed=resumed,
            record=self.record.to_dict(),
        )

    def _one_step(self, step: Step, record: StepRecord) -> str | None:
        """Run one step (or reuse it); the reason when a check rejects the run.

        When tracing is on, in a span named after the step, a child of the run's.
        """
        if self.tracing is None:
            return self._step(step, record)
        attributes = {**self._attributes(), "mooring.step": record.name}
        with self.tracing.span(record.name, attributes) as span:
            try:
                return self._step(step, record)
            finally:
                span.set_attribute("mooring.outcome", record.status)

    def _step(self, step: Step, record: StepRecord) -> str | None:
        ctx = self.ctx
        record.status = "running"
        record.started_at = now_iso()
        ctx.observer.step_started(record.name)
        self._write()
        meter = Meter().start()
        rejected: str | None = None
        output = None
        try:
            output = step(ctx, record)
        except RejectedError as exc:
            record.status = "rejected"
            record.message = rejected = str(exc)
            record.reusable = False
        except BaseException as exc:
            record.status = "failed"
            record.message = str(exc) or type(exc).__name__
            raise
        finally:
            wall, cpu = meter.stop()
            record.duration_s, record.cpu_seconds = round(wall, 4), round(cpu, 4)
            record.finished_at = now_iso()
        outcome: str = record.status  # set by the step
        if output is not None:
            record.outputs = output.to_dict()
        if record.key is not None:
            ctx.keys[record.name] = record.key
        ctx.statuses[record.name] = outcome
        stored = self.earlier.step(record.name)
        before = StepRecord.from_dict(dict(stored)) if stored is not None else None
        if outcome == "done" and before is not None and before.key and before.key != record.key:
            record.changed_inputs = changed_inputs(before.inputs or {}, record.inputs)
            if record.changed_inputs:
                shown = ", ".join(record.changed_inputs[:6])
                more = len(record.changed_inputs) - 6
                record.message += (
                    f" (re-run: {shown}{f' and {more} more' if more > 0 else ''} changed)"
                )
        if record.completed:
            setattr(ctx.outputs, record.name, output)
        if record.reusable and outcome == "done" and record.key is not None:
            ctx.cache.put(
                record.name,
                record.key,
                record.outputs,
                run_id=ctx.run_id,
                duration_s=record.duration_s,
                cpu_seconds=record.cpu_seconds,
            )
        self._write()
        ctx.observer.step_finished(record)
        return rejected

    def _failed(self, record: StepRecord, exc: BaseException) -> None:
        """Record where and why the run stopped; the next run continues after the last step."""
        interrupted = isinstance(exc, KeyboardInterrupt)
        ended = "interrupted" if interrupted else "failed"
        self.record = self.record.stopped(
            ended,
            step=record.name,
            error=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            user_error=isinstance(exc, MooringError),
            at=now_iso(),
        )
        self._write()
        if record.status == "failed":
            with contextlib.suppress(Exception):
                self.ctx.observer.step_finished(record)

    def _result(self) -> RunOutcome:
        outputs = self.ctx.outputs
        register, deploy, evaluate = outputs.register, outputs.deploy, outputs.evaluate
        production, canary, weight = (
            self.ctx.deployment() if self.ctx.opened_registry else (None, None, 0)
        )
        return RunOutcome.of(
            version=register.version if register else None,
            blessed=evaluate.blessed if evaluate else None,
            candidate=evaluate.chosen if evaluate else None,
            metrics=evaluate.metrics if evaluate else None,
            report=evaluate.report if evaluate else None,
            deployed_as=deploy.deployed_as if deploy else None,
            canary_weight=deploy.canary_weight if deploy else None,
            deployment={"production": production, "canary": canary, "canary_weight": weight},
        )

    def _cost(self, cpu: float) -> dict[str, Any]:
        ctx = self.ctx
        price = ctx.config.pipeline.cpu_hour_price
        train = next(s for s in self.steps if s.name == "train")
        if train.status == "cached":
            entry = ctx.cache.get("train", train.key or "") if train.key else None
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
        settings = self.ctx.config.pipeline
        if settings.metrics_url:
            try:
                with urllib.request.urlopen(settings.metrics_url, timeout=5) as response:
                    text = response.read().decode("utf-8")
            except OSError as exc:
                return {"source": "metrics", "error": f"{settings.metrics_url}: {exc}"}
            per_version = serving_cost_from_metrics(
                text, self.ctx.name, price=price, cpus=settings.serving_cpus
            )
            return {"source": "metrics", "url": settings.metrics_url, "versions": per_version}
        replayed = self.ctx.outputs.replay
        per_row = replayed.cpu_seconds_per_1000 if replayed is not None else {}
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


def run_pipeline(
    project: Workspace | MooringConfig,
    *,
    force: bool = False,
    observer: RunObserver | None = None,
    accept_perfect: str | None = None,
    waiver: Waiver | None = None,
) -> RunResult:
    """Run validate → train → evaluate → gate → register → replay → deploy on a project.

    ``force`` re-runs every step (no cache, no resume). ``accept_perfect``: the reason a
    near-perfect evaluation is acknowledged for this run (audited; else it is held, see
    :mod:`mooring.pipeline._leaks`). ``waiver`` waives the failed gates that compare with
    production, for its reason (:class:`~mooring.evaluation._gates.Waiver`; recorded with
    the version and in the audit log). A failed check returns a
    result with ``status == "rejected"`` and the reason; an error raises after the
    run record says where it stopped (re-run to continue from there).

    Examples:
        >>> result = run_pipeline(load_config("mooring.toml"))  # doctest: +SKIP
        >>> [s.status for s in result.steps]  # doctest: +SKIP
        ['cached', 'cached', 'cached', 'cached', 'cached', 'skipped', 'cached']
    """
    workspace = project if isinstance(project, Workspace) else Workspace(project)
    settings = workspace.config.pipeline
    # First: a missing extra for [observability] is a configuration error before any work.
    tracing = start_tracing(workspace.config.observability)
    try:
        if workspace.config.data.eval is None:
            # Every model is evaluated on held-out data before its gates: say so now.
            raise ConfigError(
                "[data] eval is not set, and `mooring run` evaluates every model on a "
                'held-out file before its gates: nothing was trained; add eval = "path" to '
                "mooring.toml (a held-out file with the same columns as the train file)"
            )
        ctx = RunContext(
            workspace=workspace,
            cache=StepCache(
                workspace.home / "pipeline" / "cache", enabled=settings.cache and not force
            ),
            code=code_version(settings.code_fingerprint),
            observer=observer or RunObserver(),
            force=force,
            accept_perfect=accept_perfect,
            waiver=waiver,
        )
        workspace.home.mkdir(parents=True, exist_ok=True)
        with _exclusive(workspace.home):
            try:
                return _Run(ctx, tracing).run()
            finally:
                ctx.close()
    finally:
        if tracing is not None:
            tracing.shutdown()  # exports the run's spans before the process exits
