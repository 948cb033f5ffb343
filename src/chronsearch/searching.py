"""Searching an index: queries, filters, facets and snippets, returned as plain data.

    >>> with ChronicleIndex.open("index") as ix:
    ...     res = ix.search("IBM", lang="ja")
    >>> res.total, [h.source for h in res.hits], res.facets["month"]
    (2, ['2017-park-chronicle.ja.txt', '2017-park-chronicle.ja.txt'], {'2017-05': 1, '2017-08': 1})

Queries use Whoosh's syntax (``AND``, ``OR``, ``NOT``, ``"phrases"``,
``field:term``, ``year:[2014 TO 2016]``, ``year:>=2015``). A bare word is looked up
in every content field at once; ``text:word`` means the same. A blank query (or
``*``) matches every event, to browse by filters.
"""

from __future__ import annotations

import copy
import math
import re
import time
import unicodedata
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from whoosh import query as wq
from whoosh.index import FileIndex
from whoosh.query import QueryError
from whoosh.qparser import BoostPlugin, FuzzyTermPlugin, GtLtPlugin, MultifieldParser, PhrasePlugin, Plugin, syntax
from whoosh.collectors import UnlimitedCollector
from whoosh.scoring import BM25F, BM25FScorer, WeightScorer
from whoosh.searching import Searcher

from chronsearch import matching
from chronsearch.analysis import (
    JanomeCache,
    cache_file_name,
    has_cjk,
    japanese_tokens,
    open_janome_cache,
    using_janome_cache,
)
from chronsearch.chronicle import CJK_CHARS, Event
from chronsearch.columns import Columns, field_lengths
from chronsearch.errors import ChronsearchError, QuerySyntaxError
from chronsearch.glossary import Glossary
from chronsearch.indexing import indexed_glossary, open_index
from chronsearch.schema import CONTENT_FIELDS, FIELD_BOOSTS
from chronsearch.snippets import highlight_spans, make_snippet, query_sequences
from chronsearch.suggest import OPERATORS, suggest

__all__ = ["ChronicleIndex", "Hit", "SearchResults", "IndexStats", "parse_query"]

Match = Literal["all", "any"]

# How many of an event's words make up a "similar events" query, per field.
SIMILAR_TERMS = 12
# How many of the best matches of each part of a "similar events" query are merged.
SIMILAR_POOL = 100
# The fields whose words describe an event, by its language. Latin words in
# CJK text (IBM, SDN) are only in the English fields.
_SIMILAR_FIELDS = {"en": ("stem",), "ja": ("morph", "stem"), "cjk": ("bigram", "stem")}

# A query with at most this many hits gets a "did you mean" when one of its
# words occurs nowhere in the index.
FEW_HITS = 2
Sort = Literal["relevance", "chronological"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching event. ``highlights`` are ``(start, end)`` spans of ``snippet``."""

    id: str
    year: int
    month: int | None
    lang: str
    source: str
    line: int
    text: str
    score: float | None
    snippet: str
    highlights: tuple[tuple[int, int], ...] = ()
    # (query name, glossary equivalent) pairs that found this event; empty
    # when the query's own words did.
    expansions: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "highlights": [list(span) for span in self.highlights],
            "expansions": [list(pair) for pair in self.expansions],
        }


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A page of hits, with the total and facet counts over *all* matches.

    ``expansions`` are the (query name, equivalent) pairs the glossary added to
    the query; ``suggestion`` is a corrected query when this one found little.
    """

    query: str
    total: int
    hits: tuple[Hit, ...]
    facets: Mapping[str, Mapping[str, int]]
    took_ms: float
    expansions: tuple[tuple[str, str], ...] = ()
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "hits": [hit.to_dict() for hit in self.hits],
            "facets": {name: dict(counts) for name, counts in self.facets.items()},
            "expansions": [list(pair) for pair in self.expansions],
            "suggestion": self.suggestion,
            "took_ms": self.took_ms,
        }


@dataclass(frozen=True, slots=True)
class IndexStats:
    """How many events the index holds, per year, month (``YYYY-MM``), lang and source."""

    events: int
    year: Mapping[str, int]
    month: Mapping[str, int]
    lang: Mapping[str, int]
    source: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {name: (value if name == "events" else dict(value)) for name, value in asdict(self).items()}


_CJK_SEGMENT = re.compile(rf"{CJK_CHARS}+(?:\s*{CJK_CHARS}+)*")
_CJK_SPACE = re.compile(rf"(?<={CJK_CHARS})\s+(?={CJK_CHARS})")


