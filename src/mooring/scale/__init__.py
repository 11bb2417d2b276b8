"""Scale-out: statistics, validation, drift and batch scoring over sharded data.

mooring's statistics are mergeable sketches, so each shard of a source (a folder, a
glob or a list of CSV/Parquet files on any fsspec URL) is summarised wherever an
:class:`Engine` runs it (this process, a local process pool, or a Ray cluster) and
the partial results are merged in shard order. The per-shard code is the
single-file code; only where it runs changes.

Examples:
    >>> from mooring.scale import Engine, sharded_statistics
    >>> ray = Engine("ray", address="auto")
    >>> stats = sharded_statistics("shards/", engine=ray)  # doctest: +SKIP

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

__all__: list[str] = []
