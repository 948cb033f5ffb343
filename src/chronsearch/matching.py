"""Every match of a query and its score, read from whole postings lists at once.

Whoosh walks a query's postings one document at a time, through a tree of
matcher objects, at about 5 µs a match in Python. A search needs every match
anyway, because its total and facets count them all. So for the queries people
type (words, phrases, AND, OR and NOT over the event text, term filters, and
``*`` for every event)
this module reads each term's postings a block at a time and combines them as
``{document number: score}``.

The scores are Whoosh's own. Whoosh's scorer for each term gives the IDF,
average length and parameters, and the BM25 arithmetic runs in Whoosh's order.
The only difference is the order in which the scores of a document's terms are
added, so a score can differ from Whoosh's in its last bit.

A query with any other part (ranges, prefixes, fuzzy words) raises
:class:`Unsupported`, and the caller asks Whoosh's matchers instead.

    >>> scores(searcher, parse_query("zone AND park", searcher.schema))
    {12: 3.91, 40: 2.57}
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from whoosh import query as wq
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.scoring import BM25FScorer, WeightScorer

from chronsearch.columns import field_lengths

__all__ = ["Unsupported", "scores"]

Scores = dict[int, float]


class Unsupported(Exception):
    """The query has a part that only Whoosh's matchers evaluate."""


def scores(searcher: Any, q: wq.Query) -> Scores:
    """Every live document of the searcher's commit that matches ``q``, with its score."""
    found: Scores = {}
    for leaf, offset in searcher.leaf_searchers():
        local = _Segment(leaf).evaluate(q)
        deleted = leaf.reader().deleted_docs_set
        if not offset and not deleted and not found:
            found = local
        else:
            found.update((docnum + offset, score) for docnum, score in local.items() if docnum not in deleted)
    return found


# A segment's K1 * (1 - B + B * length / average length), per field and
# parameters: the part of BM25 that depends only on the document.
_NORMS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], list[float]]] = weakref.WeakKeyDictionary()


