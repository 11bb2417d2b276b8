"""A pipeline run's record: what every step of one ``mooring run`` did, cost and produced.

Written atomically to ``<home>/runs/<run-id>/run.json`` after every step, so a run
that is killed leaves a record of the steps it completed (status ``running`` with
a dead process means it was interrupted; the next run continues it).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from mooring.formats._files import atomic_write

__all__ = [
    "RUN_FILE",
    "STEPS",
    "Meter",
    "RunResult",
    "StepRecord",
    "StepStatus",
    "cpu_seconds",
    "load_run",
    "now_iso",
    "write_run",
]

RUN_FILE = "run.json"
STEPS = ("validate", "train", "evaluate", "gate", "register", "replay", "deploy")
StepStatus = Literal["pending", "running", "done", "cached", "skipped", "failed", "rejected"]


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: no children accounting
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Meter:
    """Wall and CPU seconds between :meth:`start` and :meth:`stop`.

    Examples:
        >>> meter = Meter().start()
        >>> wall, cpu = meter.stop()
        >>> wall >= 0.0 and cpu >= 0.0
        True
    """

    def __init__(self) -> None:
        self._wall = 0.0
        self._cpu = 0.0

    def start(self) -> Meter:
        self._wall = time.perf_counter()
        self._cpu = cpu_seconds()
        return self

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self._wall, max(0.0, cpu_seconds() - self._cpu)


@dataclass
class StepRecord:
    """One step of a run: status, timing, the fingerprint of its inputs, what it produced.

    ``status`` is ``done`` (ran), ``cached`` (inputs unchanged: outputs reused),
    ``skipped`` (nothing to do, with the reason in ``message``), ``rejected`` (a
    check failed: contract, gate or replay), ``failed`` (an error) or ``pending``.
    ``changed_inputs`` names the inputs that differ from the previous run's, when
    the step ran again because of them (``model.seed``, ``eval_fingerprint``).
    """

    name: str
    status: StepStatus = "pending"
    key: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    cpu_seconds: float = 0.0
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    changed_inputs: list[str] = field(default_factory=list)
    # Set by a step whose outputs later runs may reuse for the same key; not recorded.
    reusable: bool = field(default=False, repr=False)

    @property
    def completed(self) -> bool:
        """True when later steps may use this step's outputs."""
        return self.status in ("done", "cached", "skipped")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        del data["reusable"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RunResult:
    """What :meth:`Project.run` did: the run's status, every step, the deployed version.

    ``status`` is ``succeeded``, ``rejected`` (the data contract, a gate or the replay
    test failed: nothing was deployed; ``reason`` says why) or ``failed`` (an error).

    Examples:
        >>> result = Project.load("mooring.toml").run()  # doctest: +SKIP
        >>> result.ok, result.version, result.deployed_as  # doctest: +SKIP
        (True, 1, 'production')
    """

    run_id: str
    model: str
    status: Literal["running", "succeeded", "rejected", "failed"]
    steps: list[StepRecord]
    record_path: Path
    version: int | None = None
    deployed_as: str | None = None
    canary_weight: int | None = None
    reason: str | None = None
    resumed: bool = False
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"

    def step(self, name: str) -> StepRecord:
        """The record of one step by name."""
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(f"no step named {name!r}; steps: {', '.join(STEPS)}")

    @property
    def cached_steps(self) -> list[str]:
        """Steps whose outputs were reused."""
        return [s.name for s in self.steps if s.status == "cached"]

    @property
    def executed_steps(self) -> list[str]:
        """Steps that ran in this invocation."""
        return [s.name for s in self.steps if s.status in ("done", "rejected", "failed")]

    def to_dict(self) -> dict[str, Any]:
        """The pipeline run's record (the content of its run.json)."""
        return dict(self.record)


def write_run(path: Path, record: dict[str, Any]) -> None:
    """Write a pipeline run's record atomically (temp file + rename)."""
    atomic_write(
        path, orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )


def load_run(path: Path) -> dict[str, Any] | None:
    """A pipeline run's record, or ``None`` when the file is absent or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def process_info() -> dict[str, Any]:
    """Who runs: pid, host, Python."""
    return {
        "pid": os.getpid(),
        "host": os.uname().nodename if hasattr(os, "uname") else "",
        "python": sys.version.split()[0],
    }
