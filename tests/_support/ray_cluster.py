"""A real two-node Ray cluster on 127.0.0.1 for the scale-out tests.

``ray start --head`` plus a second node process joining it, each with one CPU, so
that work is really spread over two raylets and two worker pools (not ``local_mode``).
Only one such cluster runs at a time: the tests that use it share one xdist group.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._support.ports import free_port
from tests._support.waiting import wait_until

RAY = Path(sys.executable).with_name("ray")
#: The xdist group of every test that talks to the cluster.
GROUP = "ray-cluster"


def _ray(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(RAY), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def ray_available() -> bool:
    return RAY.is_file() and shutil.which("ps") is not None


@contextmanager
def ray_cluster(nodes: int = 2) -> Iterator[str]:
    """Start a cluster of ``nodes`` one-CPU nodes; yield its address; stop it."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    # A token of the cluster's own: Ray turns token authentication on by itself when it
    # finds ~/.ray/auth_token, and then a node started without it cannot join.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)  # the driver (this process) joins with the same token
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        # The workers import mooring from the same tree as the tests.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        _start(port, nodes, common, env)
        _wait_for_nodes(address, nodes)
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run(
            [str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120, check=False
        )
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start(port: int, nodes: int, common: list[str], env: dict[str, str]) -> None:
    """``ray start`` the head and the other nodes; on a loaded machine, try again.

    Ray gives a new node 30 s to register, fixed; a 2-core machine busy with other
    tests can miss that, so a failed start is cleaned up and tried twice more.
    """
    memory = f"--object-store-memory={300 << 20}"
    for attempt in range(3):
        try:
            _ray(
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                memory,
                *common,
                env=env,
            )
            for _ in range(nodes - 1):
                _ray("start", f"--address=127.0.0.1:{port}", memory, *common, env=env)
            return
        except RuntimeError:
            subprocess.run(
                [str(RAY), "stop", "--force"],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
            if attempt == 2:
                raise
            time.sleep(5)


def _wait_for_nodes(address: str, nodes: int) -> None:
    import ray

    ray.init(address=address, log_to_driver=False, configure_logging=False)

    def alive() -> int:
        return sum(1 for n in ray.nodes() if n["Alive"])

    wait_until(lambda: alive() >= nodes, f"the Ray cluster at {address} to have {nodes} nodes",
               interval=0.5, seen=alive)  # fmt: skip