class _Segment:
    """Evaluates queries over the postings of one segment, in its own document numbers."""

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()

    def evaluate(self, q: wq.Query) -> Scores:
        kind = type(q)
        if q is wq.NullQuery:
            return {}
        if kind is wq.Term:
            return self._term(q)
        if kind is wq.Phrase:
            return self._phrase(q)
        if kind is wq.And:
            return self._and(q)
        if kind is wq.Or and not q.minmatch and not q.scale:
            return _boosted(_union([self.evaluate(sub) for sub in q.subqueries]), q.boost)
        if kind is wq.Every and q.fieldname in (None, "", "*"):
            return dict.fromkeys(range(self.reader.doc_count_all()), q.boost)
        if kind is wq.Not:  # inside an OR: every event without the words
            excluded = self.evaluate(q.query)
            return {d: 1.0 for d in range(self.reader.doc_count_all()) if d not in excluded}
        if kind is wq.AndNot:
            excluded = self.evaluate(q.b)
            return {d: s for d, s in self.evaluate(q.a).items() if d not in excluded}
        raise Unsupported(kind.__name__)

    def _and(self, q: wq.And) -> Scores:
        positive = [self.evaluate(sub) for sub in q.subqueries if not isinstance(sub, wq.Not)]
        if not positive:
            raise Unsupported("And of nothing but Not")
        found = _intersection(positive)
        for sub in q.subqueries:
            if isinstance(sub, wq.Not) and found:
                excluded = self.evaluate(sub.query)
                # Whoosh's matcher for NOT scores 1 in every document it lets through.
                found = {d: s + 1.0 for d, s in found.items() if d not in excluded}
        return _boosted(found, q.boost)

    def _term(self, q: wq.Term) -> Scores:
        term = self._bytes(q.fieldname, q.text)
        if term is None:
            return {}
        ids, weights, _ = self._postings(q.fieldname, term)
        return _boosted(self._scored(q.fieldname, term, ids, weights), q.boost)

    def _phrase(self, q: wq.Phrase) -> Scores:
        """Documents holding the words at consecutive positions (Whoosh's phrase
        with its default slop of 1); the score is the sum of the words' scores."""
        field = self.reader.schema[q.fieldname] if q.fieldname in self.reader.schema else None
        if field is None or q.slop != 1 or not q.words or not field.format.supports("positions"):
            raise Unsupported("phrase that Whoosh must check")
        terms = [self._bytes(q.fieldname, word) for word in q.words]
        if any(term is None for term in terms):
            return {}
        per_word = []
        for term in terms:
            ids, weights, values = self._postings(q.fieldname, term)
            per_word.append((self._scored(q.fieldname, term, ids, weights), dict(zip(ids, values))))
        found = _intersection([word_scores for word_scores, _ in per_word])
        decode = field.format.decode_positions
        for docnum in list(found):
            starts = set(decode(per_word[0][1][docnum]))
            for i, (_, values) in enumerate(per_word[1:], 1):
                starts.intersection_update(p - i for p in decode(values[docnum]))
                if not starts:
                    del found[docnum]
                    break
        return _boosted(found, q.boost)

    def _bytes(self, fieldname: str, text: Any) -> bytes | None:
        """The term as the index stores it, or None when the segment has no such term."""
        if fieldname not in self.reader.schema:
            return None
        try:
            term = self.reader._text_to_bytes(fieldname, text)
        except ValueError:
            return None
        return term if (fieldname, term) in self.reader else None

    def _postings(self, fieldname: str, term: bytes) -> tuple[list[int], list[float], list[Any]]:
        """Document numbers, weights and values of a term's postings, deleted documents included."""
        matcher = self.reader._terms.matcher(fieldname, term, self.reader.schema[fieldname].format)
        ids: list[int] = []
        weights: list[float] = []
        values: list[Any] = []
        if not isinstance(matcher, W3LeafMatcher):  # a short list kept inline in the term's entry
            while matcher.is_active():
                ids.append(matcher.id())
                weights.append(matcher.weight())
                values.append(matcher.value())
                matcher.next()
            return ids, weights, values
        # A block is one pickled tuple of ids (as gaps), weights and values; see
        # Whoosh's W3PostingsWriter. Whoosh is pinned, so the layout cannot change.
        while matcher.is_active():
            matcher._read_data()
            block_ids, block_weights, block_values = matcher._data
            count = matcher._blocklength
            ids += accumulate(block_ids)
            if block_weights is None:
                weights += [1.0] * count
            elif isinstance(block_weights, float):
                weights += [block_weights] * count
            else:
                weights += block_weights
            # Positions are a tuple of bytes; formats without them store none.
            values += block_values if isinstance(block_values, tuple) else [None] * count
            matcher._next_block()
        return ids, weights, values

    def _scored(self, fieldname: str, term: bytes, ids: list[int], weights: list[float]) -> Scores:
        scorer = self.searcher.weighting.scorer(self.searcher, fieldname, term)
        if isinstance(scorer, WeightScorer):
            return dict(zip(ids, weights))
        if not isinstance(scorer, BM25FScorer):
            raise Unsupported(type(scorer).__name__)
        norms = self._norms(fieldname, scorer)
        idf, k1_plus_1 = scorer.idf, scorer.K1 + 1
        # Whoosh's bm25(), with its division by the document's norm spelled out.
        return {d: idf * ((w * k1_plus_1) / (w + norms[d])) for d, w in zip(ids, weights)}

    def _norms(self, fieldname: str, scorer: BM25FScorer) -> list[float]:
        key = (fieldname, scorer.B, scorer.K1, scorer.avgfl)
        per_reader = _NORMS.setdefault(self.reader, {})
        if key not in per_reader:
            lengths = field_lengths(self.reader, fieldname)
            if lengths is None:
                raise Unsupported(f"no lengths for {fieldname}")
            k1, b, avgfl = scorer.K1, scorer.B, scorer.avgfl
            per_reader[key] = [k1 * ((1 - b) + b * length / avgfl) for length in lengths]
        return per_reader[key]


def _boosted(found: Scores, boost: float) -> Scores:
    if boost == 1.0:
        return found
    return {d: s * boost for d, s in found.items()}


def _union(parts: Iterable[Scores]) -> Scores:
    found: Scores = {}
    for part in parts:
        if not found:
            found = dict(part)
            continue
        get = found.get
        for d, s in part.items():
            found[d] = get(d, 0.0) + s
    return found


def _intersection(parts: list[Scores]) -> Scores:
    if any(not part for part in parts):
        return {}
    first = min(range(len(parts)), key=lambda i: len(parts[i]))
    smallest, others = parts[first], parts[:first] + parts[first + 1 :]
    found = {}
    for d, s in smallest.items():
        total = s
        for part in others:
            other = part.get(d)
            if other is None:
                break
            total += other
        else:
            found[d] = total
    return found
