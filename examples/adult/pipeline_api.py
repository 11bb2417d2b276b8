"""The whole lifecycle from Python: ``python examples/adult/pipeline_api.py [mooring.toml]``.

docs/getting-started/python.md shows this file; the test suite runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mooring import Project
from mooring.pipeline import project_status

CONFIG = Path(__file__).with_name("mooring.toml")


def main(config: str | Path = CONFIG) -> int:
    project = Project.load(config)
    result = project.run()  # validate → train → evaluate → gate → register → replay → deploy
    for step in result.steps:
        print(f"{step.name:<9} {step.status:<8} {step.duration_s:6.1f}s  {step.message}")
    if not result.ok:
        print(f"rejected: {result.reason}")  # the data contract, a gate or the replay test
        return 1
    print(f"version {result.version} is {result.deployed_as}; run record {result.record_path}")
    cost = result.record["cost"]
    print(f"{cost['cpu_seconds']:.1f} CPU-s; cost {cost['run_cost']} at {cost['cpu_hour_price']}")
    status = project_status(project.config)
    print(f"serving: production {status.production}, canary {status.canary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
