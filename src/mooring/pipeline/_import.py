"""``mooring models import``: a model built elsewhere, registered as an unevaluated version.

:func:`import_version` writes the model as a mooring model folder
(:func:`mooring.training._import.import_model`: a SavedModel folder or a ``.keras``
file, one signature checked and probed) in a temporary folder and registers it with
:meth:`Registry.register <mooring.registry.Registry.register>`: no gate decision, so
the version is not blessed and deploying it needs ``force`` and a reason. Its lineage
says where it came from (path, format, sha256, signature), who imported it and why;
its model card is rendered by the dashboard's renderer. When anything fails, the
registry is as it was: no version and no stored file.

Example:
    >>> with Registry.open("sqlite:///.mooring/registry.db") as registry:  # doctest: +SKIP
    ...     mv = import_version(registry, "income", Path("exported"), reason="research model")
    >>> mv.gate is None  # doctest: +SKIP
    True
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mooring.formats._model import SIGNATURE
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import ModelVersion, Registry
from mooring.registry._names import check_model_name
from mooring.registry._provenance import default_actor
from mooring.training._import import ImportedModel, import_model

__all__ = ["import_version", "imported_record"]

_FORMATS = {"saved_model": "SavedModel folder", "keras": ".keras file", "ydf": "YDF model folder"}


def import_version(
    registry: Registry,
    name: str,
    path: str | Path,
    *,
    signature: str = SIGNATURE,
    task: str | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Register the model at ``path`` as the next version of ``name``, unevaluated.

    Raises:
        UsageError: a bad name, task or input shape.
        NotFoundError: nothing at ``path``.
        ModelLoadError: not a model, no such signature, or one mooring cannot serve.
    """
    from mooring.dashboard._card import render_model_card

    check_model_name(name)
    who = actor or default_actor()
    with tempfile.TemporaryDirectory(prefix="mooring-import-") as work:
        imported = import_model(
            path, Path(work) / "model", signature=signature, task=task, input_shapes=input_shapes
        )
        return registry.register(
            name,
            imported.folder,
            imported_record(imported, actor=who, reason=reason),
            reason=reason or f"imported from {imported.source.path}",
            render_card=render_model_card,
            created_by=who,
        )


def imported_record(imported: ImportedModel, *, actor: str, reason: str | None) -> VersionRecord:
    """The registration of an imported folder: lineage, run record, the card's texts."""
    source = imported.source
    metadata = imported.metadata
    signature = metadata["source"]["signature"]
    task = metadata.get("task")
    inputs = sorted(metadata["signature"]["inputs"])
    lineage = {
        "origin": "imported",
        "source_path": str(source.path),
        "source_format": source.format,
        "source_sha256": source.sha256,
        "signature": signature,
        "actor": actor,
        "reason": reason,
        "task": task,
    }
    shown = ", ".join(inputs[:12]) + (f" and {len(inputs) - 12} more" if len(inputs) > 12 else "")
    return VersionRecord(
        lineage=lineage,
        params={"kind": "imported"},
        run=RunRecord(kind="imported", task=task, extra={"signature": metadata["signature"]}),
        description=(
            f"Imported by {actor} from the {_FORMATS[source.format]} '{source.path}' "
            f"(sha256 {source.sha256}), signature '{signature}'. mooring did not train or "
            "evaluate it: no gate has judged it, so deploying it needs --force and a reason."
        ),
        intended_use=(
            f"Scores requests with the inputs of its signature ({shown or 'none'}). What it "
            "was built for, and on which data, is not recorded here: ask the team that built it."
        ),
        limitations=(
            "Trained outside mooring: its training data, features and evaluation are unknown here.",
            "Unevaluated: measure it on data you trust before it takes traffic.",
            "No training statistics are stored with it, so drift has no training baseline.",
        ),
    )
