"""How postings are laid out on disk: as arrays, so a whole list reads in bulk.

Whoosh writes each block of a term's postings as one pickle of Python tuples,
and a word's positions in an event as a pickled list of gaps. Unpickling costs
about a microsecond a posting, and a search over 100,000 events reads
millions. Here a block is plain little-endian arrays instead:

    header   count (uint32), last id (uint32), top weight (float32),
             shortest and longest field length (a byte each, Whoosh's log scale)
    data     ids (uint32 × count), weights (float32 × count),
             value sizes in bytes (uint32 × count) and the values, back to back

A word's positions in an event (its *value*) are a uint32 array
(:class:`ArrayPositions`), so the values of a block are one array of positions.

Whoosh's own matchers still read these blocks (:class:`_LeafMatcher`), for the
queries :mod:`chronsearch.matching` leaves to them and for merging segments.
:func:`read` gives :mod:`chronsearch.matching` a term's postings as NumPy arrays.
:class:`Codec` is how the index writes and reads its segments; a term's postings
are written whole (:meth:`_FieldWriter.add_term`, fed by :mod:`chronsearch.writing`).
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from whoosh.codec.whoosh3 import (
    WHOOSH3_HEADER_MAGIC,
    W3Codec,
    W3FieldWriter,
    W3LeafMatcher,
    W3PerDocReader,
    W3PerDocWriter,
    W3TermInfo,
    _lenfield,
)
from whoosh.columns import NumericColumn
from whoosh.formats import Positions
from whoosh.system import _INT_SIZE, pack_int, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

from chronsearch.analysis import indexed_terms

__all__ = ["ArrayPositions", "Codec", "Postings", "make_codec", "read"]

_HEADER = struct.Struct("<IIfBB")
_IDS = struct.Struct("<II")  # the start of the header: count and last document
_POSITION = struct.Struct("<I")  # one position, as _to_bytes writes an array of them
# How many postings a block holds: matching reads whole lists, so a block's
# fixed cost (a header and a few array views) is better spread over many.
BLOCK_LIMIT = 512
_LITTLE = sys.byteorder == "little"


def _to_bytes(numbers: array[Any]) -> bytes:
    if not _LITTLE:
        numbers = array(numbers.typecode, numbers)
        numbers.byteswap()
    return numbers.tobytes()


def _from_bytes(typecode: str, data: bytes) -> array[Any]:
    numbers = array(typecode, data)
    if not _LITTLE:
        numbers.byteswap()
    return numbers


class ArrayPositions(Positions):
    """Whoosh's positions format, each posting's positions stored as a uint32 array."""

    def word_values(self, value: Any, analyzer: Any, **kwargs: Any) -> Iterator[tuple[str, int, float, bytes]]:
        items = self.indexed(value, analyzer) if isinstance(value, str) and kwargs.get("mode") == "index" else None
        if items is None:
            yield from super().word_values(value, analyzer, **kwargs)
            return
        for btext, freq, weight, positions in items:
            yield btext.decode("utf-8"), freq, weight, positions

    def indexed(self, text: str, analyzer: Any) -> list[tuple[bytes, int, float, bytes]] | None:
        """What a field of this format indexes for ``text``, as Whoosh's ``field.index``
        gives it (UTF-8 term, frequency, weight, positions); None if ``analyzer``
        has no shortcut (:func:`chronsearch.analysis.indexed_terms`)."""
        found = self.positions(text, analyzer)
        if found is None:
            return None
        boost = self.field_boost
        return [
            (
                term.encode("utf-8"),
                len(positions),
                len(positions) * boost,
                _POSITION.pack(positions[0]) if len(positions) == 1 else _to_bytes(array("I", positions)),
            )
            for term, positions in found.items()
        ]

    @staticmethod
    def positions(text: str, analyzer: Any) -> dict[str, list[int]] | None:
        """Each term ``analyzer`` indexes for ``text``, with its positions in order;
        None if ``analyzer`` has no shortcut (:func:`chronsearch.analysis.indexed_terms`)."""
        terms = indexed_terms(analyzer, text)
        if terms is None:
            return None
        found: dict[str, list[int]] = {}
        for pos, term in terms:
            if (positions := found.get(term)) is None:
                found[term] = [pos]
            else:
                positions.append(pos)
        return found

    def encode(self, poslist: list[int]) -> bytes:
        return _to_bytes(array("I", poslist))

    def decode_positions(self, valuestring: bytes) -> list[int]:
        return _from_bytes("I", valuestring).tolist()

    def decode_frequency(self, valuestring: bytes) -> int:
        return len(valuestring) // 4


class _FieldWriter(W3FieldWriter):
    """Whoosh's terms-and-postings writer, given each term's postings whole (see
    :mod:`chronsearch.writing`) and writing them in blocks of arrays."""

    _offset: int | None = None  # where the next term's postings go in the file

    def add_postings(self, schema: Any, lengths: Any, items: Any) -> None:
        raise NotImplementedError("chronsearch's SegmentWriter writes postings a term at a time")

    def add_term(
        self,
        fieldname: str,
        fieldobj: Any,
        btext: bytes,
        ids: array[int],
        weights: array[float],
        sizes: array[int],
        values: bytes,
        lengths: bytes | bytearray,
    ) -> None:
        """Write the postings of a term, in document order: their ``ids``, ``weights``,
        and values (``values`` cut by ``sizes``). ``lengths`` is the field's length
        byte of each document (0: no length); terms come in field and term order."""
        fieldmap = self._fieldmap
        if fieldname not in fieldmap:
            fieldmap[fieldname] = len(fieldmap)
        with_values = fieldobj.format.fixed_value_size() != 0
        count = len(ids)
        chunks = [WHOOSH3_HEADER_MAGIC]
        total = shortest = longest = value_end = 0
        top = 0.0
        for first in range(0, count, BLOCK_LIMIT):
            last = min(first + BLOCK_LIMIT, count)
            block_ids, block_weights = ids[first:last], weights[first:last]
            # Whoosh keeps the shortest and longest field length of a block
            # (and a term) so a scorer can bound its scores; 0 is no length.
            known = [byte for byte in map(lengths.__getitem__, block_ids) if byte] if lengths else ()
            low, high = (min(known), max(known)) if known else (0, 0)
            block_top = max(max(block_weights), 0.0)
            parts = [
                _HEADER.pack(last - first, block_ids[-1], block_top, low, high),
                _to_bytes(block_ids),
                _to_bytes(block_weights),
            ]
            if with_values:
                block_sizes = sizes[first:last]
                value_start, value_end = value_end, value_end + sum(block_sizes)
                parts += [_to_bytes(block_sizes), values[value_start:value_end]]
            data = b"".join(parts)
            chunks += [pack_int(-len(data) if last == count else len(data)), data]
            total += sum(block_weights)
            top = max(top, block_top)
            if known:
                shortest, longest = min(shortest or 255, low), max(longest, high)
        data = b"".join(chunks)
        if self._offset is None:
            self._offset = self._postfile.tell()
        shortest_length = byte_to_length(shortest) if longest else None
        info = W3TermInfo(total, count, shortest_length, byte_to_length(longest), top, ids[0], ids[-1])
        info.set_extent(self._offset, len(data))
        self._postfile.write(data)
        self._offset += len(data)
        self._tindex.add(pack_ushort(fieldmap[fieldname]) + btext, info.to_bytes())


class _PerDocWriter(W3PerDocWriter):
    """Whoosh's per-document writer, keeping field lengths and numeric columns in
    memory until the segment closes.

    Whoosh writes every value of a column through three layers of file objects,
    and its segment writer then reads each posting's field length back from
    disk. Here the lengths are at hand for writing the postings (:meth:`lengths_of`)
    and each column is written whole, in the same format.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.length_bytes: dict[str, bytearray] = {}
        self._numbers: dict[str, array[Any] | None] = {}  # None: a column Whoosh writes

    def add_field(self, fieldname: str, fieldobj: Any, value: Any, length: int) -> None:
        if value is not None:
            self._storedfields[fieldname] = value
        if length:
            column = self.length_bytes.setdefault(fieldname, bytearray())
            docnum = self._docnum
            if len(column) < docnum:
                column.extend(bytes(docnum - len(column)))
            column.append(length_to_byte(length))
            self._fieldlengths[fieldname] += length

    def add_column_value(self, fieldname: str, column: Any, value: Any) -> None:
        if fieldname not in self._numbers:
            self._numbers[fieldname] = _number_array(column)
        numbers = self._numbers[fieldname]
        if numbers is None:
            super().add_column_value(fieldname, column, value)
            return
        docnum = self._docnum
        if len(numbers) < docnum:
            numbers.extend([column._default] * (docnum - len(numbers)))
        numbers.append(value)

    def lengths_of(self, fieldname: str) -> bytes:
        """The length byte of each document in ``fieldname`` (0: none)."""
        column = self.length_bytes.get(fieldname, b"")
        return bytes(column) + bytes(self._doccount - len(column))

    def close(self) -> None:
        for fieldname in self.length_bytes:
            self._cols.create_file(_lenfield(fieldname)).write(self.lengths_of(fieldname))
        for fieldname, numbers in self._numbers.items():
            if numbers is not None:
                if _LITTLE:  # Whoosh's numeric columns are big-endian
                    numbers.byteswap()
                self._cols.create_file(fieldname).write(numbers.tobytes())
        super().close()


