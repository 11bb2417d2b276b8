"""Whitespace trimming and ``na_values`` on text columns, as they are read.

Dictionary-encoded text (Parquet's, and CSV columns whose type the contract fixes) is
cleaned on its distinct values and the row indices remapped, which touches each distinct
value once per batch instead of every row; the values row by row are the same as
cleaning the decoded strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from mooring.contract._io import ReadOptions

__all__ = ["DictionaryCache", "clean_strings", "is_text", "is_text_dictionary"]


# Per column position: the last dictionary cleaned, its remap (None: already clean) and
# the cleaned dictionary.
DictionaryCache = dict[int, tuple[pa.Array, pa.Array | None, pa.Array]]


def clean_strings(
    batch: pa.RecordBatch,
    options: ReadOptions,
    *,
    na_applied: bool = False,
    cache: DictionaryCache | None = None,
) -> pa.RecordBatch:
    """Trim whitespace in string columns and apply na_values after trimming.

    ``na_applied``: the reader already turned untrimmed na_values into nulls (CSV does).
    Dictionary-encoded text is cleaned on its (few) distinct values, not row by row;
    with a ``cache``, a dictionary equal to the column's previous one (the batches of
    one Parquet row group share it; CSV blocks often do) is not cleaned again.
    """
    if not options.trim_whitespace:
        return batch
    na = pa.array([v for v in options.na_values], type=pa.string())
    columns = []
    changed = False
    for position, column in enumerate(batch.columns):
        if is_text(column.type):
            trimmed = pc.utf8_trim_whitespace(column)
            if na_applied and _total_bytes(trimmed) == _total_bytes(column):
                # Nothing was trimmed, so the reader's nulls are already the final ones.
                columns.append(column)
                continue
            is_na = pc.is_in(trimmed, value_set=na)
            column = pc.if_else(is_na, pa.scalar(None, type=column.type), trimmed)
            changed = True
        elif is_text_dictionary(column.type):
            cleaned = _clean_dictionary(column, na, cache, position)
            changed = changed or cleaned is not column
            column = cleaned
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def is_text(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def is_text_dictionary(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_dictionary(arrow_type) and is_text(arrow_type.value_type))


def _clean_dictionary(
    column: pa.DictionaryArray,
    na: pa.Array,
    cache: DictionaryCache | None = None,
    position: int = 0,
) -> pa.Array:
    """Trim and apply na_values to a dictionary's values, then remap the row indices.

    The result has the same values row by row as cleaning the decoded strings, with a
    dictionary of distinct values (trimming can make two entries equal) and null indices
    where a value became missing.
    """
    dictionary = column.dictionary
    known = cache.get(position) if cache is not None else None
    if known is not None and known[0].equals(dictionary):
        remap, distinct = known[1], known[2]
    else:
        remap, distinct = _dictionary_remap(dictionary, na)
        if cache is not None:
            cache[position] = (dictionary, remap, distinct)
    if remap is None:
        return column
    return pa.DictionaryArray.from_arrays(pc.take(remap, column.indices), distinct)


def _dictionary_remap(dictionary: pa.Array, na: pa.Array) -> tuple[pa.Array | None, pa.Array]:
    """The cleaned distinct values, and each old entry's position among them (null where
    it became missing); no positions when nothing was trimmed, merged or turned missing."""
    trimmed = pc.utf8_trim_whitespace(dictionary)
    keep = pc.and_(pc.is_valid(trimmed), pc.invert(pc.is_in(trimmed, value_set=na)))
    distinct = pc.unique(trimmed.filter(keep))
    if len(distinct) == len(dictionary) and _total_bytes(trimmed) == _total_bytes(dictionary):
        return None, dictionary
    return pc.index_in(trimmed, value_set=distinct), distinct


def _total_bytes(strings: pa.Array) -> int:
    """Bytes of all values together (trimming only removes bytes, so equal totals: no change)."""
    return int(pc.sum(pc.binary_length(strings)).as_py() or 0)
