"""Scale-out: statistics, validation, drift and batch scoring over sharded data.

mooring's statistics are mergeable sketches, so each shard of a source (a folder, a
glob or a list of CSV/Parquet files on any fsspec URL) is summarised wherever an
:class:`Engine` runs it (this process, a local process pool, or a Ray cluster) and
the partial results are merged in shard order. The per-shard code is the
single-file code; only where it runs changes.

Example:
    >>> from mooring.scale import Engine, sharded_statistics
    >>> ray = Engine("ray", address="auto")
    >>> stats = sharded_statistics("shards/", engine=ray)  # doctest: +SKIP
"""

from mooring.scale.engine import ENGINES, Engine, usable_cores
from mooring.scale.score import ScoreSummary, ShardOutcome, ShardScorer, score_shards
from mooring.scale.shards import list_shards, shard_name
from mooring.scale.statistics import sharded_statistics, sharded_validate

__all__ = [
    "ENGINES",
    "Engine",
    "ScoreSummary",
    "ShardOutcome",
    "ShardScorer",
    "list_shards",
    "score_shards",
    "shard_name",
    "sharded_statistics",
    "sharded_validate",
    "usable_cores",
]
