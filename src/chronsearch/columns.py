"""Per-event values (year, month, language, file, line) for filters, facets and sorting.

Whoosh keeps them in *columns*: one fixed-width slot per document. Reading a
slot at a time costs a few microseconds in Python, which is 0.3 s for a facet
over 100,000 matches; so each column is read whole, once per searcher, as one
block of bytes, into a NumPy array of codes and a table of the values they
stand for. A filter is then a comparison of arrays, and a facet a count of codes.

    >>> columns = Columns(searcher.reader())
    >>> columns.tally([0, 1, 2], ("year", "lang"))
    {'year': {'2014': 3}, 'lang': {'en': 3}}
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN
from whoosh.columns import NumericColumn, RefBytesColumn
from whoosh.util.numeric import byte_to_length

__all__ = ["Columns", "NAMES", "field_lengths"]

NAMES = ("year", "month", "lang", "source", "line")
# How many filters (a boolean per document, 100 kB per 100,000) a reader keeps,
# the last made.
HAVING_CACHED = 8


class _Column(NamedTuple):
    codes: np.ndarray  # per document, an index into values
    values: list[Any]  # sorted


class Columns:
    """The columns of one reader (one commit of the index), read on first use."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._columns: dict[str, _Column] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._having: dict[tuple[tuple[str, Any], ...], np.ndarray] = {}

    def having(self, where: Mapping[str, Any]) -> np.ndarray:
        """Whether each document's columns hold the values in ``where`` (a month: 1-12)."""
        key = tuple(sorted(where.items()))
        if key not in self._having:
            selected = np.ones(self._reader.doc_count_all(), bool)
            for name, value in where.items():
                if name == "month":
                    selected &= self._months() == value
                else:
                    column = self._column(name)
                    code = _code_of(column.values, value)
                    if code is None:  # no document holds the value
                        selected[:] = False
                    else:
                        selected &= column.codes == code
            if len(self._having) >= HAVING_CACHED:
                del self._having[next(iter(self._having))]
            self._having[key] = selected
        return self._having[key]

    def earliest(self, docnums: Iterable[int] | np.ndarray, n: int) -> list[int]:
        """The first ``n`` of ``docnums`` in the chronicle's order: by year, month
        (events without one first), file and line."""
        if "rank" not in self._arrays:
            # Ranking every document once makes each query's share a partition
            # of integers, instead of a sort by Python tuples.
            # np.lexsort sorts by its last key first.
            year, source, line = (self._column(name).codes for name in ("year", "source", "line"))
            order = np.lexsort([line, source, self._months(), year])
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            self._arrays["order"], self._arrays["rank"] = order, rank
        ranks = self._arrays["rank"][_ids(docnums)]
        if n <= 0:
            return []
        if len(ranks) > n:
            ranks = np.partition(ranks, n - 1)[:n]
        return self._arrays["order"][np.sort(ranks)].tolist()

    def tally(self, docnums: Iterable[int] | np.ndarray, names: Iterable[str]) -> dict[str, dict[str, int]]:
        """For each column in ``names``, how many of ``docnums`` hold each value.

        Months are counted as ``YYYY-MM``; documents without a month count in
        no month.
        """
        ids = _ids(docnums)
        tallies: dict[str, dict[str, int]] = {}
        for name in names:
            if name == "month":
                years = self._column("year")
                months = self._months()[ids]
                dated = months != 0
                # A year's code orders like the year, so (code, month) orders like (year, month).
                keys, counts = np.unique(years.codes[ids[dated]] * 13 + months[dated], return_counts=True)
                tallies[name] = {
                    f"{years.values[key // 13]}-{key % 13:02d}": count
                    for key, count in zip(keys.tolist(), counts.tolist())
                }
            else:
                column = self._column(name)
                counts = np.bincount(column.codes[ids], minlength=len(column.values))
                tallies[name] = {str(column.values[code]): count for code, count in enumerate(counts.tolist()) if count}
        return tallies

    def _column(self, name: str) -> _Column:
        if name not in self._columns:
            self._columns[name] = _read_column(self._reader, name)
        return self._columns[name]

    def _months(self) -> np.ndarray:
        if "month" not in self._arrays:
            column = self._column("month")
            values = np.array([m if isinstance(m, int) and 1 <= m <= 12 else 0 for m in column.values], np.int64)
            self._arrays["month"] = values[column.codes]
        return self._arrays["month"]


