"""``mooring explain REQUEST_ID``: why a served prediction came out as it did.

The prediction log keeps each logged request's inputs beside its answer; this reads the
request's rows back, loads the version that answered it from the registry and explains
them as ``POST /v1/models/NAME:explain`` would have: each input column's attribution,
the baseline and the explained value they sum to.

What a call costs, and why it stays near the floor of one TensorFlow import: the request
is found through the log's index of request ids (the files that may hold it, not every
file, :func:`~mooring.formats._predictions.request_rows`); the registry is opened without
the pipeline; pyarrow is kept from importing pandas; and only the version's ``explain``
SavedModel is loaded (:func:`~mooring.explain.load_explainer`), not the one it serves.
A running server of the project (``--server``, else the replicas of ``[rollout]
metrics_urls``) that serves the version explains the logged rows with the explainer it
already holds (``/v1/models/NAME/versions/N:explain``): no TensorFlow and no model load
here; when none can, the version is loaded here as without one. A request the log does
not hold yet is looked for again once those servers wrote their log
(:func:`~mooring.cli._log_flush.ask_to_flush`): it may be in their memory still.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console, err_console, print_json
from mooring.config import load_config

if TYPE_CHECKING:
    import pyarrow as pa

    from mooring.explain import Explanation


@app.command(
    "explain",
    epilog="Examples: mooring explain 0c5e7f3a9b2d4e61 | mooring explain ID --json --top 5",
)
def explain_command(
    request_id: Annotated[
        str,
        typer.Argument(help="The request's id: the X-Request-Id the server answered with."),
    ],
    config: Annotated[Path, typer.Option("--config", "-c", help="Project file.")] = Path(
        "mooring.toml"
    ),
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name (default: \\[project] name).")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="Columns shown per row, largest first.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    servers: Annotated[
        list[str] | None,
        typer.Option(
            "--server",
            help="A server (http://127.0.0.1:8501) asked to explain the logged rows with the "
            "explainer it holds, and to write its log first when the request is not in it "
            "yet (repeatable; default: the replicas of \\[rollout] metrics_urls); when none "
            "can, the version is loaded here.",
        ),
    ] = None,
) -> None:
    """Explain a served prediction from the inputs the prediction log kept: each input
    column's attribution, by the version that answered it, summing to the explained value
    minus the baseline's."""
    from mooring.cli._log_flush import ask_to_flush, flush_url
    from mooring.errors import NotFoundError
    from mooring.formats._predictions import MODEL_VERSION, feature_table, request_rows
    from mooring.serving._log import arrow_without_pandas

    arrow_without_pandas()  # pyarrow's probe would import pandas, which nothing here uses
    cfg = load_config(config)
    name = model or cfg.project.name
    log_url = cfg.serving.log_url or str(cfg.home / "predictions")
    bases = [s.rstrip("/") for s in servers or ()] or [
        flush_url(m).removesuffix("/admin/flush") for m in cfg.rollout.metrics_urls
    ]
    try:
        rows = request_rows(log_url, name, request_id)
    except NotFoundError:
        if not bases or not ask_to_flush(cfg, bases).answers:
            raise
        rows = request_rows(log_url, name, request_id)  # it was in a server's memory
    version = int(rows[MODEL_VERSION][0].as_py())
    inputs = feature_table(rows)
    explanation: Explanation | None = None
    failures: list[str] = []
    for base in bases:
        explanation = _asked(base, name, version, inputs, failures)
        if explanation is not None:
            break
    if explanation is None:
        if failures:
            err_console.print(
                f"no server explained it ({'; '.join(failures)}); explaining it here",
                soft_wrap=True,
            )
        from mooring.registry import Registry

        with Registry.from_config(cfg, create=False) as registry:  # read only: never made
            folder = registry.load(name, version=version)
        from mooring.explain import explain_rows  # TensorFlow: once the request is found

        explanation = explain_rows(folder, inputs.to_pydict())
    if as_json:
        print_json(
            {"request_id": request_id, "model": name, "version": version, **explanation.to_dict()}
        )
        return
    _print(explanation, inputs.to_pylist(), f"{name} v{version}, request {request_id}", top)


def _asked(
    url: str, name: str, version: int, inputs: pa.Table, failures: list[str]
) -> Explanation | None:
    """The explanation of the logged rows by the server at ``url`` (the version's own
    explainer, loaded once in the server); None, and why in ``failures``, when it gives
    none."""
    import urllib.error
    import urllib.request

    import numpy as np

    from mooring.explain import Explanation

    rows = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in inputs.to_pylist()
    ]
    target = f"{url.rstrip('/')}/v1/models/{name}/versions/{version}:explain"
    request = urllib.request.Request(
        target,
        data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            document = json.loads(answer.read())
        explained = document["explanations"]
        columns = tuple(explained[0]["attributions"]) if explained else ()
        explanation = Explanation(
            columns=columns,
            attributions=np.array(
                [[r["attributions"][c] for c in columns] for r in explained], np.float32
            ).reshape(len(explained), len(columns)),
            baseline=np.array([r["baseline"] for r in explained], np.float32),
            explained=np.array([r["explained"] for r in explained], np.float32),
            output=str(document["output"]),
            method=str(document["method"]),
            unit=str(document["unit"]),
            reference=str(document.get("reference", "")),
        )
    except urllib.error.HTTPError as exc:
        failures.append(
            f"{target} answered {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        )
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        failures.append(f"{target} gave none ({getattr(exc, 'reason', exc)})")
        return None
    return explanation


def _print(explanation: Explanation, inputs: list[dict[str, Any]], title: str, top: int) -> None:
    console.print(
        f"{title}: {explanation.output} explained by {explanation.method} ({explanation.unit})"
        + (f"; baseline: {explanation.reference}" if explanation.reference else ""),
        soft_wrap=True,
    )
    for i, row in enumerate(explanation.to_json()):
        explained, baseline = row["explained"], row["baseline"]
        console.print(
            f"row {i + 1}: {explained:.4g} = baseline {baseline:.4g} "
            f"{explained - baseline:+.4g} from its columns",
            soft_wrap=True,
        )
        table = Table("column", "value", "attribution")
        ranked = sorted(row["attributions"].items(), key=lambda item: -abs(item[1]))
        for column, value in ranked[:top]:
            table.add_row(column, _shown(inputs[i].get(column)), f"{value:+.4g}")
        if len(ranked) > top:
            rest = sum(value for _, value in ranked[top:])
            table.add_row(f"({len(ranked) - top} more)", "", f"{rest:+.4g}")
        console.print(table)


def _shown(value: Any) -> str:
    """A logged input as the table shows it: a missing one (null, NaN, "") says so."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "(missing)"
    return str(value)[:40]
