"""Long-lived workers for per-shard work that loads something heavy once (a model).

:class:`~mooring.scale._engine.Engine.map` hands items to fresh tasks; batch scoring
wants workers that keep a loaded model between shards and report each shard as it
finishes (for a progress bar). :func:`run_pool` runs a picklable function over items:

* ``local``, one worker: in this process;
* ``local``, more: a ``spawn`` process pool (as :meth:`Engine.map`), whose processes
  live for the whole run;
* ``ray``: a pool of Ray actors, one CPU each, restarted by Ray when their process dies
  (``max_restarts=-1``); the item an actor was running when it died is handed out
  again, up to :data:`MAX_ATTEMPTS` times.

Each result reaches ``on_done(index, outcome)`` on this process as soon as it is
ready; ``outcome`` is ``("ok", result)`` or ``("error", class, message)`` for a
:class:`~mooring.errors.MooringError` (as :class:`~mooring.scale._engine.Engine` ships
them), so one failed item never stops the others.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mooring.errors import MooringError
from mooring.scale._engine import Engine, _Guarded, connect_ray, usable_cores

__all__ = ["MAX_ATTEMPTS", "run_pool"]

#: How often one item is handed out before its worker's deaths fail it.
MAX_ATTEMPTS = 3

Done = Callable[[int, tuple[Any, ...]], None]


def run_pool(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    engine: Engine,
    on_done: Done,
    *,
    label: Callable[[Any], str] = repr,
) -> int:
    """Run ``fn`` over ``items`` on ``engine``'s workers; the number of items run again.

    Examples:
        >>> seen = []
        >>> run_pool(abs, [-1, 2], Engine(workers=1), lambda i, o: seen.append((i, o)))
        0
        >>> seen
        [(0, ('ok', 1)), (1, ('ok', 2))]
    """
    if not items:
        return 0
    if engine.kind == "ray":
        return _on_actors(fn, items, engine, on_done, label)
    workers = min(engine.workers or usable_cores(), len(items))
    guarded = _Guarded(fn)
    if workers == 1:
        for i, item in enumerate(items):
            on_done(i, guarded(item))
        return 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        running = {pool.submit(guarded, item): i for i, item in enumerate(items)}
        while running:
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ready:
                index = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    raise MooringError(
                        "a scoring process died (killed, or out of memory); the shards "
                        "finished so far are kept: run the command again to resume, with "
                        "fewer --workers if memory is short"
                    ) from None
                on_done(index, outcome)
    return 0


def _actor_class(ray: Any) -> Any:
    """The pool's Ray actor: runs the function on item after item in one process.

    ``run`` is never retried by Ray (the pool hands a lost item out again itself, and
    counts it); ``ready`` waits through a restart, so a restarted actor gets work only
    once it is back.
    """

    class ScoringActor:
        def __init__(self, fn: Callable[[Any], Any]) -> None:
            self.guarded = _Guarded(fn)

        def run(self, item: Any) -> tuple[Any, ...]:
            return self.guarded(item)

        @ray.method(max_task_retries=-1)  # type: ignore[untyped-decorator]
        def ready(self) -> bool:
            return True

    return ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(ScoringActor)


def _on_actors(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    engine: Engine,
    on_done: Done,
    label: Callable[[Any], str],
) -> int:
    ray = connect_ray(engine.address)
    from ray.exceptions import RayActorError

    lost: tuple[type[BaseException], ...] = (RayActorError,)
    unavailable = getattr(ray.exceptions, "ActorUnavailableError", None)
    if isinstance(unavailable, type):
        lost += (unavailable,)
    size = engine.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = _actor_class(ray)
    actors = [remote.remote(fn) for _ in range(min(size, len(items)))]
    idle = deque(actors)
    pending = deque(range(len(items)))
    attempts = [0] * len(items)
    # A call's ref → (the item it runs, or None for a readiness probe; its actor).
    running: dict[Any, tuple[int | None, Any]] = {}
    retried = 0
    try:
        while pending or any(i is not None for i, _ in running.values()):
            while pending and idle:
                index, actor = pending.popleft(), idle.popleft()
                attempts[index] += 1
                running[actor.run.remote(items[index])] = (index, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                item, actor = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except lost as exc:
                    # Ray restarts the actor; it gets work again once a probe answers.
                    running[actor.ready.remote()] = (None, actor)
                    if item is None:
                        continue
                    if attempts[item] < MAX_ATTEMPTS:
                        retried += 1
                        pending.appendleft(item)
                        continue
                    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    on_done(
                        item,
                        (
                            "error",
                            MooringError,
                            f"the Ray worker running {label(items[item])} died "
                            f"{attempts[item]} times ({why[:200]}); check the cluster's "
                            "memory and logs",
                        ),
                    )
                    continue
                idle.append(actor)
                if item is not None:
                    on_done(item, outcome)
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    return retried
