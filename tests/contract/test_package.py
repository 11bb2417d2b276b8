"""The server starts without the contract's statistics and readers."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_servers_start_imports_neither_statistics_nor_readers() -> None:
    """What ``mooring serve`` imports before its model loads (TensorFlow included) leaves
    out the statistics, the file readers and what they import: they are not served."""
    script = (
        "import json, sys\n"
        "from mooring.serving._process import preload_for_workers\n"
        "preload_for_workers()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m in NAMES)))\n"
    ).replace(
        "NAMES",
        repr(
            {
                "pyarrow.compute",
                "datasketches",
                "mooring.contract._io",
                "mooring.contract._statistics",
                "mooring.contract._sketch",
            }
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == []
