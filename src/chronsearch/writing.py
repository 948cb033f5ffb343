"""Writing a segment: each term's postings gathered in arrays, then written whole.

Whoosh's writer puts every posting in a pool as a tuple of about 200 bytes,
sorts the pool, pickles it to runs on disk whenever it outgrows its limit,
merges the runs posting by posting, and then reads each posting's field length
back from disk to write it. Most of an English build went there. Here the
text fields' postings are appended a document at a time to flat arrays (term
numbers, frequencies, positions), and cut into terms with two stable NumPy
sorts when written; document numbers only grow, so each term's postings come
out in order. Each term's postings are then written whole
(:meth:`chronsearch.postings._FieldWriter.add_term`). Past :data:`MEMORY_LIMIT`,
the terms gathered so far go to a sorted run on disk, and the runs are merged
term by term at the end.

Metadata fields, and the segments Whoosh merges (it hands the pool each of
their postings, in document order), go to each term's own arrays instead.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import marshal
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from whoosh.util import random_name
from whoosh.writing import SegmentWriter as WhooshSegmentWriter

from chronsearch.postings import ArrayPositions, make_codec

__all__ = ["MEMORY_LIMIT", "SegmentWriter"]

# What the pool holds before it spills a run: less than Whoosh's own default
# (128 MB of its estimates), because cutting a field's postings into terms
# (_Positions.terms) takes up to half as much again for a moment. On ja-text's
# first 100,000 events, 128 MB peaked at 328-349 MB, 96 MB at 263-286 MB and
# 64 MB at 210 MB, in 84, 84-88 and 91 s.
MEMORY_LIMIT = 96 * 1024 * 1024
# What a new term costs in memory (its object, four arrays, a dictionary slot),
# and a posting beyond its value: measured with tracemalloc, rounded up.
_TERM_BYTES = 450
_POSTING_BYTES = 12
# The same for postings of positions added a document at a time (_Positions):
# a term new to a field (its string, id and dictionary slot), and a posting
# beyond its positions (4 bytes each). On 20,000 ja-text events they estimate
# 68.5 MB for the 58.6 MB tracemalloc counts.
_NEW_TERM_BYTES = 120
_POSITIONS_POSTING_BYTES = 8
# A posting of a field whose values are each their own term (_Unique), beyond
# its term and value: the term's bytes object and two list slots.
_UNIQUE_POSTING_BYTES = 60

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


class _Positions:
    """One field's postings of positions, gathered a document at a time in flat
    arrays and cut into terms only when written: appending a document's terms
    in bulk costs less than appending to each term's own arrays."""

    __slots__ = ("boost", "term_ids", "docs", "counts", "tids", "freqs", "positions")

    def __init__(self, boost: float) -> None:
        self.boost = boost
        self.term_ids: dict[str, int] = {}  # in order of first sight: a term's id is its place
        self.docs = array("I")  # each document, and how many terms it added
        self.counts = array("I")
        self.tids = array("I")  # each posting's term, frequency and positions
        self.freqs = array("I")
        self.positions = array("I")

    def add(self, docnum: int, found: dict[str, list[int]]) -> tuple[int, int]:
        """Add a document's terms and positions; returns (terms new to the field, positions)."""
        ids = self.term_ids
        known = len(ids)
        self.tids.extend([ids.setdefault(term, len(ids)) for term in found])
        freqs = list(map(len, found.values()))
        self.freqs.extend(freqs)
        before = len(self.positions)
        self.positions.extend(itertools.chain.from_iterable(found.values()))
        self.docs.append(docnum)
        self.counts.append(len(freqs))
        return len(ids) - known, len(self.positions) - before

    def terms(self, fieldname: str) -> Iterator[TermPostings]:
        """Every term's postings, in term order; each term's in document order.
        The field's arrays are let go of as soon as the terms are cut from them."""
        count = len(self.term_ids)
        tids = np.frombuffer(self.tids, np.uint32)
        freqs = np.frombuffer(self.freqs, np.uint32)
        # Stable sorts by term keep each term's postings, and their positions, in
        # the order they came: document order. Temporary arrays go as soon as
        # they are used: this is the peak of an index's memory.
        position_tids = np.repeat(tids, freqs)
        position_bounds = _bounds(np.bincount(position_tids, minlength=count))
        order = np.argsort(position_tids, kind="stable")
        del position_tids
        values = np.frombuffer(self.positions, np.uint32)[order].astype("<u4", copy=False)
        del order
        self.positions = None
        posting_bounds = _bounds(np.bincount(tids, minlength=count))
        order = np.argsort(tids, kind="stable")
        ordered_freqs = freqs[order]
        ids = np.repeat(np.frombuffer(self.docs, np.uint32), np.frombuffer(self.counts, np.uint32))[order]
        del order, tids, freqs
        self.tids = self.freqs = self.docs = self.counts = None
        names = list(self.term_ids)
        self.term_ids = {}
        # str order is code point order, the order of UTF-8 bytes.
        for tid in sorted(range(count), key=names.__getitem__):
            start, end = int(posting_bounds[tid]), int(posting_bounds[tid + 1])
            freq = ordered_freqs[start:end]
            yield (
                fieldname,
                names[tid].encode("utf-8"),
                array("I", ids[start:end].tobytes()),
                array("f", (freq * self.boost).astype(np.float32).tobytes()),
                array("I", (freq * values.itemsize).astype(np.uint32).tobytes()),
                values[int(position_bounds[tid]) : int(position_bounds[tid + 1])].tobytes(),
            )


