"""Per-epoch checkpoints: everything needed to resume with bit-identical results.

A checkpoint is a folder ``checkpoints/epoch-NNNN/`` holding ``weights.npz``
(every model variable — including dropout RNG states — and every optimizer
variable, in creation order) and ``state.json`` (epochs done, history so far,
early-stopping state, and the fingerprint of the run it belongs to). It is
written to a temporary folder and renamed, so a crash never leaves a
half-written checkpoint. The data order depends only on ``(seed, epoch)``, so
restoring these variables is enough to continue exactly where a run stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mooring.errors import UsageError

__all__ = ["latest_checkpoint", "restore_checkpoint", "restore_weights", "save_checkpoint"]

_PREFIX = "epoch-"


def _folder(root: Path, epoch: int) -> Path:
    return root / f"{_PREFIX}{epoch:04d}"


def save_checkpoint(
    root: Path, epoch: int, model: keras.Model, optimizer: Any, state: dict[str, Any]
) -> Path:
    """Write the checkpoint for ``epoch`` (1-based: epochs completed) atomically."""
    root.mkdir(parents=True, exist_ok=True)
    target = _folder(root, epoch)
    tmp = root / f".tmp-{epoch:04d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    arrays = {f"model_{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update(
        {f"optimizer_{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    )
    np.savez(tmp / "weights.npz", **arrays)  # type: ignore[arg-type]
    (tmp / "state.json").write_text(json.dumps({**state, "epoch": epoch}, indent=2), "utf-8")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint with the most epochs done, or None."""
    if not root.is_dir():
        return None
    found = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))
    return found[-1] if found else None


def _assign(variables: list[Any], arrays: Any, prefix: str, where: Path) -> None:
    keys = sorted(k for k in arrays.files if k.startswith(prefix))
    if len(keys) != len(variables):
        raise UsageError(
            f"checkpoint '{where}' holds {len(keys)} {prefix.rstrip('_')} variables but the model "
            f"has {len(variables)}; the model changed since it was written — train without "
            "--resume to start over"
        )
    for variable, key in zip(variables, keys, strict=True):
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise UsageError(
                f"checkpoint '{where}': variable {variable.path} has shape {tuple(variable.shape)} "
                f"but the checkpoint holds {tuple(value.shape)}; train without --resume"
            )
        variable.assign(value)


def restore_weights(folder: Path, model: keras.Model) -> None:
    """Load only the model variables of a checkpoint (e.g. the best epoch's)."""
    with np.load(folder / "weights.npz") as arrays:
        _assign(list(model.variables), arrays, "model_", folder)


def restore_checkpoint(folder: Path, model: keras.Model, optimizer: Any) -> dict[str, Any]:
    """Load model and optimizer variables; return the saved state."""
    with np.load(folder / "weights.npz") as arrays:
        _assign(list(model.variables), arrays, "model_", folder)
        _assign(list(optimizer.variables), arrays, "optimizer_", folder)
    state: dict[str, Any] = json.loads((folder / "state.json").read_text("utf-8"))
    return state
