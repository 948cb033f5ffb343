"""Every match of a query and its score, read from whole postings lists at once.

Whoosh walks a query's postings one document at a time, through a tree of
matcher objects, at about 5 µs a match in Python. A search needs every match
anyway, because its total and facets count them all. So for the queries people
type (words, phrases, AND, OR and NOT over the event text, term filters, and
``*`` for every event) this module reads each term's postings as arrays
(:mod:`chronsearch.postings`) and combines whole lists with NumPy: sorted
document numbers and their scores. An AND starts from its rarest part; the
other parts then read only the blocks that can hold its matches. A phrase
matches where its words' positions, shifted by their place in it, meet.

The scores are Whoosh's own. Whoosh's scorer for each term gives the IDF,
average length and parameters, and the BM25 arithmetic runs in Whoosh's order.
The only difference is the order in which the scores of a document's terms are
added, so a score can differ from Whoosh's in its last bit.

A query with any other part (ranges, prefixes, fuzzy words) raises
:class:`Unsupported`, and the caller asks Whoosh's matchers instead.

    >>> scores(searcher, parse_query("zone AND park", searcher.schema))
    {12: 3.91, 40: 2.57}
    >>> matches(searcher, parse_query("zone AND park", searcher.schema))
    Matches(ids=array([12, 40]), scores=array([3.91, 2.57]))
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
from whoosh import query as wq
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25FScorer, WeightScorer

from chronsearch import postings
from chronsearch.postings import ArrayPositions

__all__ = ["Matches", "Unsupported", "isin", "matches", "scores"]


@dataclass(frozen=True)
class Matches:
    """Matching documents, in document-number order, and their scores."""

    ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, scores: Mapping[int, float]) -> Matches:
        ids = sorted(scores)
        return cls(np.array(ids, np.int64), np.array([scores[d] for d in ids], np.float64))

    def __len__(self) -> int:
        return len(self.ids)

    def only(self, mask: np.ndarray) -> Matches:
        """The matches where ``mask`` (one boolean per match) is true."""
        return Matches(self.ids[mask], self.scores[mask])

    def top(self, n: int) -> list[tuple[int, float]]:
        """The ``n`` best (document number, score); of equal scores the lower
        document number first, as in Whoosh."""
        return [(-negated, score) for score, negated in _nlargest(n, self.ids, self.scores)]


class Unsupported(Exception):
    """The query has a part that only Whoosh's matchers evaluate."""


_NONE = Matches(np.zeros(0, np.int64), np.zeros(0))


def matches(searcher: Any, q: wq.Query, *, best: int | None = None, keep: np.ndarray | None = None) -> Matches:
    """Every live document of the searcher's commit that matches ``q`` and that
    ``keep`` (a boolean per document number) keeps, with its score.

    With ``best``, only the ``best`` highest-scoring matches are sure to carry their
    exact score. The others may carry less, never more, and never enough to rank
    among those: the word pairs that ``match="any"`` adds to an OR are then checked
    only in the events whose score they could lift into the best.
    """
    found = []
    for leaf, offset in searcher.leaf_searchers():
        reader = leaf.reader()
        size = reader.doc_count_all()
        if not size:  # an index that never held an event: Whoosh's EmptyReader has no term table
            continue
        kept = None if keep is None else keep[offset : offset + size]
        if reader.has_deletions():
            kept = np.ones(size, bool) if kept is None else kept.copy()
            kept[list(reader.deleted_docs_set)] = False
        local = _Segment(leaf, size, best, kept).run(q)
        found.append(local if not offset else Matches(local.ids + offset, local.scores))
    if len(found) <= 1:
        return found[0] if found else _NONE
    return Matches(np.concatenate([m.ids for m in found]), np.concatenate([m.scores for m in found]))


def scores(searcher: Any, q: wq.Query, *, best: int | None = None, keep: np.ndarray | None = None) -> dict[int, float]:
    """:func:`matches` as ``{document number: score}``."""
    found = matches(searcher, q, best=best, keep=keep)
    return dict(zip(found.ids.tolist(), found.scores.tolist()))