def _bounds(counts: np.ndarray) -> np.ndarray:
    """Where each of consecutive groups of ``counts`` items starts, and the end of the last."""
    return np.concatenate(([0], np.cumsum(counts)))


class _Unique:
    """One field's postings when each value is its own term (an event's id): a
    posting each, in flat lists, instead of a term's four arrays each."""

    __slots__ = ("btexts", "docs", "weights", "values")

    def __init__(self) -> None:
        self.btexts: list[bytes] = []
        self.docs = array("I")
        self.weights = array("f")
        self.values: list[bytes] = []

    def add(self, docnum: int, items: Iterable[tuple[bytes, int, float, bytes]]) -> tuple[int, int]:
        """Add a document's postings; returns (their estimated memory, the field's length)."""
        size = length = 0
        for btext, freq, weight, value in items:
            self.btexts.append(btext)
            self.docs.append(docnum)
            self.weights.append(weight)
            self.values.append(value)
            size += _UNIQUE_POSTING_BYTES + len(btext) + len(value)
            length += freq
        return size, length

    def terms(self, fieldname: str) -> Iterator[TermPostings]:
        """Every term's postings, in term order; each term's in document order."""
        btexts, docs, weights, values = self.btexts, self.docs, self.weights, self.values
        order = sorted(range(len(btexts)), key=btexts.__getitem__)  # stable: document order
        for btext, group in itertools.groupby(order, key=btexts.__getitem__):
            at = list(group)
            yield (
                fieldname,
                btext,
                array("I", [docs[i] for i in at]),
                array("f", [weights[i] for i in at]),
                array("I", [len(values[i]) for i in at]),
                b"".join(values[i] for i in at),
            )


class TermPool:
    """Postings gathered per term, in memory up to ``limit`` bytes, beyond it in
    sorted runs in ``tempstorage``."""

    def __init__(self, tempstorage: Any, limit: int = MEMORY_LIMIT) -> None:
        self._tempstorage = tempstorage
        self._limit = limit
        self._fields: dict[str, dict[bytes, _Postings]] = {}
        self._positions: dict[str, _Positions] = {}
        self._unique: dict[str, _Unique] = {}
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

    def add_positions(self, fieldname: str, docnum: int, found: dict[str, list[int]], boost: float) -> int:
        """:meth:`add_field` for a field of :class:`ArrayPositions`, given each term's
        positions (its weight is their number times ``boost``); returns the field's length."""
        field = self._positions.get(fieldname)
        if field is None:
            field = self._positions[fieldname] = _Positions(boost)
        new_terms, length = field.add(docnum, found)
        self._size += new_terms * _NEW_TERM_BYTES + len(found) * _POSITIONS_POSTING_BYTES + 4 * length
        if self._size > self._limit:
            self._spill()
        return length

    def add_unique(self, fieldname: str, docnum: int, items: Iterable[tuple[bytes, int, float, bytes]]) -> int:
        """:meth:`add_field` for a field whose values are each their own term."""
        field = self._unique.get(fieldname)
        if field is None:
            field = self._unique[fieldname] = _Unique()
        size, length = field.add(docnum, items)
        self._size += size
        if self._size > self._limit:
            self._spill()
        return length

    def terms(self) -> Iterator[TermPostings]:
        """Every term's postings, in field and term order, runs and memory joined."""
        yield from _joined([self._read_run(name) for name in self._runs] + self._in_memory())

    def cleanup(self) -> None:
        for name in self._runs:
            try:
                self._tempstorage.delete_file(name)
            except OSError:
                pass
        self._runs.clear()

    def _in_memory(self) -> list[Iterator[TermPostings]]:
        """What memory holds, as sources for :func:`_joined`, and lets go of it.

        Documents added whole come before those Whoosh adds a posting at a time
        (the segments it merges, when it commits)."""
        fields, self._fields = self._fields, {}
        whole: dict[str, _Positions | _Unique] = {**self._positions, **self._unique}
        self._positions, self._unique, self._size = {}, {}, 0
        by_document = (item for name in sorted(whole) for item in whole.pop(name).terms(name))
        return [by_document, self._by_posting(fields)]

    @staticmethod
    def _by_posting(fields: dict[str, dict[bytes, _Postings]]) -> Iterator[TermPostings]:
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
            for fieldname, btext, ids, weights, sizes, values in _joined(self._in_memory()):
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


def _joined(sources: list[Iterator[TermPostings]]) -> Iterator[TermPostings]:
    """The terms of ``sources`` (each in field and term order, and each holding
    earlier documents than the next) in one stream, a term's parts joined."""
    # The merge is stable, so a term's parts come in document order.
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


def _indexed(field: Any, value: Any) -> Iterable[tuple[bytes, int, float, bytes]] | dict[str, list[int]]:
    """What ``field.index(value)`` gives, or for a field of :class:`ArrayPositions`
    with an analyzer built here, each term's positions."""
    if isinstance(field.format, ArrayPositions) and isinstance(value, str):
        found = field.format.positions(value, field.analyzer)
        if found is not None:
            return found
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
                if not field.indexed:
                    length = 0
                elif type(items) is dict:
                    length = pool.add_positions(name, docnum, items, field.format.field_boost)
                elif field.unique:
                    length = pool.add_unique(name, docnum, items)
                else:
                    length = pool.add_field(name, docnum, items)
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
