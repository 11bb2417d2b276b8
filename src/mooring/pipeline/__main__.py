"""``python -m mooring.pipeline --config mooring.toml [--train-data FILE] [--force]``.

The library's own entry point for one run of the pipeline, used by the retraining
trigger (``[monitoring.retrain] command``'s default) so that retraining never goes
through the CLI. Prints the pipeline run's record as JSON; exits 0 when the run succeeded, 1 when a
check rejected it (nothing deployed), 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from mooring.config import load_config
from mooring.errors import MooringError
from mooring.pipeline._run import run_pipeline
from mooring.pipeline._workspace import Workspace


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pipeline once; the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m mooring.pipeline", description=__doc__)
    parser.add_argument("--config", "-c", type=Path, default=Path("mooring.toml"))
    parser.add_argument("--train-data", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        workspace = Workspace(load_config(args.config))
        if args.train_data is not None:
            workspace = workspace.with_train_data(args.train_data)
        result = run_pipeline(workspace, force=args.force)
    except MooringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    if not result.ok:
        print(f"run {result.run_id} rejected: {result.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
