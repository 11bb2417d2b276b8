"""Scale-out: statistics, validation, drift and batch scoring over sharded data.

mooring's statistics are mergeable sketches, so each shard of a source (a folder, a
glob or a list of CSV/Parquet files on any fsspec URL) is summarised wherever an
:class:`Engine` runs it (this process, a local process pool, or a Ray cluster) and
the partial results are merged in shard order. The per-shard code is the
single-file code; only where it runs changes.

Examples:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> import pyarrow.parquet as pq
    >>> from mooring.scale._engine import Engine
    >>> from mooring.scale._statistics import sharded_statistics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for i in range(3):
    ...     pq.write_table(pa.table({"age": [20 + i, 40 + i]}), f"{tmp.name}/part-{i}.parquet")
    >>> stats = sharded_statistics(tmp.name, engine=Engine("local", workers=1))
    >>> stats.num_rows, stats["age"].numeric.min, stats["age"].numeric.max
    (6, 20.0, 42.0)
    >>> tmp.cleanup()
    >>> ray = Engine("ray", address="auto")
    >>> stats = sharded_statistics("s3://bucket/shards/", engine=ray)  # doctest: +SKIP

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
"""

__all__: list[str] = []