def _number_array(column: Any) -> array[Any] | None:
    """An empty array for the values of ``column`` if it is one of Whoosh's numeric
    columns and an array holds its numbers as it stores them; else None."""
    if type(column) is not NumericColumn:
        return None
    typecode = column._typecode
    try:
        numbers = array(typecode)
    except ValueError:
        return None
    return numbers if numbers.itemsize == struct.calcsize("!" + typecode) else None


class _LeafMatcher(W3LeafMatcher):
    """Whoosh's postings reader, for blocks of arrays."""

    def _goto(self, position: int) -> None:
        postfile = self._postfile
        self._data = self._ids = self._weights = self._values = None
        self._i = 0
        postfile.seek(position)
        length = postfile.read_int()
        self._lastblock = length < 0
        length = abs(length)
        self._nextoffset = position + _INT_SIZE + length
        self._dataoffset = position + _INT_SIZE + _HEADER.size
        count, self._maxid, self._maxweight, shortest, longest = _HEADER.unpack(postfile.read(_HEADER.size))
        self._blocklength, self._compression = count, 0
        self._minlength, self._maxlength = byte_to_length(shortest), byte_to_length(longest)

    def _read_data(self) -> None:
        self._data = self._postfile.get(self._dataoffset, self._nextoffset - self._dataoffset)

    def _read_ids(self) -> None:
        if self._data is None:
            self._read_data()
        self._ids = _from_bytes("I", self._data[: 4 * self._blocklength]).tolist()

    def _read_weights(self) -> None:
        if self._data is None:
            self._read_data()
        n = self._blocklength
        self._weights = _from_bytes("f", self._data[4 * n : 8 * n])

    def _read_values(self) -> None:
        if self._data is None:
            self._read_data()
        n = self._blocklength
        if self._fixedsize == 0:
            self._values = (None,) * n
            return
        sizes = _from_bytes("I", self._data[8 * n : 12 * n])
        values, start = [], 12 * n
        for size in sizes:
            values.append(self._data[start : start + size])
            start += size
        self._values = tuple(values)