class _Segment:
    """Evaluates queries over the postings of one segment, in its own document numbers."""

    def __init__(self, searcher: Any, size: int, best: int | None, kept: np.ndarray | None) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.size = size
        self.best = best
        self.kept = kept
        # The scores of terms read whole: a query can name a term more than
        # once (the word pairs of match="any" repeat every word).
        self._whole_scores: dict[tuple[str, bytes], Matches] = {}
        # Each lookup in Whoosh's term table costs tens of microseconds, and a
        # term is wanted for its size, its scorer and its postings.
        self._terms: dict[tuple[str, Any], tuple[bytes, Any] | None] = {}

    def run(self, q: wq.Query) -> Matches:
        """The matches of ``q`` that the segment keeps; see :func:`matches` for ``best``."""
        if self.best is not None and type(q) is wq.Or and not q.minmatch and not q.scale:
            terms = {(sub.fieldname, sub.text) for sub in q.subqueries if type(sub) is wq.Term}
            pairs = [
                sub
                for sub in q.subqueries
                if type(sub) is wq.Phrase and any((sub.fieldname, word) in terms for word in sub.words)
            ]
            if pairs:
                return _boosted(self._best_of_or(q, pairs, self.best), q.boost)
        return self._kept(self.evaluate(q))

    def _kept(self, found: Matches) -> Matches:
        return found if self.kept is None else found.only(self.kept[found.ids])

    def _best_of_or(self, q: wq.Or, pairs: list[wq.Phrase], n: int) -> Matches:
        """An OR whose phrases add no matches, only score (each holds one of its
        terms): every match, exactly scored where it could rank in the best ``n``.

        A phrase scores the sum of its words' scores, so an event holding all its
        words can gain at most that. Events are checked in the order of what
        they could reach, until that is below the ``n``-th best exact score.
        """
        others = [sub for sub in q.subqueries if not any(sub is p for p in pairs)]
        found = self._kept(self._union([self.evaluate(sub) for sub in others]))
        bound = _within(self._union([self._phrase_bound(pair) for pair in pairs]), found.ids)
        at = np.searchsorted(found.ids, bound.ids)
        scores = found.scores.copy()
        reach = found.scores.copy()
        reach[at] += bound.scores
        is_open = np.zeros(len(found.ids), bool)  # events whose score is not known yet
        is_open[at] = True
        settled = np.flatnonzero(~is_open)
        exact = _nlargest(n, found.ids[settled], scores[settled])
        # Open events by what they could reach, best first (of equal, the lower number).
        pending = np.flatnonzero(is_open)
        pending = pending[np.lexsort((found.ids[pending], -reach[pending]))]
        start, size = 0, max(4 * n, 64)
        while start < len(pending) and n:
            first = pending[start]
            if len(exact) >= n and (reach[first], -found.ids[first]) < exact[-1]:
                break
            batch = np.sort(pending[start : start + size])
            start, size = start + size, 2 * size
            gains = self._union([self._phrase(pair, found.ids[batch]) for pair in pairs])
            scores[np.searchsorted(found.ids, gains.ids)] += gains.scores
            exact = heapq.nlargest(n, exact + _nlargest(n, found.ids[batch], scores[batch]))
        return Matches(found.ids, scores)

    def _phrase_bound(self, q: wq.Phrase) -> Matches:
        """The most phrase ``q`` can score in each event: the sum of its words' scores."""
        terms = [self._lookup(q.fieldname, word) for word in q.words]
        if any(term is None for term in terms):
            return _NONE
        return _boosted(reduce(_summed, [self._term_scores(q.fieldname, term, None) for term in terms]), q.boost)

    def evaluate(self, q: wq.Query, within: np.ndarray | None = None) -> Matches:
        """The matches of ``q``, only those in ``within`` (sorted document numbers) when it is given."""
        kind = type(q)
        if q is wq.NullQuery or (within is not None and not len(within)):
            return _NONE
        if kind is wq.Term:
            return self._term(q, within)
        if kind is wq.Phrase:
            return self._phrase(q, within)
        if kind is wq.And:
            return self._and(q, within)
        if kind is wq.Or and not q.minmatch and not q.scale:
            return _boosted(self._union([self.evaluate(sub, within) for sub in q.subqueries]), q.boost)
        if kind is wq.Every and q.fieldname in (None, "", "*"):
            ids = np.arange(self.size) if within is None else within
            return Matches(ids, np.full(len(ids), q.boost))
        if kind is wq.Not:  # inside an OR: every event without the words
            candidates = np.arange(self.size) if within is None else within
            excluded = self.evaluate(q.query, within)
            ids = candidates[~isin(candidates, excluded.ids)]
            return Matches(ids, np.ones(len(ids)))
        if kind is wq.AndNot:
            found = self.evaluate(q.a, within)
            return found.only(~isin(found.ids, self.evaluate(q.b, found.ids).ids))
        raise Unsupported(kind.__name__)

    def _and(self, q: wq.And, within: np.ndarray | None) -> Matches:
        positive = [sub for sub in q.subqueries if not isinstance(sub, wq.Not)]
        negative = [sub for sub in q.subqueries if isinstance(sub, wq.Not)]
        if not positive:  # NOT a NOT b: the first NOT gives the candidates
            positive, negative = negative[:1], negative[1:]
        # The rarest part first: the others then read only the blocks of their
        # postings that hold its matches.
        positive.sort(key=self._size)
        found: Matches | None = None
        for sub in positive:
            part = self.evaluate(sub, within if found is None else found.ids)
            found = part if found is None else _summed(found, part)
            if not len(found.ids):
                return _NONE
        assert found is not None
        for sub in negative:
            found = found.only(~isin(found.ids, self.evaluate(sub.query, found.ids).ids))
            # Whoosh's matcher for NOT scores 1 in every document it lets through.
            found = Matches(found.ids, found.scores + 1.0)
        return _boosted(found, q.boost)

    def _size(self, q: wq.Query) -> int:
        """Whoosh's ``estimate_size``, from the terms this query looks up anyway."""
        kind = type(q)
        if kind is wq.Term or kind is wq.Phrase:
            words = [q.text] if kind is wq.Term else q.words
            terms = [self._lookup(q.fieldname, word) for word in words]
            return min((0 if term is None else term[1].doc_frequency() for term in terms), default=0)
        if kind is wq.And:
            return min((self._size(sub) for sub in q.subqueries), default=0)
        if kind is wq.Or:
            return min(sum(self._size(sub) for sub in q.subqueries), self.reader.doc_count())
        return q.estimate_size(self.reader)

    def _term(self, q: wq.Term, within: np.ndarray | None) -> Matches:
        term = self._lookup(q.fieldname, q.text)
        if term is None:
            return _NONE
        return _boosted(self._term_scores(q.fieldname, term, within), q.boost)

    def _phrase(self, q: wq.Phrase, within: np.ndarray | None) -> Matches:
        """Documents holding the words at consecutive positions (Whoosh's phrase
        with its default slop of 1); the score is the sum of the words' scores."""
        field = self.reader.schema[q.fieldname] if q.fieldname in self.reader.schema else None
        if field is None or q.slop != 1 or not q.words or type(field.format) is not ArrayPositions:
            raise Unsupported("phrase that Whoosh must check")
        terms = [self._lookup(q.fieldname, word) for word in q.words]
        if any(term is None for term in terms):
            return _NONE
        # Rarest word first, as in an AND.
        order = sorted(range(len(terms)), key=lambda i: terms[i][1].doc_frequency())
        found: Matches | None = None
        lists: dict[int, postings.Postings] = {}
        for i in order:
            lists[i] = self._read(terms[i], within if found is None else found.ids, positions=True)
            part = self._scored(q.fieldname, terms[i], lists[i])
            if found is not None:
                found = _summed(found, part)
            else:  # the blocks read hold other events too
                found = part if within is None else _within(part, within)
            if not len(found.ids):
                return _NONE
        assert found is not None
        # Each word's (event, position less its place in the phrase); the phrase
        # starts where all of them meet.
        starts: np.ndarray | None = None
        for i in order:
            words = lists[i]
            shifted = words.positions - i
            keep = np.repeat(isin(words.ids, found.ids), words.counts) & (shifted >= 0)
            keys = (np.repeat(words.ids, words.counts)[keep] << 32) | shifted[keep]  # sorted, as postings are
            starts = keys if starts is None else starts[isin(starts, keys)]
            if not len(starts):
                return _NONE
        assert starts is not None
        # Sorted, so each event's first start is where the event changes: no
        # need for np.unique's hashing, a fifth of a common phrase's time.
        events = starts >> 32
        first = np.ones(len(events), bool)
        np.not_equal(events[1:], events[:-1], out=first[1:])
        return _boosted(_within(found, events[first]), q.boost)

    def _lookup(self, fieldname: str, text: Any) -> tuple[bytes, Any] | None:
        """The term as the index stores it and its term info, or None when the
        segment has no such term."""
        key = (fieldname, text)
        if key not in self._terms:
            self._terms[key] = self._find(fieldname, text)
        return self._terms[key]

    def _find(self, fieldname: str, text: Any) -> tuple[bytes, Any] | None:
        if fieldname not in self.reader.schema:
            return None
        try:
            term = self.reader._text_to_bytes(fieldname, text)
            return term, self.reader._terms.term_info(fieldname, term)
        except (ValueError, TermNotFound):
            return None

    def _term_scores(self, fieldname: str, term: tuple[bytes, Any], within: np.ndarray | None) -> Matches:
        """The scores of a term's postings in ``within``, or all."""
        key = (fieldname, term[0])
        whole = self._whole_scores.get(key)
        if whole is None:
            found = self._scored(fieldname, term, self._read(term, within, positions=False))
            if within is not None:
                return _within(found, within)
            whole = self._whole_scores[key] = found
        return whole if within is None else _within(whole, within)

    def _read(self, term: tuple[bytes, Any], within: np.ndarray | None, positions: bool) -> postings.Postings:
        """A term's postings: whole, or the blocks that can hold ``within``."""
        info = term[1]
        if not isinstance(self.reader.codec(), postings.Codec) or info.is_inlined():
            raise Unsupported("postings in another layout")
        return postings.read(self.reader._terms, info, within, positions)

    def _scored(self, fieldname: str, term: tuple[bytes, Any], found: postings.Postings) -> Matches:
        scorer = self.searcher.weighting.scorer(self.searcher, fieldname, term[0])
        if isinstance(scorer, WeightScorer):
            return Matches(found.ids, found.weights)
        if not isinstance(scorer, BM25FScorer):
            raise Unsupported(type(scorer).__name__)
        # Whoosh's bm25(), step for step, with the scorer's own field lengths.
        lengths = getattr(scorer.dfl, "__self__", None)
        if isinstance(lengths, np.ndarray):  # read in bulk by the ranking model
            length = lengths[found.ids]
        else:
            length = np.fromiter(map(scorer.dfl, found.ids.tolist()), np.float64, len(found.ids))
        idf, k1, b, avgfl, w = scorer.idf, scorer.K1, scorer.B, scorer.avgfl, found.weights
        return Matches(found.ids, idf * ((w * (k1 + 1)) / (w + k1 * ((1 - b) + b * length / avgfl))))

    def _union(self, parts: Iterable[Matches]) -> Matches:
        """The events in any part, each with the sum of its scores."""
        parts = [part for part in parts if len(part.ids)]
        if len(parts) <= 1:
            return parts[0] if parts else _NONE
        total = np.zeros(self.size)
        seen = np.zeros(self.size, bool)
        for part in parts:
            total[part.ids] += part.scores  # a part names each event once
            seen[part.ids] = True
        ids = np.flatnonzero(seen)
        return Matches(ids, total[ids])