def _ids(docnums: Iterable[int] | np.ndarray) -> np.ndarray:
    if isinstance(docnums, np.ndarray):
        return docnums
    return np.fromiter(docnums, np.int64)


def _code_of(values: list[Any], value: Any) -> int | None:
    """The code of ``value`` in a column's sorted values, or None when no document holds it."""
    at = bisect_left(values, value)
    return at if at < len(values) and values[at] == value else None


def _read_column(reader: Any, name: str) -> _Column:
    """All values of column ``name``, segment by segment, in document-number order."""
    field = reader.schema[name]
    parts: list[tuple[np.ndarray, list[Any]]] = []  # per segment: codes, and the value of each
    for leaf, _ in reader.leaf_readers():
        count = leaf.doc_count_all()
        if not leaf.has_column(name):
            parts.append((np.zeros(count, np.int64), [field.from_column_value(field.column_type.default_value())]))
            continue
        column = leaf.column_reader(name, translate=False)
        raw = _raw_values(column, count)
        if raw is None:  # a column kind without a bulk layout: one slot at a time
            values = [field.from_column_value(v) for v in column]
            table = sorted(set(values))
            parts.append((np.searchsorted(np.array(table, object), np.array(values, object)), table))
            continue
        codes, table = raw
        if table is None:  # numbers: the distinct ones, each translated once
            distinct, codes = np.unique(codes, return_inverse=True)
            table = distinct.tolist()
        parts.append((codes.astype(np.int64), [field.from_column_value(v) for v in table]))
    values = sorted({value for _, table in parts for value in table})
    code_of = {value: code for code, value in enumerate(values)}
    codes = [np.array([code_of[v] for v in table], np.int64)[local] for local, table in parts]
    return _Column(np.concatenate(codes) if codes else np.zeros(0, np.int64), values)


def _raw_values(column: Any, count: int) -> tuple[np.ndarray, list[bytes] | None] | None:
    """The column's slots as integers read in one block, and the table they index, if any.

    This reads the layouts of Whoosh's numeric and reference columns (Whoosh
    is pinned, so they cannot change under us).
    """
    if isinstance(column, NumericColumn.Reader):
        codes = _read_array(column._dbfile, column._basepos, column._typecode, column._count)
        return np.concatenate([codes, np.full(count - column._count, column._default, codes.dtype)]), None
    if isinstance(column, RefBytesColumn.Reader):
        return _read_array(column._dbfile, column._basepos, column._typecode, count), column._uniques
    return None


def _read_array(dbfile: Any, basepos: int, typecode: str, count: int) -> np.ndarray:
    dtype = np.dtype(typecode).newbyteorder(">")  # Whoosh writes them big-endian
    return np.frombuffer(dbfile.get(basepos, count * dtype.itemsize), dtype, count).astype(np.int64)


# Whoosh keeps a document's length in a field as one byte, a log scale.
_LENGTH_OF_BYTE = np.array([byte_to_length(b) or 1 for b in range(256)], np.float64)


def field_lengths(segment_reader: Any, field: str) -> np.ndarray | None:
    """The length of ``field`` in every document of one segment, read in one block;
    None when the segment keeps no lengths for it. Scoring asks for one length per
    matching document, which read a slot at a time is most of the cost of BM25."""
    perdoc = getattr(segment_reader, "_perdoc", None)
    column = perdoc._cached_reader(f"_{field}_len", LENGTHS_COLUMN) if perdoc is not None else None
    if not isinstance(column, NumericColumn.Reader):
        return None
    count = segment_reader.doc_count_all()
    lengths = np.ones(count)
    codes = _read_array(column._dbfile, column._basepos, column._typecode, column._count)
    lengths[: column._count] = _LENGTH_OF_BYTE[codes]
    return lengths
