"""Where per-shard work runs: this process, a local process pool, or a Ray cluster.

An :class:`Engine` maps one picklable function over a list of items (shards) and
returns the results **in item order**, whichever engine ran them, so that merging
them gives the same answer everywhere. The function's own errors come back as the
same :class:`~mooring.errors.MooringError` class with the same message (never a
Ray traceback); an item whose worker dies is run again.

* ``local`` with one worker runs in this process; with more it uses a
  ``spawn`` process pool (no fork of a process that may hold TensorFlow's threads).
* ``ray`` builds a Ray Data dataset with one block per item and maps the function
  over it with at most ``workers`` tasks at once; a task whose worker dies (a killed
  process, a lost node) is run again by Ray. ``address`` is the cluster's (``ray start``
  prints it; ``auto`` finds the local one); without one Ray starts a private
  cluster on this machine. Ray is the ``ray`` extra: ``pip install 'mooring-ml[ray]'``.

Examples:
    >>> Engine().map(abs, [-1, 2, -3])
    [1, 2, 3]
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from mooring.errors import MissingExtraError, MooringError, UsageError

if TYPE_CHECKING:
    from mooring.config._data import ProjectConfig

__all__ = ["ENGINES", "Engine", "usable_cores"]

T = TypeVar("T")
R = TypeVar("R")
EngineKind = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")

log = logging.getLogger("mooring.scale")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Engine:
    """How to run per-shard work.

    Attributes:
        kind: ``local`` or ``ray``.
        workers: processes (local) or concurrent tasks (ray); default: the usable cores
            (local) or the cluster's CPUs (ray).
        address: the Ray cluster to join (``ray`` only).
    """

    kind: EngineKind = "local"
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise UsageError(f"engine {self.kind!r} is not one of {', '.join(ENGINES)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"workers must be at least 1, got {self.workers}")

    @classmethod
    def from_config(
        cls,
        project: ProjectConfig | None = None,
        *,
        kind: str | None = None,
        workers: int | None = None,
        address: str | None = None,
    ) -> Engine:
        """``[project] engine / engine_workers / ray_address``, each overridden when given."""
        chosen = kind or (project.engine if project is not None else "local")
        if chosen not in ENGINES:
            raise UsageError(f"--engine {chosen!r}: choose one of {', '.join(ENGINES)}")
        if workers is None and project is not None:
            workers = project.engine_workers
        return cls(
            kind=chosen,  # type: ignore[arg-type]
            workers=workers,
            address=address or (project.ray_address if project is not None else None),
        )

    def describe(self) -> str:
        """A short name for reports: ``local×2``, ``ray@127.0.0.1:6379``."""
        if self.kind == "local":
            return f"local×{self.workers or usable_cores()}"
        return f"ray@{self.address or 'local'}" + (f"×{self.workers}" if self.workers else "")

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, run on this engine, in item order.

        Raises:
            MooringError: the first item (in order) whose function raised one; the same
                class and message as a local call.
            MissingExtraError: ``ray`` without the ``ray`` extra installed.
        """
        if not items:
            return []
        if self.kind == "ray":
            return _ray_map(fn, list(items), self)
        workers = min(self.workers or usable_cores(), len(items))
        if workers == 1:
            return [fn(item) for item in items]
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        try:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                outcomes = list(pool.map(_Guarded(fn), items))
        except BrokenProcessPool:
            raise MooringError(
                f"a worker process died (killed, or out of memory) while {len(items)} shards "
                "were processed; run again, with fewer --workers (or smaller [data] batch_mb) "
                "if memory is short"
            ) from None
        return [_unwrap(outcome) for outcome in outcomes]


class _Guarded:
    """Runs ``fn`` and returns ``("ok", result)`` or ``("error", class, message)``.

    A mooring error crosses a process (or Ray) boundary as data (its class pickled by
    reference), so the caller raises the same class with the same message instead of a
    wrapped remote traceback.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> tuple[Any, ...]:
        try:
            return ("ok", self.fn(item))
        except MooringError as exc:
            return ("error", type(exc), exc.message)


def _unwrap(outcome: tuple[Any, ...]) -> Any:
    if outcome[0] == "ok":
        return outcome[1]
    raise error_class(outcome[1])(outcome[2])


def error_class(kind: Any) -> type[MooringError]:
    """The class of a guarded call's error (:class:`MooringError` if it is not one).

    >>> from mooring.errors import DataError
    >>> error_class(DataError).__name__, error_class("DataError").__name__
    ('DataError', 'MooringError')
    """
    return kind if isinstance(kind, type) and issubclass(kind, MooringError) else MooringError


def connect_ray(address: str | None) -> Any:
    """Join (or start) the Ray cluster once per process, quietly; returns the ``ray`` module.

    Raises:
        MissingExtraError: Ray is not installed.
        UsageError: no cluster answers at ``address``.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError(
            "the ray engine needs Ray: pip install 'mooring-ml[ray]' (or use --engine local)"
        ) from None
    if not ray.is_initialized():
        # Ray Data's usage collection queries a Prometheus on localhost after every run
        # and logs a traceback when there is none; mooring sends no usage data unasked.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
        for name in ("ray", "ray.data", "ray.data._internal"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            ray.init(
                address=address,
                logging_level=logging.WARNING,
                log_to_driver=False,
                include_dashboard=False if address is None else None,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local Ray"
            raise UsageError(
                f"cannot reach the Ray cluster at {where!r} ({str(exc).splitlines()[0]}); start "
                "one with `ray start --head` and pass its address (--ray-address or [project] "
                "ray_address), or use --engine local"
            ) from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
    return ray


def _ray_map(fn: Callable[[Any], Any], items: list[Any], engine: Engine) -> list[Any]:
    ray = connect_ray(engine.address)
    guarded = _Guarded(fn)

    def run(row: dict[str, Any]) -> dict[str, Any]:
        # Items and results travel pickled, one binary cell each, whatever their type;
        # a task receives only its own item.
        outcome = guarded(pickle.loads(row["item"]))
        return {"index": row["index"], "outcome": pickle.dumps(outcome)}

    dataset = ray.data.from_items(
        [{"index": i, "item": pickle.dumps(item)} for i, item in enumerate(items)],
        override_num_blocks=len(items),
    )
    mapped = dataset.map(
        run,
        concurrency=engine.workers,
        num_cpus=1,
    )
    rows = sorted(mapped.take_all(), key=lambda row: int(row["index"]))
    if len(rows) != len(items):  # pragma: no cover - Ray lost a block without raising
        raise MooringError(f"the ray engine returned {len(rows)} results for {len(items)} items")
    return [_unwrap(pickle.loads(row["outcome"])) for row in rows]
