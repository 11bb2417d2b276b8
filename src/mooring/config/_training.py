"""``[training]``: where a model trains — this process, or several data-parallel workers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mooring.config._base import Duration, Section

__all__ = ["TrainingConfig"]


class TrainingConfig(Section):
    """``[training]``: one process, or ``workers`` data-parallel workers on an engine.

    With ``workers > 1`` a network trains under TensorFlow's
    ``MultiWorkerMirroredStrategy`` (one process per worker, each reading only its own
    shard) and trees on YDF's distributed workers; the SavedModel is the same as one
    process trains.

    Examples:
        >>> TrainingConfig(workers=2).batch
        'global'
    """

    workers: int = Field(
        1, ge=1, le=1024, description="Data-parallel workers; 1 trains in this process."
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description="local: worker processes on this machine (127.0.0.1); ray: one Ray actor "
        "per worker on the cluster of [project] ray_address.",
    )
    batch: Literal["global", "per_worker"] = Field(
        "global",
        description="global: [model] batch_size is the global batch, split across the "
        "workers (same steps and learning rate as one worker); per_worker: each worker takes "
        "batch_size rows a step, and the learning rate is multiplied by the workers.",
    )
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="First port of the local workers (worker i listens on port + i); 0 picks "
        "free ports.",
    )
    start_timeout: Duration = Field(
        120.0, description="How long the workers may take to join before the job fails."
    )
    max_restarts: int = Field(
        3,
        ge=0,
        le=100,
        description="How often the job restarts every worker from the last checkpoint after "
        "one dies.",
    )
