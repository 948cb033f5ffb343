"""Writing a segment: each term's postings gathered in arrays, then written whole.

Whoosh's writer puts every posting in a pool as a tuple of about 200 bytes,
sorts the pool, pickles it to runs on disk whenever it outgrows its limit,
merges the runs posting by posting, and then reads each posting's field length
back from disk to write it. Most of an English build went there. Here a term's
postings are appended to its arrays as documents come in; document numbers
only grow, so they are in order already. Only the terms are sorted, and each
term's postings are written whole (:meth:`chronsearch.postings._FieldWriter.add_term`).
Past :data:`MEMORY_LIMIT`, the terms gathered so far go to a sorted run on
disk, and the runs are merged term by term at the end.

Merging segments takes the same path: Whoosh hands the pool each posting of
the segments it merges, in document order.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import marshal
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

from whoosh.util import random_name
from whoosh.writing import SegmentWriter as WhooshSegmentWriter

from chronsearch.postings import ArrayPositions, make_codec

__all__ = ["MEMORY_LIMIT", "SegmentWriter"]

# About what Whoosh's own pool holds by default (128 MB of its estimates).
MEMORY_LIMIT = 128 * 1024 * 1024
# What a new term costs in memory (its object, four arrays, a dictionary slot),
# and a posting beyond its value: measured with tracemalloc, rounded up.
_TERM_BYTES = 450
_POSTING_BYTES = 12

# How many (field, value) pairs of metadata a writer remembers (see SegmentWriter._work_out).
_SEEN_LIMIT = 100_000

# A term's postings: field, term, document numbers, weights, value sizes, values.
TermPostings = tuple[str, bytes, "array[int]", "array[float]", "array[int]", bytes]


class _Postings:
    __slots__ = ("ids", "weights", "sizes", "values")

    def __init__(self) -> None:
        self.ids = array("I")
        self.weights = array("f")
        self.sizes = array("I")
        self.values = bytearray()


class TermPool:
    """Postings gathered per term, in memory up to ``limit`` bytes, beyond it in
    sorted runs in ``tempstorage``."""

    def __init__(self, tempstorage: Any, limit: int = MEMORY_LIMIT) -> None:
        self._tempstorage = tempstorage
        self._limit = limit
        self._fields: dict[str, dict[bytes, _Postings]] = {}
        self._size = 0
        self._runs: list[str] = []

    def add(self, item: tuple[str, bytes, int, float, bytes | None]) -> None:
        """Whoosh's way in, one tuple a posting (when merging segments)."""
        fieldname, btext, docnum, weight, value = item
        self.add_field(fieldname, docnum, ((btext, 0, weight, value or b""),))

    def add_field(self, fieldname: str, docnum: int, items: Iterable[tuple[bytes, int, float, bytes]]) -> int:
        """Add a document's postings in a field, as Whoosh's ``field.index`` gives
        them; returns the number of terms (with repeats), the field's length."""
        terms = self._fields.get(fieldname)
        if terms is None:
            terms = self._fields[fieldname] = {}
        length = size = 0
        for btext, freq, weight, value in items:
            postings = terms.get(btext)
            if postings is None:
                postings = terms[btext] = _Postings()
                size += _TERM_BYTES + len(btext)
            postings.ids.append(docnum)
            postings.weights.append(weight)
            postings.sizes.append(len(value))
            postings.values += value
            size += _POSTING_BYTES + len(value)
            length += freq
        self._size += size
        if self._size > self._limit:
            self._spill()
        return length

    def terms(self) -> Iterator[TermPostings]:
        """Every term's postings, in field and term order, runs and memory joined."""
        sources = [self._read_run(name) for name in self._runs] + [self._in_memory()]
        if len(sources) == 1:
            yield from sources[0]
            return
        # Runs hold earlier documents than later runs and memory; the merge is
        # stable, so a term's parts come in document order.
        merged = heapq.merge(*sources, key=_term_key)
        for (fieldname, btext), parts in itertools.groupby(merged, key=_term_key):
            first, *rest = parts
            if not rest:
                yield first
                continue
            ids, weights, sizes, values = array("I"), array("f"), array("I"), bytearray()
            for _, _, part_ids, part_weights, part_sizes, part_values in (first, *rest):
                ids += part_ids
                weights += part_weights
                sizes += part_sizes
                values += part_values
            yield fieldname, btext, ids, weights, sizes, bytes(values)

    def cleanup(self) -> None:
        for name in self._runs:
            try:
                self._tempstorage.delete_file(name)
            except OSError:
                pass
        self._runs.clear()

    def _in_memory(self) -> Iterator[TermPostings]:
        fields, self._fields, self._size = self._fields, {}, 0
        for fieldname in sorted(fields):
            terms = fields.pop(fieldname)
            for btext in sorted(terms):
                p = terms.pop(btext)  # memory goes as the terms are written
                yield fieldname, btext, p.ids, p.weights, p.sizes, bytes(p.values)

    def _spill(self) -> None:
        name = f"{random_name()}.run"
        self._runs.append(name)
        run = self._tempstorage.create_file(name)
        try:
            raw = run.raw_file()
            for fieldname, btext, ids, weights, sizes, values in self._in_memory():
                marshal.dump((fieldname, btext, ids.tobytes(), weights.tobytes(), sizes.tobytes(), values), raw)
        finally:
            run.close()

    def _read_run(self, name: str) -> Iterator[TermPostings]:
        with self._tempstorage.open_file(name).raw_file() as f:
            while True:
                try:
                    fieldname, btext, ids, weights, sizes, values = marshal.load(f)
                except EOFError:
                    return
                yield fieldname, btext, array("I", ids), array("f", weights), array("I", sizes), values


