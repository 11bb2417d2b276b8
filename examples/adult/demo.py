"""The mooring demo on the bundled UCI Adult data (run with `make demo`).

Checks the data contract: statistics of the training data, a schema inferred
from them, the training data validated against the schema, and the evaluation
data validated against the training data (schema and distribution skew).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console

from mooring.errors import MooringError
from mooring.project import Project

HERE = Path(__file__).resolve().parent
console = Console(highlight=False)


def main() -> int:
    started = time.perf_counter()
    project = Project.load(HERE / "mooring.toml")
    console.rule(f"[bold]mooring demo — project '{project.name}'")

    console.print("[bold]1. Data contract[/]: statistics → schema → validation")
    result = project.validate()
    stats = result.statistics
    console.print(
        f"   training data: {stats.num_rows:,} rows, {len(stats.columns)} columns; "
        f"schema written to {project.home / 'schema.yaml'}"
    )
    for validation in result.results:
        style = "green" if validation.ok else "red"
        head, *rest = validation.render_text().split("\n")
        console.print(f"   [{style}]{head}[/]")
        for line in rest[:12]:
            console.print("   " + line, markup=False)
        if len(rest) > 12:
            console.print(f"   … {len(rest) - 12} more lines in {project.home / 'reports'}")

    console.rule(f"done in {time.perf_counter() - started:.1f} s")
    console.print(f"state and reports: {project.home}")
    console.print("by hand: mooring validate --config examples/adult/mooring.toml")
    return 0 if result.ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MooringError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(exc.exit_code)