def _script_segments(text: str) -> list[str]:
    """``text`` cut where it changes between CJK and other characters."""
    segments, pos = [], 0
    for m in _CJK_SEGMENT.finditer(text):
        segments += [text[pos : m.start()], _CJK_SPACE.sub("", m.group())]
        pos = m.end()
    segments.append(text[pos:])
    return [seg for seg in segments if seg.strip()]


class _ContentWords(Plugin):
    """Prepares words and phrases meant for the event text, before they meet the fields.

    - ``text:word`` means the same as a bare ``word``.
    - A word or phrase that mixes CJK and Latin (``IBM社``, ``"Dalian 中国"``) becomes
      an AND of its parts. Each part is looked up in the fields of its own script,
      so without this any one part would match on its own.
    - Spaces between CJK characters in a phrase go: ``"京都 府"`` is ``京都府``.

    With ``split`` (``match="any"``) a bare word instead becomes an OR of its parts,
    and each run of CJK text in it an OR of its Japanese content words
    (:func:`query_words`), so a question typed as one run of Japanese finds the
    events that share its words, not only those that hold it verbatim.
    """

    def __init__(self, split: bool = False, drop_question_words: bool = True) -> None:
        self.split = split
        self.drop_question_words = drop_question_words

    def filters(self, parser: Any) -> list[tuple[Any, int]]:
        # After explicit field names are attached (100), before the multifield
        # expansion (110) turns unfielded words into one query per field.
        return [(self._prepare, 105)]

    def _prepare(self, parser: Any, group: Any) -> Any:
        for i, node in enumerate(group):
            if isinstance(node, syntax.GroupNode):
                group[i] = self._prepare(parser, node)
                continue
            if not node.has_fieldname or node.fieldname not in (None, "text"):
                continue
            node.fieldname = None
            if isinstance(node, (syntax.WordNode, PhrasePlugin.PhraseNode)):
                segments = _script_segments(unicodedata.normalize("NFKC", node.text))
                if self.split and isinstance(node, syntax.WordNode):
                    words = [w for seg in segments for w in query_words(seg, drop_question_words=self.drop_question_words)]
                    if len(words) == 1:
                        node.text = words[0]
                    else:
                        group[i] = syntax.OrGroup([_with_text(node, word) for word in words])
                    continue
                if len(segments) == 1:
                    node.text = segments[0]
                elif segments:
                    group[i] = syntax.AndGroup([_with_text(node, seg) for seg in segments])
        return group


# Equivalents from the glossary weigh less than the words the user typed.
EXPANSION_BOOST = 0.5


class _GlossaryNames(Plugin):
    """Adds the glossary equivalents of a query name (one or more words, or a phrase).

    ``Kyoto`` becomes ``(Kyoto OR "京都")``; ``high-tech zone`` becomes
    ``((high-tech AND zone) OR "高新区" OR "ハイテク産業区")``. Each addition is
    recorded in ``applied``.
    """

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        self.applied: list[tuple[str, str]] = []

    def filters(self, parser: Any) -> list[tuple[Any, int]]:
        # Before _ContentWords (105), so names that mix scripts are split like typed ones.
        return [(self._expand, 104)]

    def _expand(self, parser: Any, group: Any) -> Any:
        nodes, out, i = list(group), [], 0
        while i < len(nodes):
            node = nodes[i]
            if isinstance(node, syntax.GroupNode):
                out.append(self._expand(parser, node))
                i += 1
                continue
            run = _plain_run(nodes, i, self.glossary.max_words)
            for k in range(len(run), 0, -1):
                # Operators bind single words: a name of several words next to
                # one would regroup the query ("NOT high-tech zone" is
                # "(NOT high-tech) AND zone" without the glossary).
                if k > 1 and (_binds(parser, nodes, i, -1) or _binds(parser, nodes, run[k - 1], 1)):
                    continue
                words = [nodes[j] for j in run[:k]]
                names = self.glossary.equivalents([w.text for w in words])
                if names:
                    out.append(self._alternatives(parser, words, names))
                    i = run[k - 1] + 1
                    break
            else:
                out.append(node)
                i += 1
        group.nodes = out
        return group

    def _alternatives(self, parser: Any, words: list[Any], names: tuple[str, ...]) -> Any:
        typed = " ".join(w.text for w in words)
        self.applied += [(typed, name) for name in names]
        phrases = []
        for name in names:
            phrase = PhrasePlugin.PhraseNode(name, 0)
            phrase.set_range(words[0].startchar, words[-1].endchar)
            phrase.set_boost(EXPANSION_BOOST)
            phrases.append(phrase)
        original = words[0] if len(words) == 1 else parser.group(words)
        return syntax.OrGroup([original, *phrases])


