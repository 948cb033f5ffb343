"""The postings layout: Whoosh's matchers and the bulk reader read the same postings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronsearch import ChronicleIndex, update
from chronsearch.postings import BLOCK_LIMIT, ArrayPositions, read
from chronsearch.schema import CONTENT_FIELDS

from .corpus import write_corpus


@given(st.lists(st.integers(0, 2**32 - 1), unique=True).map(sorted))
def test_positions_round_trip(positions: list[int]):
    fmt = ArrayPositions()
    value = fmt.encode(positions)
    assert fmt.decode_positions(value) == positions
    assert fmt.decode_frequency(value) == len(positions)


@pytest.fixture(scope="module")
def merged_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChronicleIndex]:
    """Long postings lists over several segments, some merged, with deletions."""
    root = tmp_path_factory.mktemp("postings")
    seeds, index = root / "seeds", root / "index"
    write_corpus(seeds, files=6, events=300)
    update(seeds, index)
    for version in (1, 2):
        first = sorted(seeds.iterdir())[0]
        first.unlink()
        write_corpus(root / f"v{version}", files=1, events=300, version=version)
        for path in (root / f"v{version}").iterdir():
            path.rename(seeds / path.name)
        update(seeds, index)
    with ChronicleIndex.open(index) as ix:
        yield ix


def whoosh_postings(reader, field: str, term: bytes) -> list[tuple[int, float, list[int]]]:
    """The live postings, as Whoosh's matchers read them."""
    matcher = reader.postings(field, term)
    found = []
    while matcher.is_active():
        found.append((matcher.id(), matcher.weight(), matcher.value_as("positions")))
        matcher.next()
    return found


def bulk_postings(reader, field: str, term: bytes, wanted: np.ndarray | None = None) -> list[tuple]:
    """The live postings, as the bulk reader reads them (it leaves deletions to its caller)."""
    postings = read(reader._terms, reader._terms.term_info(field, term), wanted, positions=True)
    ends = np.cumsum(postings.counts)
    return [
        (docnum, weight, postings.positions[end - count : end].tolist())
        for docnum, weight, count, end in zip(
            postings.ids.tolist(), postings.weights.tolist(), postings.counts.tolist(), ends.tolist()
        )
        if not reader.is_deleted(docnum)
    ]


def test_every_term_reads_the_same_both_ways(merged_index: ChronicleIndex):
    searcher = merged_index._current_searcher()
    leaves = [leaf.reader() for leaf, _ in searcher.leaf_searchers()]
    assert len(leaves) >= 2
    longest = 0
    for reader in leaves:
        for field in CONTENT_FIELDS:
            for term in reader.lexicon(field):
                expected = whoosh_postings(reader, field, term)
                assert bulk_postings(reader, field, term) == expected, (field, term)
                longest = max(longest, len(expected))
    assert longest > 2 * BLOCK_LIMIT  # lists of several blocks were compared


@given(data=st.data())
def test_reading_some_documents_keeps_every_block_that_holds_them(merged_index: ChronicleIndex, data: st.DataObject):
    reader = merged_index._current_searcher().leaf_searchers()[0][0].reader()
    field, term = data.draw(st.sampled_from([("stem", b"zone"), ("word", b"dalian"), ("bigram", "産業".encode())]))
    whole = whoosh_postings(reader, field, term)
    wanted = sorted(data.draw(st.sets(st.sampled_from([docnum for docnum, _, _ in whole]) | st.integers(0, 2000))))
    part = bulk_postings(reader, field, term, np.array(wanted, np.int64))
    assert all(posting in whole for posting in part)
    assert {d for d, _, _ in whole} & set(wanted) <= {d for d, _, _ in part}