class _PerDocReader(W3PerDocReader):
    """Whoosh's per-document reader, remembering which columns a segment has.

    Merging segments, Whoosh asks for each document's length in every field; for
    a field without lengths (ids, numbers) that was a file-system check each time.
    """

    def has_column(self, fieldname: str) -> bool:
        known: dict[str, bool] = self.__dict__.setdefault("_has_column", {})
        if fieldname not in known:
            known[fieldname] = super().has_column(fieldname)
        return known[fieldname]


class Codec(W3Codec):
    """Whoosh's format, with postings as arrays."""

    def per_document_reader(self, storage: Any, segment: Any) -> W3PerDocReader:
        return _PerDocReader(storage, segment)

    def per_document_writer(self, storage: Any, segment: Any) -> _PerDocWriter:
        return _PerDocWriter(self, storage, segment)

    def field_writer(self, storage: Any, segment: Any) -> _FieldWriter:
        return _FieldWriter(self, storage, segment)

    def postings_reader(self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return _LeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)


def make_codec() -> W3Codec:
    """How segments are written and read."""
    return Codec()


@dataclass(frozen=True)
class Postings:
    """A term's postings in one segment: document numbers in order, their weights,
    and (for a field with positions) how many positions each has, and all the
    positions one after the other."""

    ids: np.ndarray
    weights: np.ndarray
    counts: np.ndarray | None
    positions: np.ndarray | None