def _is_plain(nodes: list[Any], at: int) -> bool:
    """Whether ``nodes[at]`` is a word or phrase meant for the event text, with no
    field or boost of its own (boosts are still nodes of their own here)."""
    node = nodes[at]
    return (
        type(node) in (syntax.WordNode, PhrasePlugin.PhraseNode)
        and node.fieldname in (None, "text")
        and not (at + 1 < len(nodes) and isinstance(nodes[at + 1], BoostPlugin.BoostNode))
    )


def _binds(parser: Any, nodes: list[Any], at: int, step: int) -> bool:
    """Whether the node before (``step`` -1) or after (1) ``nodes[at]``, spaces aside,
    is an operator that would bind ``nodes[at]`` alone; the parser's own way of
    joining words (AND, or OR for ``match="any"``) is the same grouped or not."""
    at += step
    while 0 <= at < len(nodes) and isinstance(nodes[at], syntax.Whitespace):
        at += step
    if not 0 <= at < len(nodes) or not isinstance(nodes[at], syntax.Operator):
        return False
    return not (isinstance(nodes[at], syntax.InfixOperator) and nodes[at].grouptype is parser.group)


def _plain_run(nodes: list[Any], start: int, most: int) -> list[int]:
    """Indexes of up to ``most`` plain words from ``start``, with only spaces between them."""
    run: list[int] = []
    j = start
    while j < len(nodes) and len(run) < most and _is_plain(nodes, j):
        run.append(j)
        if isinstance(nodes[j], PhrasePlugin.PhraseNode):
            break  # a phrase is a name on its own
        j += 1
        while j < len(nodes) and isinstance(nodes[j], syntax.Whitespace):
            j += 1
        if j < len(nodes) and isinstance(nodes[j], PhrasePlugin.PhraseNode):
            break
    return run


def _with_text(node: Any, text: str) -> Any:
    part = copy.copy(node)
    part.text = text
    return part


# Question words: they say what is asked, never what the answer is about.
QUESTION_WORDS = frozenset(
    "何 なに なん いつ どこ どこか 誰 だれ どなた どの どんな どう どうして なぜ 何故 どれ どれほど どちら どっち"
    " いくつ 幾つ いくら".split()
)
# English question and function words, beyond the index's stop list: in a question
# typed in full ("what problems have been solved so far") they carry no topic.
ENGLISH_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how do does did done doing have has had having been being"
    " am can could should would must might shall may about any some so far from than its also there here"
    " was were i we you he she our your his her them those me my very too just only".split()
)


def japanese_words(text: str) -> list[str]:
    """Surface forms of the words of ``text`` (normalized) that the Japanese analyzer
    keeps, less the question words."""
    return [surface for surface, base, _, _ in japanese_tokens(text) if base not in QUESTION_WORDS]


def query_words(segment: str, *, drop_question_words: bool = True) -> list[str]:
    """The words a ``match="any"`` query looks up for one script segment of a query word.

    A Latin segment is one word, or none if it is an English question word. A CJK
    segment gives the surface forms of the words the Japanese analyzer keeps, less
    the question words (何, どこ, いつ…); a segment with no such word stays whole.
    """
    if not has_cjk(segment):
        if drop_question_words and segment.lower() in ENGLISH_QUESTION_WORDS:
            return []
        return [segment]
    return japanese_words(segment) or [segment]


# In match="any", two query words that follow each other also count as a phrase
# (in the stemmed English and the Japanese word fields): an event holding
# "heat conduction" or 出身 地 together ranks above one holding each word apart.
PAIR_FIELDS = ("stem", "morph")
PAIR_BOOST = 1.0


def _with_pairs(q: wq.Query) -> wq.Query:
    if not isinstance(q, wq.Or):
        return q
    pairs: list[wq.Query] = []
    for field in PAIR_FIELDS:
        words = [sub.text for sub in q.subqueries if isinstance(sub, wq.Term) and sub.fieldname == field]
        pairs += [wq.Phrase(field, [a, b], boost=PAIR_BOOST) for a, b in zip(words, words[1:]) if a != b]
    return wq.Or([*q.subqueries, *pairs], boost=q.boost) if pairs else q


def parse_query(text: str, schema: Any, *, match: Match = "all", glossary: Glossary | None = None) -> wq.Query:
    """The Whoosh query for ``text``; raises :class:`QuerySyntaxError` if it has none.

    With a ``glossary``, names in the query also search for their equivalents.
    """
    return _parse(text, schema, match=match, glossary=glossary)[0]


