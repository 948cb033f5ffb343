"""Per-event values (year, month, language, file, line) for facets and sorting.

Whoosh keeps them in *columns*: one fixed-width slot per document. Reading a
slot at a time costs a few microseconds in Python, which is 0.3 s for a facet
over 100,000 matches; so each column is read whole, once per searcher, as one
block of bytes, and facets become lookups in a Python list.

    >>> columns = Columns(searcher.reader())
    >>> columns.tally([0, 1, 2], ("year", "lang"))
    {'year': {'2014': 3}, 'lang': {'en': 3}}
"""

from __future__ import annotations

import heapq
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from whoosh.codec.whoosh3 import LENGTHS_COLUMN
from whoosh.columns import NumericColumn, RefBytesColumn
from whoosh.util.numeric import byte_to_length

__all__ = ["Columns", "NAMES", "field_lengths"]

NAMES = ("year", "month", "lang", "source", "line")
# How many filters' sets of documents a reader keeps, the last made: a set can
# hold every document (lang=en), some 4 MB per 100,000.
HAVING_CACHED = 8


class Columns:
    """The columns of one reader (one commit of the index), read on first use."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._values: dict[str, Sequence[Any]] = {}
        self._having: dict[tuple[tuple[str, Any], ...], frozenset[int]] = {}

    def __getitem__(self, name: str) -> Sequence[Any]:
        """Every document's value of column ``name``, by document number."""
        if name not in self._values:
            self._values[name] = _read_column(self._reader, name)
        return self._values[name]

    def months(self) -> Sequence[int]:
        """Every document's month, 0 where it has none (the column holds a value out of 1-12 then)."""
        if "month0" not in self._values:
            self._values["month0"] = [m if 1 <= m <= 12 else 0 for m in self["month"]]
        return self._values["month0"]

    def having(self, where: Mapping[str, Any]) -> frozenset[int]:
        """The documents whose columns hold the values in ``where`` (a month: 1-12)."""
        key = tuple(sorted(where.items()))
        if key not in self._having:
            selected: Iterable[int] = range(len(self["year"]))
            for name, value in where.items():
                column = self.months() if name == "month" else self[name]
                selected = [d for d in selected if column[d] == value]
            if len(self._having) >= HAVING_CACHED:
                del self._having[next(iter(self._having))]
            self._having[key] = frozenset(selected)
        return self._having[key]

    def earliest(self, docnums: Iterable[int], n: int) -> list[int]:
        """The first ``n`` of ``docnums`` in the chronicle's order: by year, month
        (events without one first), file and line."""
        if "rank" not in self._values:
            # Ranking every document once makes each query's share a C-level
            # heap over integers, instead of a sort by Python tuples.
            keys = list(zip(self["year"], self.months(), self["source"], self["line"]))
            order = sorted(range(len(keys)), key=keys.__getitem__)
            rank = [0] * len(order)
            for position, docnum in enumerate(order):
                rank[docnum] = position
            self._values["order"], self._values["rank"] = order, rank
        order, rank = self._values["order"], self._values["rank"]
        return [order[r] for r in heapq.nsmallest(n, map(rank.__getitem__, docnums))]

    def tally(self, docnums: Iterable[int], names: Iterable[str]) -> dict[str, dict[str, int]]:
        """For each column in ``names``, how many of ``docnums`` hold each value.

        Months are counted as ``YYYY-MM``; documents without a month count in
        no month.
        """
        docnums = docnums if isinstance(docnums, list) else list(docnums)
        tallies: dict[str, dict[str, int]] = {}
        for name in names:
            if name == "month":
                years, months = self["year"], self.months()
                counter = Counter(years[d] * 100 + months[d] for d in docnums if months[d])
                keys = {key: f"{key // 100}-{key % 100:02d}" for key in counter}
            else:
                counter = Counter(map(self[name].__getitem__, docnums))
                keys = {key: str(key) for key in counter}
            tallies[name] = {keys[key]: counter[key] for key in sorted(counter)}
        return tallies


def _read_column(reader: Any, name: str) -> list[Any]:
    """All values of column ``name``, segment by segment, in document-number order."""
    field = reader.schema[name]
    values: list[Any] = []
    for leaf, _ in reader.leaf_readers():
        count = leaf.doc_count_all()
        if not leaf.has_column(name):
            values += [field.from_column_value(field.column_type.default_value())] * count
            continue
        column = leaf.column_reader(name, translate=False)
        raw = _raw_values(column, count)
        if raw is None:  # a column kind without a bulk layout: one slot at a time
            values += [field.from_column_value(v) for v in column]
            continue
        codes, table = raw
        # Few distinct values (years, languages, files): translate each once.
        if table is None:
            translated = {code: field.from_column_value(code) for code in set(codes)}
            values += map(translated.__getitem__, codes)
        else:
            table = [field.from_column_value(v) for v in table]
            values += map(table.__getitem__, codes)
    return values


def _raw_values(column: Any, count: int) -> tuple[list[int], list[bytes] | None] | None:
    """The column's slots as integers read in one block, and the table they index, if any.

    This reads the layouts of Whoosh's numeric and reference columns (Whoosh
    is pinned, so they cannot change under us).
    """
    if isinstance(column, NumericColumn.Reader):
        codes = _read_array(column._dbfile, column._basepos, column._typecode, column._count)
        return codes + [column._default] * (count - column._count), None
    if isinstance(column, RefBytesColumn.Reader):
        return _read_array(column._dbfile, column._basepos, column._typecode, count), column._uniques
    return None


def _read_array(dbfile: Any, basepos: int, typecode: str, count: int) -> list[int]:
    numbers = array(typecode)
    numbers.frombytes(dbfile.get(basepos, count * numbers.itemsize))
    if sys.byteorder == "little":  # Whoosh writes them big-endian
        numbers.byteswap()
    return numbers.tolist()


# Whoosh keeps a document's length in a field as one byte, a log scale.
_LENGTH_OF_BYTE = [byte_to_length(b) or 1 for b in range(256)]


def field_lengths(segment_reader: Any, field: str) -> list[int] | None:
    """The length of ``field`` in every document of one segment, read in one block;
    None when the segment keeps no lengths for it. Scoring asks for one length per
    matching document, which read a slot at a time is most of the cost of BM25."""
    perdoc = getattr(segment_reader, "_perdoc", None)
    column = perdoc._cached_reader(f"_{field}_len", LENGTHS_COLUMN) if perdoc is not None else None
    if not isinstance(column, NumericColumn.Reader):
        return None
    count = segment_reader.doc_count_all()
    codes = _read_array(column._dbfile, column._basepos, column._typecode, column._count)
    return list(map(_LENGTH_OF_BYTE.__getitem__, codes)) + [1] * (count - len(codes))