_EMPTY = Postings(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))


def read(terms: Any, info: Any, wanted: np.ndarray | None, positions: bool) -> Postings:
    """The postings of the term whose term info (of ``terms``) is ``info``, only the
    blocks that can hold ``wanted`` (sorted document numbers) when given; deleted
    documents included. ``positions`` reads them too (the field must store them)."""
    offset, length = info.extent()
    if isinstance(length, tuple):  # Whoosh reads it back as struct.unpack's tuple
        (length,) = length
    raw = terms._postfile.get(offset, length)
    if raw[: len(WHOOSH3_HEADER_MAGIC)] != WHOOSH3_HEADER_MAGIC:
        raise ValueError("postings not in chronsearch's layout")
    # Where each block's arrays start, how many postings it holds, its last
    # document and its end; the blocks are chained by their sizes.
    blocks: list[tuple[int, int, int, int]] = []
    pos, last = len(WHOOSH3_HEADER_MAGIC), False
    while not last:
        size = int.from_bytes(raw[pos : pos + 4], "big", signed=True)  # Whoosh's write_int
        last, start, pos = size < 0, pos + 4, pos + 4 + abs(size)
        count, max_id = _IDS.unpack_from(raw, start)
        blocks.append((start + _HEADER.size, count, max_id, pos))
    if wanted is not None:
        # A block that holds none of the wanted documents is never read.
        tops = np.array([block[2] for block in blocks], np.int64)
        bottoms = np.concatenate(([0], tops[:-1] + 1))
        held = np.searchsorted(wanted, tops, "right") > np.searchsorted(wanted, bottoms)
        blocks = [blocks[i] for i in np.flatnonzero(held).tolist()]
    if not blocks:
        return _EMPTY
    # Each array gathered from all blocks at once: one NumPy call, not one a block.
    ids = _gathered(raw, [(at, at + 4 * n) for at, n, _, _ in blocks], "<u4")
    weights = _gathered(raw, [(at + 4 * n, at + 8 * n) for at, n, _, _ in blocks], "<f4")
    if not positions:
        return Postings(ids.astype(np.int64), weights.astype(np.float64), None, None)
    sizes = _gathered(raw, [(at + 8 * n, at + 12 * n) for at, n, _, _ in blocks], "<u4")
    values = _gathered(raw, [(at + 12 * n, end) for at, n, _, end in blocks], "<u4")
    return Postings(ids.astype(np.int64), weights.astype(np.float64), sizes.astype(np.int64) // 4, values.astype(np.int64))


def _gathered(raw: bytes, spans: list[tuple[int, int]], dtype: str) -> np.ndarray:
    return np.frombuffer(b"".join([raw[a:b] for a, b in spans]), dtype)