def _parse(
    text: str, schema: Any, *, match: Match = "all", glossary: Glossary | None = None
) -> tuple[wq.Query, tuple[tuple[str, str], ...]]:
    """The query for ``text``, and the glossary equivalents added to it."""
    if match not in ("all", "any"):
        raise ValueError(f"match must be 'all' or 'any', not {match!r}")
    if not text.strip() or text.strip() == "*":
        return wq.Every(), ()
    if match == "all" and (q := _plain_words(text, schema, glossary)) is not None:
        return q, ()
    q, names = _run_parser(text, schema, match, glossary, drop_question_words=True)
    if match == "any":
        if q is wq.NullQuery:  # nothing but question words: look them up after all
            q, names = _run_parser(text, schema, match, glossary, drop_question_words=False)
        q = _with_pairs(q)
    error = next((e for leaf in q.leaves() if (e := getattr(leaf, "error", None))), None)
    error = error or getattr(q, "error", None)
    if error:
        raise QuerySyntaxError(text, str(error))
    return q, tuple(dict.fromkeys(names.applied)) if names else ()


# A word without what Whoosh's parser, as configured here, reads as syntax:
# quotes, groups, wildcards, fields, boosts, fuzziness, ranges and comparisons.
# An apostrophe after a letter ("zone's") cannot open a quote.
_PLAIN_WORD = re.compile(r"(?:[^\s\"'()*?\u055e\u061f\u1367:^~<>=\[\]{}]|(?<=\w)')+")


def _plain_words(text: str, schema: Any, glossary: Glossary | None) -> wq.Query | None:
    """The query ``_run_parser`` makes of ``text`` with ``match="all"``, if it is
    only plain words that name nothing in the glossary; else None.

    Most queries are a few plain words, and Whoosh's parser costs more than
    looking them up (a test holds the two equal).
    """
    words = _plain(text)
    if words is None:
        return None
    if glossary:
        most = glossary.max_words
        if any(glossary.equivalents(words[i : i + k]) for i in range(len(words)) for k in range(1, most + 1)):
            return None
    groups = []
    for word in words:
        # As _ContentWords and Whoosh's multifield plugin make them.
        parts = _script_segments(unicodedata.normalize("NFKC", word)) or [word]
        per_part = [
            wq.Or([q for field in CONTENT_FIELDS if (q := _field_query(schema[field], field, part)) is not None])
            for part in parts
        ]
        groups.append(per_part[0] if len(per_part) == 1 else wq.And(per_part))
    q = wq.And(groups)
    return (q if q else wq.NullQuery).normalize()


def _plain(text: str) -> list[str] | None:
    """The words of ``text`` if they are all plain words, else None."""
    words = text.split()
    return words if all(_PLAIN_WORD.fullmatch(word) and word not in OPERATORS for word in words) else None


def _field_query(field: Any, fieldname: str, text: str) -> wq.Query | None:
    """Whoosh's ``QueryParser.term_query`` for a field whose ``multitoken_query`` is "phrase"."""
    texts = list(field.process_text(text, mode="query", tokenize=True, removestops=True))
    boost = FIELD_BOOSTS[fieldname]
    if len(texts) > 1:
        return wq.Phrase(fieldname, texts, boost=boost)
    return wq.Term(fieldname, texts[0], boost=boost) if texts else None


def _run_parser(
    text: str, schema: Any, match: Match, glossary: Glossary | None, *, drop_question_words: bool
) -> tuple[wq.Query, _GlossaryNames | None]:
    group = syntax.AndGroup if match == "all" else syntax.OrGroup
    parser = MultifieldParser(list(CONTENT_FIELDS), schema, fieldboosts=FIELD_BOOSTS, group=group)
    parser.add_plugin(GtLtPlugin())
    parser.add_plugin(FuzzyTermPlugin())
    parser.add_plugin(_ContentWords(split=match == "any", drop_question_words=drop_question_words))
    names = _GlossaryNames(glossary) if glossary else None
    if names:
        parser.add_plugin(names)
    try:
        return parser.parse(text), names
    except Exception as exc:  # Whoosh's parser raises assorted errors on odd input
        raise QuerySyntaxError(text, str(exc) or type(exc).__name__) from None


# BM25's k1 per field: Japanese questions share many words with their answer,
# and an n-gram or Janome word repeats more than an English word, so the CJK
# fields saturate term frequency sooner.
FIELD_K1 = {"word": 1.6, "stem": 1.6, "morph": 0.6, "bigram": 0.6, "unigram": 0.6}


