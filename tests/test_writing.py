"""The segment writer: what it writes reads back as exactly what the documents hold."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.filedb.filestore import RamStorage
from whoosh.index import FileIndex
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter as WhooshSegmentWriter

from chronsearch.chronicle import chronicle_sources, read_chronicle
from chronsearch.indexing import event_document
from chronsearch.postings import BLOCK_LIMIT
from chronsearch.schema import make_schema
from chronsearch.writing import SegmentWriter, TermPool

from .conftest import SEEDS
from .corpus import write_corpus


def _events(root: Path):
    return [event for source in chronicle_sources(root) for event in read_chronicle(root / source, root=root)]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory):
    # Real English and Japanese, and a generated corpus whose common words
    # fill several blocks.
    corpus = tmp_path_factory.mktemp("corpus")
    write_corpus(corpus, files=3, events=400)
    return _events(SEEDS) + _events(corpus)


def _written(events, limit: int):
    ix = FileIndex.create(RamStorage(), make_schema(), "events")
    writer = SegmentWriter(ix, limit=limit)
    for event in events:
        writer.add_document(**event_document(event))
    writer.commit()
    return ix.reader()


@pytest.mark.parametrize("limit", [10**9, 20_000], ids=["in memory", "many runs on disk"])
def test_every_term_reads_back_as_the_documents_hold_it(events, limit):
    schema = make_schema()
    expected: dict[tuple[str, bytes], list[tuple[int, float, bytes]]] = defaultdict(list)
    lengths: dict[tuple[str, int], int] = {}
    for docnum, event in enumerate(events):
        for fieldname, value in event_document(event).items():
            field = schema[fieldname]
            if not field.indexed:
                continue
            for btext, freq, weight, value_bytes in field.index(value):
                expected[fieldname, btext].append((docnum, weight, value_bytes))
                if field.scorable:
                    lengths[fieldname, docnum] = lengths.get((fieldname, docnum), 0) + freq

    reader = _written(events, limit)
    seen = set()
    longest = 0
    for fieldname in reader.indexed_field_names():
        has_values = schema[fieldname].format.fixed_value_size() != 0
        for btext in reader.lexicon(fieldname):
            postings = expected[fieldname, btext]
            seen.add((fieldname, btext))
            longest = max(longest, len(postings))
            matcher = reader.postings(fieldname, btext)
            found = []
            while matcher.is_active():
                found.append((matcher.id(), matcher.weight(), matcher.value() if has_values else b""))
                if matcher._i == 0:  # a block's first posting: its summary covers the block
                    block = postings[len(found) - 1 : len(found) - 1 + matcher._blocklength]
                    _assert_summary(matcher, block, fieldname, lengths)
                matcher.next()
            assert found == [(d, w, v if has_values else b"") for d, w, v in postings], (fieldname, btext)
            info = reader.term_info(fieldname, btext)
            _assert_summary(info, postings, fieldname, lengths)
            assert (info.doc_frequency(), info.weight()) == (len(postings), sum(w for _, w, _ in postings))
            assert (info.min_id(), info.max_id()) == (postings[0][0], postings[-1][0])
    assert seen == set(expected)
    assert longest > 2 * BLOCK_LIMIT


def _assert_summary(summary, postings, fieldname, lengths):
    """A block's or term's top weight and its shortest and longest field length
    (as Whoosh stores lengths: a byte on a log scale)."""
    known = [byte_to_length(length_to_byte(lengths.get((fieldname, d), 0))) for d, _, _ in postings]
    known = [length for length in known if length]
    top = summary.block_max_weight() if hasattr(summary, "block_max_weight") else summary.max_weight()
    assert top == max(w for _, w, _ in postings)
    if hasattr(summary, "block_min_length"):
        shortest, longest = summary.block_min_length(), summary.block_max_length()
    else:
        shortest, longest = summary.min_length(), summary.max_length()
    assert (shortest, longest) == ((min(known), max(known)) if known else (0, 0)), fieldname


postings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["stem", "word"]),
        st.sampled_from([b"zone", b"park", b"dalian"]),
        st.binary(max_size=12),
    ),
    max_size=60,
)


@settings(deadline=None)
@given(postings=postings_strategy, limit=st.integers(0, 3000))
def test_a_pool_gives_the_same_terms_whatever_it_spills(tmp_path_factory, postings, limit):
    """Runs on disk are an implementation detail: the terms come out the same."""
    storage = RamStorage()
    whole, spilled = TermPool(storage, 10**9), TermPool(storage, limit)
    for docnum, (fieldname, btext, value) in enumerate(postings):
        for pool in (whole, spilled):
            pool.add((fieldname, btext, docnum, 1.0 + len(value), value))
    expected = [(f, t, list(i), list(w), list(s), bytes(v)) for f, t, i, w, s, v in whole.terms()]
    assert [(f, t, list(i), list(w), list(s), bytes(v)) for f, t, i, w, s, v in spilled.terms()] == expected
    assert [(f, t) for f, t, *_ in expected] == sorted({(f, t) for f, t, _ in postings})
    spilled.cleanup()
    assert storage.list() == []


documents_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["stem", "word"]),
        st.dictionaries(
            st.sampled_from(["zone", "park", "大連", "a", "ab"]),
            st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4, unique=True).map(sorted),
            max_size=4,
        ),
        max_size=2,
    ),
    max_size=30,
)


@settings(deadline=None)
@given(documents=documents_strategy, merged=postings_strategy, limit=st.integers(0, 3000))
def test_positions_added_a_document_at_a_time_come_out_per_term(tmp_path_factory, documents, merged, limit):
    """Documents added whole, then postings one at a time (as Whoosh merges
    segments): each term's postings in document order, whatever the pool spills."""
    expected: dict[tuple[str, bytes], list[tuple[int, float, bytes]]] = defaultdict(list)
    pool = TermPool(RamStorage(), limit)
    for docnum, fields in enumerate(documents):
        for fieldname, found in fields.items():
            pool.add_positions(fieldname, docnum, found, 1.5)
            for term, positions in found.items():
                value = b"".join(p.to_bytes(4, "little") for p in positions)
                expected[fieldname, term.encode()].append((docnum, 1.5 * len(positions), value))
    for docnum, (fieldname, btext, value) in enumerate(merged, start=len(documents)):
        pool.add((fieldname, btext, docnum, 1.0 + len(value), value))
        expected[fieldname, btext].append((docnum, 1.0 + len(value), value))
    found = []
    for fieldname, btext, ids, weights, sizes, values in pool.terms():
        assert len(ids) == len(weights) == len(sizes) and sum(sizes) == len(values)
        cut = [values[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))]
        found.append(((fieldname, btext), list(zip(ids, weights, cut))))
    assert found == sorted(expected.items())


