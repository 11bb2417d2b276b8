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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.errors import ConflictError, MooringError
from mooring.pipeline.cost import run_cost, serving_cost_from_metrics
from mooring.pipeline.fingerprint import digest
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
from mooring.pipeline.steps import ProjectLike, RejectedError, RunObserver, Steps

__all__ = ["RECORD_KIND", "ProjectLike", "RunObserver", "find_runs", "run_pipeline"]

RECORD_KIND = "mooring.run"


def _new_run_id() -> str:
    """UTC time to the millisecond plus a random suffix: ``20240501T120000123Z-1a2b3c``."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


def find_runs(home: Path) -> list[dict[str, Any]]:
    """Every pipeline run record under ``<home>/runs``, the most recently active first.

    Ordered by the record's last write (a resumed run is active again), not by its id.
    """
    root = home / "runs"
    if not root.is_dir():
        return []
    runs = []
    for path in root.glob(f"*/{RUN_FILE}"):
        record = load_run(path)
        if record is not None and record.get("kind") == RECORD_KIND:
            runs.append(record)
    runs.sort(
        key=lambda r: (str(r.get("updated_at") or r.get("created_at") or ""), str(r["run_id"])),
        reverse=True,
    )
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

    Example:
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


class Pipeline(Steps):
    """One invocation of the pipeline on a project (see :func:`run_pipeline`)."""

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
        earlier = next((r for r in find_runs(self.home) if r.get("run_id") != self.run_id), None)
        self._earlier = {s["name"]: s for s in (earlier or {}).get("steps", [])}
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
        except RejectedError as exc:
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
        before = self._earlier.get(record.name) or {}
        if outcome == "done" and before.get("key") and before.get("key") != record.key:
            record.changed_inputs = changed_inputs(before.get("inputs") or {}, record.inputs)
            if record.changed_inputs:
                shown = ", ".join(record.changed_inputs[:6])
                more = len(record.changed_inputs) - 6
                record.message += (
                    f" (re-run: {shown}{f' and {more} more' if more > 0 else ''} changed)"
                )
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
