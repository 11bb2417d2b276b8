"""The data contract layer: statistics, schema, validation.

Internal: this package exports no names; its modules (underscored) may change in any
release. The supported API is :mod:`mooring`'s (ARCHITECTURE.md, "The public API").
Importing it costs nothing: the server, which needs only :mod:`mooring.contract._schema`,
starts without the statistics' and readers' modules and what they import
(``pyarrow.compute``, the CSV reader, datasketches).
"""

from __future__ import annotations

__all__: list[str] = []
