"""Training workers on Ray: one actor per worker, supervised as local processes are.

``[training] engine = "ray"``: each worker is a Ray actor holding one CPU, placed by
Ray anywhere on the cluster of ``[project] ray_address``. The actor reports its node's
address and a free port, gets its ``TF_CONFIG`` from the whole list, and runs the same
worker program as a local process (:mod:`mooring.training._worker`), its output in the
job's ``worker-<i>.log``. :func:`mooring.training._distributed.supervise` watches the
actors like processes: an actor that dies (a killed process, a lost node) makes it
stop the others and start new actors from the chief's last checkpoint. The job folder
(``--output``) must be on storage every node sees; on one machine it always is.

Examples:
    >>> from mooring.config import MooringConfig
    >>> cfg = MooringConfig.from_mapping({"project": {"name": "m"}, "data": {"train": "t.csv"}})
    >>> training_launcher(cfg) is None  # one worker: train_model trains in-process
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mooring.errors import UsageError
from mooring.scale._engine import connect_ray
from mooring.training._distributed import Launcher, WorkerHandle, supervise
from mooring.training._job import Job, cluster_spec

if TYPE_CHECKING:
    from mooring.config import MooringConfig

__all__ = ["launch_ray", "training_launcher"]


def training_launcher(cfg: MooringConfig) -> Launcher | None:
    """The launcher ``[training]`` asks for; None where ``train_model``'s default (local
    processes, or one process) applies."""
    training = cfg.training
    if training.workers <= 1 or training.engine == "local":
        return None
    address = cfg.project.ray_address

    def launch(job: Job, callbacks: Sequence[Any]) -> dict[str, Any]:
        return launch_ray(job, callbacks, address=address)

    return launch


def _actor_class(ray: Any) -> Any:
    class TrainingWorker:
        """One worker's process: where it listens, then the worker program."""

        def address(self) -> str:
            from mooring.training._job import free_ports

            host = ray.util.get_node_ip_address()
            return f"{host}:{free_ports(1, host=host)[0]}"

        def pid(self) -> int:
            return os.getpid()

        def run(self, folder: str, index: int, tf_config: dict[str, Any], log: str) -> int:
            os.environ["TF_CONFIG"] = json.dumps(tf_config)
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            from pathlib import Path

            from mooring.training._worker import main

            return main([str(Path(folder)), str(index)])

    # max_restarts=0: a dead worker is the supervisor's to handle (restart all from the
    # checkpoint); an actor restarted by Ray would rejoin a cluster that is gone.
    return ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(TrainingWorker)


class _Actor:
    """A worker actor and its ``run`` call, as a :class:`WorkerHandle`."""

    def __init__(self, ray: Any, actor: Any, ref: Any) -> None:
        self.ray, self.actor, self.ref = ray, actor, ref
        self.code: int | None = None

    def poll(self) -> int | None:
        if self.code is not None:
            return self.code
        done, _ = self.ray.wait([self.ref], timeout=0)
        if not done:
            return None
        try:
            self.code = int(self.ray.get(self.ref))
        except self.ray.exceptions.RayError:
            self.code = -9  # the actor's process died
        return self.code

    def stop(self) -> None:
        self.ray.kill(self.actor, no_restart=True)


def launch_ray(job: Job, callbacks: Sequence[Any], *, address: str | None) -> dict[str, Any]:
    """Run the job's workers as Ray actors (see the module docstring).

    Raises:
        UsageError: the cluster cannot place ``workers`` actors of one CPU in
            ``[training] start_timeout``.
    """
    ray = connect_ray(address)
    remote = _actor_class(ray)
    timeout = job.cfg.training.start_timeout

    def start(job: Job, attempt: int) -> list[WorkerHandle]:
        actors = [remote.remote() for _ in range(job.workers)]
        try:
            addresses = ray.get([a.address.remote() for a in actors], timeout=timeout)
            pids = ray.get([a.pid.remote() for a in actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            cpus = ray.cluster_resources().get("CPU", 0)
            raise UsageError(
                f"the Ray cluster did not place {job.workers} training workers (1 CPU each; "
                f"the cluster has {cpus:g}) within {timeout:g} s ([training] start_timeout); "
                "use fewer workers or add nodes"
            ) from None
        (job.folder / "workers.json").write_text(
            json.dumps({"attempt": attempt + 1, "pids": pids, "addresses": addresses}), "utf-8"
        )
        return [
            _Actor(
                ray,
                actor,
                actor.run.remote(
                    str(job.folder), i, cluster_spec(addresses, i), str(job.log_file(i))
                ),
            )
            for i, actor in enumerate(actors)
        ]

    return supervise(job, start, callbacks=callbacks)
