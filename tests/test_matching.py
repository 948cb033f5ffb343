"""Bulk evaluation of queries over postings gives Whoosh's own matches and scores."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from whoosh import query as wq
from whoosh.collectors import UnlimitedCollector

from chronsearch import ChronicleIndex, update
from chronsearch.columns import Columns
from chronsearch.matching import Unsupported, scores
from chronsearch.postings import BLOCK_LIMIT
from chronsearch.searching import parse_query

from .conftest import SEEDS
from .corpus import write_corpus


@pytest.fixture(scope="module")
def edited_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChronicleIndex]:
    """The seeds indexed, then one file edited and one added: two segments, with deletions."""
    root = tmp_path_factory.mktemp("matching")
    seeds, index = root / "seeds", root / "index"
    seeds.mkdir()
    for path in SEEDS.glob("*.txt"):
        (seeds / path.name).write_bytes(path.read_bytes())
    update(seeds, index)
    english = next(seeds.glob("*.en.txt"))
    english.write_text(english.read_text(encoding="utf-8").replace("Zone", "Park"), encoding="utf-8")
    (seeds / "2019.txt").write_text(
        "2019 Events\n\nMarch\n\nThe zone opened a software park with IBM in Kyoto.\n\n"
        "ハイテク産業区にソフトウェアパークが開設された。\n",
        encoding="utf-8",
    )
    update(seeds, index)
    with ChronicleIndex.open(index) as ix:
        yield ix


def searcher_of(ix: ChronicleIndex):
    return ix._current_searcher()


def whoosh_scores(searcher, q: wq.Query) -> dict[int, float]:
    collector = UnlimitedCollector()
    searcher.search_with_collector(q, collector)
    return {docnum: score for score, docnum in collector.items}


def assert_same_as_whoosh(searcher, q: wq.Query) -> dict[int, float]:
    mine, theirs = scores(searcher, q), whoosh_scores(searcher, q)
    assert mine.keys() == theirs.keys(), q
    for docnum, score in theirs.items():
        assert mine[docnum] == pytest.approx(score, rel=1e-9, abs=1e-12), (q, docnum)
    return mine


def test_the_edited_index_has_several_segments_and_deletions(edited_index: ChronicleIndex):
    leaves = searcher_of(edited_index).leaf_searchers()
    assert len(leaves) >= 2
    assert any(leaf.reader().deleted_docs_set for leaf, _ in leaves)


TYPED = [
    "zone",
    "Zone",
    "park",
    "zone park",
    "zone OR park",
    "zone NOT park",
    "NOT zone",
    "NOT zone NOT IBM",
    "the NOT zone",
    "(zone OR software) AND NOT IBM",
    '"high-tech zone"',
    '"software park"',
    "e-commerce",
    "IBM",
    "lang:ja IBM",
    "lang:en zone^3 OR park",
    "source:2019.txt",
    "ハイテク産業区",
    "京都",
    "ソフトウェア OR 京都",
    "ハイテク産業区 NOT 京都",
    '"ソフトウェアパーク"',
    "IBM社",
    "*",
    "nosuchwordanywhere",
    "zone nosuchwordanywhere",
    '"zone nosuchwordanywhere"',
]


@pytest.mark.parametrize("match", ["all", "any"])
@pytest.mark.parametrize("text", TYPED)
def test_typed_queries_match_and_score_as_whoosh_does(edited_index: ChronicleIndex, text: str, match: str):
    searcher = searcher_of(edited_index)
    assert_same_as_whoosh(searcher, parse_query(text, searcher.schema, match=match))


def test_the_queries_find_something(edited_index: ChronicleIndex):
    """The comparisons above would prove little if every query came back empty."""
    searcher = searcher_of(edited_index)
    found = [text for text in TYPED if scores(searcher, parse_query(text, searcher.schema))]
    assert len(found) >= len(TYPED) - 4


def test_deleted_events_are_not_matched(edited_index: ChronicleIndex):
    searcher = searcher_of(edited_index)
    deleted = {
        docnum + offset for leaf, offset in searcher.leaf_searchers() for docnum in leaf.reader().deleted_docs_set
    }
    assert deleted
    assert not deleted & scores(searcher, parse_query("zone OR park OR ハイテク産業区", searcher.schema)).keys()


@pytest.mark.parametrize("text", ["zon*", "year:[2014 TO 2016]", "zone~", '"zone park"~3'])
def test_other_queries_are_left_to_whoosh(edited_index: ChronicleIndex, text: str):
    searcher = searcher_of(edited_index)
    with pytest.raises(Unsupported):
        scores(searcher, parse_query(text, searcher.schema))


def _event_texts() -> list[str]:
    texts = []
    for path in sorted(SEEDS.glob("*.txt")):
        texts += [line for line in path.read_text(encoding="utf-8").splitlines() if len(line) > 30]
    return texts


EVENTS = _event_texts()
WORDS = sorted({w for text in EVENTS for w in re.findall(r"[A-Za-z][A-Za-z-]+|[\u3040-\u30ff\u4e00-\u9fff]{2,4}", text)})


@st.composite
def phrases(draw: st.DrawFn) -> str:
    """A run of two to four adjacent words, or three to eight adjacent characters, of a seed event."""
    text = draw(st.sampled_from(EVENTS))
    words = text.split()
    if len(words) > 4:
        start = draw(st.integers(0, len(words) - 2))
        return '"' + " ".join(words[start : start + draw(st.integers(2, 4))]).replace('"', "") + '"'
    start = draw(st.integers(0, len(text) - 3))
    return '"' + text[start : start + draw(st.integers(3, 8))].replace('"', "") + '"'


clauses = st.one_of(st.sampled_from(WORDS), phrases())


@st.composite
def queries(draw: st.DrawFn) -> str:
    parts = draw(st.lists(clauses, min_size=1, max_size=4))
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from([" ", " AND ", " OR ", " NOT "])) + part
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=queries(), match=st.sampled_from(["all", "any"]))
def test_any_query_of_seed_words_and_phrases_matches_as_whoosh_does(edited_index: ChronicleIndex, text: str, match: str):
    searcher = searcher_of(edited_index)
    try:
        q = parse_query(text, searcher.schema, match=match)
    except Exception:  # a drawn phrase that is no query (a stray operator): not what this tests
        return
    assert_same_as_whoosh(searcher, q)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_earliest_is_the_start_of_the_chronological_order(edited_index: ChronicleIndex, data: st.DataObject):
    searcher = searcher_of(edited_index)
    columns = Columns(searcher.reader())
    live = sorted(searcher.reader().all_doc_ids())
    docnums = data.draw(st.lists(st.sampled_from(live), unique=True))
    n = data.draw(st.integers(0, 12))

    def key(docnum: int) -> tuple:
        stored = searcher.stored_fields(docnum)  # an event without a month stores none
        return (stored["year"], stored.get("month") or 0, stored["source"], stored["line"])

    assert columns.earliest(docnums, n) == sorted(docnums, key=key)[:n]


@pytest.fixture(scope="module")
def long_lists_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChronicleIndex]:
    """Postings of many blocks (of BLOCK_LIMIT postings), in two
    segments, with deletions: where an AND skips blocks."""
    root = tmp_path_factory.mktemp("long-lists")
    seeds, index = root / "seeds", root / "index"
    write_corpus(seeds, files=6, events=300)
    update(seeds, index)
    for path in sorted(seeds.iterdir())[:2]:
        path.unlink()
    write_corpus(root / "edited", files=2, events=300, version=1)
    for path in (root / "edited").iterdir():
        path.rename(seeds / path.name)
    update(seeds, index)
    with ChronicleIndex.open(index) as ix:
        yield ix


def test_long_postings_span_blocks_and_segments(long_lists_index: ChronicleIndex):
    searcher = searcher_of(long_lists_index)
    assert len(searcher.leaf_searchers()) >= 2
    assert searcher.doc_frequency("stem", "zone") > 3 * BLOCK_LIMIT


NUMBERED = ["17 zone", "17 AND Dalian AND NOT 3", '"high-tech zone" 250', "ハイテク産業区 12", "1 OR 250", "299 NOT zone"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.sampled_from(NUMBERED),
        st.lists(st.sampled_from(["zone", "Dalian", "version", "0", "1", "ハイテク産業区", "企業"]) | st.integers(0, 299).map(str),
                 min_size=2, max_size=4).map(" ".join),
    ),
    match=st.sampled_from(["all", "any"]),
)  # fmt: skip
def test_rare_and_common_words_together_match_as_whoosh_does(long_lists_index: ChronicleIndex, text: str, match: str):
    searcher = searcher_of(long_lists_index)
    assert_same_as_whoosh(searcher, parse_query(text, searcher.schema, match=match))


def top(found: dict[int, float], n: int) -> list[tuple[int, float]]:
    """The ``n`` best, as a search ranks them: by score, then by document number."""
    return sorted(found.items(), key=lambda item: (-item[1], item[0]))[:n]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_best_are_exact_when_only_the_best_are_asked_for(
    long_lists_index: ChronicleIndex, edited_index: ChronicleIndex, data: st.DataObject
):
    ix = data.draw(st.sampled_from([long_lists_index, edited_index]))
    searcher = searcher_of(ix)
    if ix is long_lists_index:
        words = st.sampled_from(["zone", "Dalian", "high-tech", "company", "ハイテク産業区", "企業"]) | st.integers(0, 299).map(str)
    else:
        words = st.sampled_from(WORDS)
    text = " ".join(data.draw(st.lists(words, min_size=2, max_size=5)))
    n = data.draw(st.integers(0, 30))
    odd = data.draw(st.booleans())
    keep = np.arange(searcher.doc_count_all()) % 2 == 1 if odd else None
    q = parse_query(text, searcher.schema, match="any")
    exact = scores(searcher, q, keep=keep)
    pruned = scores(searcher, q, best=n, keep=keep)
    assert pruned.keys() == exact.keys()
    # The same scores in the same order (events of equal score may trade places),
    # each exact for its event; every other score at most the exact one.
    best = top(pruned, n)
    assert [score for _, score in best] == pytest.approx([score for _, score in top(exact, n)], rel=1e-9)
    assert [score for _, score in best] == pytest.approx([exact[d] for d, _ in best], rel=1e-9)
    assert all(pruned[d] <= exact[d] * (1 + 1e-9) for d in exact)