def test_every_document_reads_back_as_whooshs_own_writer_writes_it(events):
    """Stored fields, columns and field lengths, which the segment writer keeps
    in memory and writes whole, read back as from Whoosh's writer."""
    ours = _written(events, 10**9)
    ix = FileIndex.create(RamStorage(), make_schema(), "events")
    writer = WhooshSegmentWriter(ix)
    for event in events:
        writer.add_document(**event_document(event))
    writer.commit()
    theirs = ix.reader()

    schema = make_schema()
    columns = [name for name, field in schema.items() if field.column_type]
    scorable = [name for name, field in schema.items() if field.scorable]
    assert {"year", "month", "line"} <= set(columns) and {"word", "stem", "morph"} <= set(scorable)
    assert any(event.month is None for event in events) and any(event.month for event in events)
    assert ours.doc_count_all() == theirs.doc_count_all() == len(events)
    our_columns, their_columns = ({name: r.column_reader(name) for name in columns} for r in (ours, theirs))
    for docnum in range(len(events)):
        assert ours.stored_fields(docnum) == theirs.stored_fields(docnum)
        for name in columns:
            assert our_columns[name][docnum] == their_columns[name][docnum], (name, docnum)
        for name in scorable:
            assert ours.doc_field_length(docnum, name) == theirs.doc_field_length(docnum, name), (name, docnum)
    for name in scorable:
        assert ours.field_length(name) == theirs.field_length(name)
        assert ours.max_field_length(name) == theirs.max_field_length(name)