class RankingBM25(BM25F):
    """Whoosh's BM25F with the usual (Lucene, Robertson-Sparck Jones) IDF and a k1 per field.

    Whoosh's own IDF, ``log(N / (df + 1)) + 1``, never falls below 1, so a word in
    nearly every event ("the", "what", の) still weighs a good share of a rare one.
    Each segment's field lengths are read once, in bulk: read one at a time
    they were most of the cost of scoring.
    """

    def __init__(self, B: float = 0.75, K1: float = 1.2, field_K1: Mapping[str, float] | None = None) -> None:
        super().__init__(B=B, K1=K1)
        self.field_K1 = dict(field_K1 or {})
        self._lengths: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray | None]] = weakref.WeakKeyDictionary()

    def idf(self, searcher: Any, fieldname: str, text: bytes) -> float:
        parent = searcher.get_parent()
        df = parent.doc_frequency(fieldname, text)
        n = parent.doc_count_all()
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scorer(self, searcher: Any, fieldname: str, text: bytes, qf: int = 1) -> Any:
        if not searcher.schema[fieldname].scorable:
            return WeightScorer.for_(searcher, fieldname, text)
        k1 = self.field_K1.get(fieldname, self.K1)
        scorer = _BM25Scorer(searcher, fieldname, text, self._field_B.get(fieldname, self.B), k1, qf=qf)
        reader = searcher.reader()
        per_field = self._lengths.setdefault(reader, {})
        if fieldname not in per_field:
            per_field[fieldname] = field_lengths(reader, fieldname)
        if (lengths := per_field[fieldname]) is not None:
            # Bound to the array, which bulk matching reads whole.
            scorer.dfl = lengths.item
        return scorer


class _BM25Scorer(BM25FScorer):
    """Whoosh's BM25F scorer, which looks up its term's best possible score only
    when a Whoosh matcher asks for it: bulk matching never does, and the lookup
    costs as much as the rest of the scorer."""

    def setup(self, searcher: Any, fieldname: str, text: bytes) -> None:
        self.dfl = lambda docid: searcher.doc_field_length(docid, fieldname, 1)
        self._term_info = lambda: searcher.term_info(fieldname, text)

    def max_quality(self) -> float:
        info = self._term_info()
        return self._score(info.max_weight(), info.min_length())


def weighting() -> BM25F:
    """The ranking model of searches."""
    return RankingBM25(field_K1=FIELD_K1)


def _where(year: int | None, month: int | None, lang: str | None) -> dict[str, Any]:
    """The filters that are set, as column values every match must have."""
    return {name: value for name, value in (("year", year), ("month", month), ("lang", lang)) if value is not None}