def _indexed(field: Any, value: Any) -> Iterable[tuple[bytes, int, float, bytes]]:
    """What ``field.index(value)`` gives, by the format's shortcut where it has one."""
    if isinstance(field.format, ArrayPositions) and isinstance(value, str):
        items = field.format.indexed(value, field.analyzer)
        if items is not None:
            return items
    return field.index(value)


def _column_value(field: Any, value: Any) -> Any:
    return field.to_column_value(value) if field.column_type else None


def _term_key(item: TermPostings) -> tuple[str, bytes]:
    return item[0], item[1]


class SegmentWriter(WhooshSegmentWriter):
    """Whoosh's segment writer with chronsearch's codec, gathering postings in a
    :class:`TermPool`. Opening one takes the index's Whoosh lock (LockError)."""

    def __init__(self, ix: Any, *, limit: int = MEMORY_LIMIT, **kwargs: Any) -> None:
        super().__init__(ix, codec=make_codec(), **kwargs)
        self.pool = TermPool(self._tempstorage, limit)
        # Metadata fields (year, language, file...) repeat a few values: each
        # value's terms and column value are worked out once.
        self._repeating = {
            name for name, field in self.schema.items()
            if field.indexed and not field.unique and not field.format.supports("positions")
        }
        self._seen: dict[tuple[str, Any], tuple[Any, Any]] = {}

    def add_document(self, **fields: Any) -> None:
        """Whoosh's ``add_document``, without what chronsearch's schema never has
        (boosts, spelling words, term vectors)."""
        if any(name.startswith("_") for name in fields) or self._special:
            return super().add_document(**fields)
        self._check_state()
        self._check_fields(self.schema, fields)
        docnum, perdoc, schema, pool = self.docnum, self.perdocwriter, self.schema, self.pool
        perdoc.start_doc(docnum)
        try:
            for name in sorted(fields):
                value = fields[name]
                if value is None:
                    continue
                field = schema[name]
                items, column_value = self._work_out(name, field, value)
                length = pool.add_field(name, docnum, items) if field.indexed else 0
                perdoc.add_field(name, field, value if field.stored else None, length if field.scorable else 0)
                if field.column_type:
                    perdoc.add_column_value(name, field.column_type, column_value)
        except Exception:
            perdoc.cancel_doc()
            raise
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def _work_out(self, name: str, field: Any, value: Any) -> tuple[Any, Any]:
        """What ``field`` indexes for ``value``, and its column value."""
        if name in self._repeating:
            key = (name, value)
            known = self._seen.get(key)
            if known is None:
                if len(self._seen) >= _SEEN_LIMIT:
                    self._seen.clear()
                known = self._seen[key] = (list(field.index(value)), _column_value(field, value))
            return known
        return (_indexed(field, value) if field.indexed else ()), _column_value(field, value)

    @functools.cached_property
    def _special(self) -> bool:
        """Whether a field of the schema needs what only Whoosh's add_document does."""
        return any(field.vector or field.separate_spelling() for _, field in self.schema.items())

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        schema, add_term = self.schema, self.fieldwriter.add_term
        lengths: dict[str, bytes] = {}
        for fieldname, btext, ids, weights, sizes, values in self.pool.terms():
            if fieldname not in lengths:
                lengths[fieldname] = self.perdocwriter.lengths_of(fieldname)
            add_term(fieldname, schema[fieldname], btext, ids, weights, sizes, values, lengths[fieldname])
        self.fieldwriter.close()