def isin(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Whether each of ``ids`` is one of ``sorted_ids``."""
    return _places(ids, sorted_ids)[1]


def _places(ids: np.ndarray, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``ids`` is in ``sorted_ids``, and whether it is there at all."""
    if not len(sorted_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    at = np.searchsorted(sorted_ids, ids)
    at[at == len(sorted_ids)] = 0  # past the end: compares with a smaller number
    return at, sorted_ids[at] == ids


def _within(found: Matches, sorted_ids: np.ndarray) -> Matches:
    return found.only(isin(found.ids, sorted_ids))


def _boosted(found: Matches, boost: float) -> Matches:
    return found if boost == 1.0 else Matches(found.ids, found.scores * boost)


def _summed(found: Matches, part: Matches) -> Matches:
    """The events in both, each with the sum of its two scores."""
    if not len(part.ids):
        return _NONE
    at, both = _places(found.ids, part.ids)
    return Matches(found.ids[both], found.scores[both] + part.scores[at[both]])


def _nlargest(n: int, ids: np.ndarray, scores: np.ndarray) -> list[tuple[float, int]]:
    """The ``n`` best as (score, -document number), best first: of equal scores,
    the lower document number."""
    if n <= 0:
        return []
    if len(scores) > n:  # all that tie with the n-th best, then the exact order of those
        candidates = scores >= np.partition(scores, len(scores) - n)[len(scores) - n]
        ids, scores = ids[candidates], scores[candidates]
    return heapq.nlargest(n, zip(scores.tolist(), (-ids).tolist()))