class ChronicleIndex:
    """An open chronicle index. Use :meth:`open`; close it, or use it as a context manager."""

    def __init__(self, ix: FileIndex) -> None:
        self._ix = ix
        self._searcher: Searcher | None = None
        self._glossary_cache: tuple[Any, Glossary] | None = None
        self._columns_cache: tuple[Searcher, Columns] | None = None
        self._janome_cache: tuple[Searcher, JanomeCache | None] | None = None

    @classmethod
    def open(cls, path: str | Path) -> ChronicleIndex:
        """Open the index at ``path``; raises if it is missing or made by another version."""
        return cls(open_index(Path(path)))

    def __enter__(self) -> ChronicleIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        self._close_janome_cache()

    def _close_janome_cache(self) -> None:
        if self._janome_cache is not None and self._janome_cache[1] is not None:
            self._janome_cache[1].close()
        self._janome_cache = None

    def _current_searcher(self) -> Searcher:
        """A searcher over the latest commit. Each public call takes one, and its
        helpers use :attr:`_snapshot`, so every part of an answer reads one commit."""
        searcher = self._searcher
        if searcher is None or searcher.reader().generation() != self._ix.latest_generation():
            if searcher is not None:
                searcher.close()
            # Not Searcher.refresh(): it reuses its readers of segments that are
            # still there, with the deletions they had then.
            self._searcher = self._ix.searcher(weighting=weighting())
        return self._searcher

    @property
    def _snapshot(self) -> Searcher:
        assert self._searcher is not None, "a public method takes the searcher first"
        return self._searcher

    def search(
        self,
        query: str,
        *,
        year: int | None = None,
        month: int | None = None,
        lang: str | None = None,
        limit: int = 10,
        offset: int = 0,
        match: Match = "all",
        sort: Sort = "relevance",
        snippets: bool = True,
        glossary: bool = True,
    ) -> SearchResults:
        """Search the events; ``total`` and ``facets`` count every match, not just this page.

        ``snippets=False`` skips highlighting: each hit's snippet is then its whole
        text, with no highlights. The ranking is the same either way.
        ``glossary=False`` searches only for the words as typed, not their
        equivalents in the glossary.
        """
        if sort not in ("relevance", "chronological"):
            raise ValueError(f"sort must be 'relevance' or 'chronological', not {sort!r}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        started = time.perf_counter()
        searcher = self._current_searcher()
        q, expansions = _parse(query, searcher.schema, match=match, glossary=self._glossary() if glossary else None)
        where = _where(year, month, lang)
        try:
            # Events the typed words find rank before those only the glossary finds.
            direct = self._direct_matches(query, match, where) if expansions else None
            results = self._collect(
                query, q, where, limit=limit, offset=offset, sort=sort, snippets=snippets, direct=direct,
                expansions=expansions,
            )  # fmt: skip
        except QueryError as exc:  # a query Whoosh accepted but cannot run
            raise QuerySyntaxError(query, str(exc)) from None
        # A plain query that must match all its words and found something found
        # each of them: there is no word to correct.
        if results.total <= FEW_HITS and not (results.total and match == "all" and _plain(query)):
            results = replace(results, suggestion=self._suggestion(query, match, where, results.total))
        return replace(results, took_ms=_ms_since(started))

    def similar(
        self,
        ref: str,
        *,
        year: int | None = None,
        month: int | None = None,
        lang: str | None = None,
        limit: int = 10,
        offset: int = 0,
        snippets: bool = True,
    ) -> SearchResults:
        """The events most like event ``ref`` (an id or ``source:line``), best first.

        "Like" means sharing its most telling words (by how often the event uses
        them and how rare they are in the index); names in the glossary also
        bring in events that use their equivalents, in the other language.
        ``query`` of the result is ``ref``'s id.
        """
        started = time.perf_counter()
        searcher = self._current_searcher()
        docnum = self._docnum(ref)
        event = _event(searcher.stored_fields(docnum))
        words = [self._key_terms(searcher, field, event.text) for field in _SIMILAR_FIELDS[event.lang]]
        direct = wq.Or([q for group in words for q in group])
        expansions = [
            (name, other) for name in self._glossary().names_in(event.text) for other in self._glossary().equivalents([name])
        ]
        others = wq.Or([parse_query(_as_phrase(other), searcher.schema) for _, other in expansions])
        where = _where(year, month, lang)
        direct_found = self._matches(direct, where)

        def ranked(n: int) -> list[tuple[int, float | None]]:
            # Scores of the two queries are not comparable, so each is scaled to its
            # best match, and the equivalents' count half.
            scores: Counter[int] = Counter()
            for found, weight in ((direct_found, 1.0), (self._matches(others, where), EXPANSION_BOOST)):
                top = found.only(found.ids != docnum).top(max(n, SIMILAR_POOL))
                best = top[0][1] if top and top[0][1] else 1
                for d, score in top:
                    scores[d] += weight * score / best
            return _rounded(matching.Matches.of(scores).top(n))

        results = self._collect(
            event.id, wq.Or([direct, others]), where, limit=limit, offset=offset, sort="relevance",
            snippets=snippets, expansions=tuple(expansions), exclude=docnum, ranked=ranked,
            direct=direct_found.ids,
        )  # fmt: skip
        return replace(results, took_ms=_ms_since(started))

    def _key_terms(self, searcher: Searcher, field: str, text: str) -> list[wq.Query]:
        """The words of ``text`` in ``field`` that best tell it apart from other events.

        Words found in no other event cannot make it like any, and words found in
        every event tell none apart, so they are left out; of the rest, the rarer
        and the more often repeated come first.
        """
        reader = searcher.reader()
        with self._analysis_cache():
            counts = Counter(token.text for token in searcher.schema[field].analyzer(text, mode="index"))
        n = reader.doc_count_all()
        weights = {
            term: tf * math.log(n / df)
            for term, tf in counts.items()
            if 2 <= (df := reader.doc_frequency(field, term)) < n
        }
        best = sorted(weights, key=lambda term: (-weights[term], term))[:SIMILAR_TERMS]
        # Each word weighs in the query by its weight in the event, relative to
        # the heaviest (Elasticsearch's more_like_this with boost_terms).
        return [wq.Term(field, term, boost=weights[term] / weights[best[0]]) for term in best]

    def _collect(
        self,
        query: str,
        q: wq.Query,
        where: Mapping[str, Any],
        *,
        limit: int,
        offset: int,
        sort: Sort,
        snippets: bool,
        direct: np.ndarray | None = None,
        expansions: tuple[tuple[str, str], ...] = (),
        exclude: int | None = None,
        ranked: Callable[[int], list[tuple[int, float | None]]] | None = None,
    ) -> SearchResults:
        """Run ``q`` within ``where``: one page of hits, and the total and facets of all matches.

        ``direct`` are the matches that need no glossary expansion; they rank
        before the others, unless ``ranked(n)`` gives the best ``n`` itself.
        """
        searcher = self._snapshot
        columns = self._columns(searcher)
        n = offset + limit
        # Only the page needs exact scores, when nothing else reorders the matches.
        exact = n if sort == "relevance" and ranked is None and direct is None else None
        found = self._matches(q, where, best=exact)
        if exclude is not None:
            found = found.only(found.ids != exclude)
        best: list[tuple[int, float | None]] = []
        if sort == "chronological":
            best = [(docnum, None) for docnum in columns.earliest(found.ids, n)]
        elif ranked is not None:
            best = ranked(n) if limit and found else []
        elif direct is not None:
            is_direct = matching.isin(found.ids, direct)
            best = _rounded(found.only(is_direct).top(n))
            best += _rounded(found.only(~is_direct).top(n - len(best)))
        else:
            best = _rounded(found.top(n))
        page = best[offset:]
        sequences = query_sequences(q, searcher.reader()) if page and snippets else None
        found_by = self._found_by(expansions, [d for d, _ in page], direct)
        events = [_event(searcher.stored_fields(docnum)) for docnum, _ in page]
        # Highlighting a Janome word analyses each hit's text again; the
        # index's analysis cache spares running Janome for that.
        with self._analysis_cache() if sequences and "morph" in sequences else nullcontext() as cache:
            if cache is not None:
                cache.preload(event.text for event in events)
            hits = tuple(
                _hit(searcher.schema, event, score, sequences, found_by.get(docnum, ()))
                for event, (docnum, score) in zip(events, page)
            )
        facets = columns.tally(found.ids, ("year", "month", "lang"))
        return SearchResults(
            query=query, total=len(found), hits=hits, facets=facets, took_ms=0.0, expansions=expansions
        )

    def _suggestion(self, query: str, match: Match, where: Mapping[str, Any], total: int) -> str | None:
        """A corrected ``query`` that finds more than ``total`` events, or None."""
        searcher = self._snapshot
        reader = searcher.reader()

        def parse(text: str) -> wq.Query | None:
            try:
                return parse_query(text, searcher.schema, match=match, glossary=self._glossary())
            except QuerySyntaxError:
                return None

        def count(text: str, where: Mapping[str, Any] | None = None) -> int:
            q = parse(text)
            return 0 if q is None else len(self._matches(q, where or {}))

        def candidates(word: str, edits: int) -> list[tuple[str, int]]:
            field = "morph" if has_cjk(word) else "word"
            # Whoosh's automaton counts a transposition as two edits. Latin words
            # keep their first letter, as most typos do: that spares a walk of
            # the whole vocabulary.
            near = reader.terms_within(field, word, edits + 1, prefix=0 if has_cjk(word) else 1)
            return [(term, reader.doc_frequency(field, term)) for term in near]

        def known(word: str) -> bool:
            # Most words are in the lexicon as typed; the others need the analyzers,
            # and a word they drop whole (a stop word) has nothing to correct.
            if ("word", word) in reader or ("morph", word) in reader:
                return True
            q = parse(word)
            return q is None or q is wq.NullQuery or count(word) > 0

        better = suggest(query, known=known, candidates=candidates)
        return better if better is not None and count(better, where) > total else None

    def _matches(self, q: wq.Query, where: Mapping[str, Any], best: int | None = None) -> matching.Matches:
        """Every match of ``q`` with the column values in ``where``, and its score
        (exact for the ``best`` best at least, as :func:`matching.matches` says)."""
        searcher = self._snapshot
        allowed = self._columns(searcher).having(where) if where else None
        try:
            return matching.matches(searcher, q, best=best, keep=allowed)
        except matching.Unsupported:
            collector = UnlimitedCollector()
            searcher.search_with_collector(q, collector)
            return matching.Matches.of({d: score for score, d in collector.items if allowed is None or allowed[d]})

    def _direct_matches(self, query: str, match: Match, where: Mapping[str, Any]) -> np.ndarray:
        return self._matches(parse_query(query, self._snapshot.schema, match=match), where).ids

    def _found_by(
        self, expansions: tuple[tuple[str, str], ...], docnums: list[int], direct: np.ndarray | None
    ) -> dict[int, tuple[tuple[str, str], ...]]:
        """For each of ``docnums`` that only the glossary found, the expansions that match it."""
        if direct is None:
            return {}
        indirect = [d for d, known in zip(docnums, matching.isin(np.array(docnums, np.int64), direct)) if not known]
        if not indirect:
            return {}
        searcher = self._snapshot
        found: dict[int, list[tuple[str, str]]] = {}
        for typed, name in expansions:
            q = parse_query(_as_phrase(name), searcher.schema)
            docs = set(searcher.docs_for_query(q))
            for docnum in indirect:
                if docnum in docs:
                    found.setdefault(docnum, []).append((typed, name))
        return {docnum: tuple(pairs) for docnum, pairs in found.items()}

    def _columns(self, searcher: Searcher) -> Columns:
        """The columns of the searcher's commit, read once per commit."""
        if self._columns_cache is None or self._columns_cache[0] is not searcher:
            self._columns_cache = (searcher, Columns(searcher.reader()))
        return self._columns_cache[1]

    def _analysis_cache(self) -> AbstractContextManager[Any]:
        """The index's cache of Janome's analysis, read-only: analysing an indexed
        text again (for highlights, or an event's key words) then runs no Janome.

        It stays open while the commit does, so SQLite's own page cache stays warm;
        a new commit opens it again, in case the cache file was made since.
        """
        searcher = self._snapshot
        if self._janome_cache is None or self._janome_cache[0] is not searcher:
            self._close_janome_cache()
            path = Path(self._ix.storage.folder) / cache_file_name()
            self._janome_cache = (searcher, open_janome_cache(path, readonly=True))
        return using_janome_cache(self._janome_cache[1])

    def _glossary(self) -> Glossary:
        known = self._glossary_cache[0] if self._glossary_cache else None
        written, rows = indexed_glossary(self._ix, self._snapshot.reader().generation(), known)
        if rows is not None:
            self._glossary_cache = (written, Glossary(rows))
        return self._glossary_cache[1]

    def get(self, ref: str) -> Event:
        """The event with id ``ref`` (``source#ordinal``) or at ``source:line``."""
        return _event(self._current_searcher().stored_fields(self._docnum(ref)))

    def _docnum(self, ref: str) -> int:
        searcher = self._snapshot
        source, sep, line = ref.rpartition(":")
        # ASCII digits only ("²" is a digit to str.isdigit), and few enough for the line column's 32 bits.
        if sep and line.isascii() and line.isdigit() and len(line) <= 9:
            q: wq.Query = wq.And([wq.Term("source", source), wq.NumericRange("line", int(line), int(line))])
        else:
            q = wq.Term("id", ref)
        docnum = next(iter(searcher.docs_for_query(q)), None)
        if docnum is None:
            raise ChronsearchError(f"no event {ref!r} (give an id such as 'file.txt#3' or 'file.txt:12')")
        return docnum

    def stats(self) -> IndexStats:
        """Counts of the indexed events."""
        searcher = self._current_searcher()
        docnums = list(searcher.reader().all_doc_ids())
        counts = self._columns(searcher).tally(docnums, ("year", "month", "lang", "source"))
        return IndexStats(events=len(docnums), **counts)


def _hit(
    schema: Any, event: Event, score: float | None, sequences: Any, expansions: tuple[tuple[str, str], ...]
) -> Hit:
    if sequences is None:
        return Hit(**_fields(event), score=score, snippet=event.text, expansions=expansions)
    snippet, highlights = make_snippet(event.text, highlight_spans(event.text, sequences, schema))
    return Hit(**_fields(event), score=score, snippet=snippet, highlights=highlights, expansions=expansions)


def _rounded(best: list[tuple[int, float]]) -> list[tuple[int, float | None]]:
    """Scores rounded as results show them."""
    return [(docnum, round(score, 4)) for docnum, score in best]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _as_phrase(text: str) -> str:
    """``text`` as a quoted phrase of the query syntax."""
    return '"' + text.replace('"', " ") + '"'


def _fields(event: Event) -> dict[str, Any]:
    # dataclasses.asdict deep-copies, which costs more than the rest of a hit.
    return {name: getattr(event, name) for name in Event.__dataclass_fields__}


def _event(stored: Mapping[str, Any]) -> Event:
    """The event whose stored fields are ``stored``; an event without a month stores none."""
    return Event(**{name: stored.get(name) for name in Event.__dataclass_fields__})
