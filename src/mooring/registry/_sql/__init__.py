"""The SQL side of the registry: :class:`~mooring.registry._sql.store.SqlStore` over SQLite and
PostgreSQL.

Modules by concept:

- ``store``: the :class:`~mooring.registry._store.Store` implementation itself;
- ``engine``: opening a database URL, SQLite's settings, the Alembic migrations;
- ``tables``: the SQLAlchemy tables (the schema the migrations build);
- ``tx``: JSON columns, URL masking and the write transaction that extends the audit chain;
- ``rows``: rows read back as records;
- ``deploy``: deployment and shadow rows;
- ``audit``: the audit chain's rows, read and verified;
- ``attached``: artifacts attached to an existing version.

The public names are exported by :mod:`mooring.registry`; this package imports nothing so
that its modules can be imported one at a time without a cycle.
"""
