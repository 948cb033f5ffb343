"""Every match of a query and its score, read from whole postings lists at once.

Whoosh walks a query's postings one document at a time, through a tree of
matcher objects, at about 5 µs a match in Python. A search needs every match
anyway, because its total and facets count them all. So for the queries people
type (words, phrases, AND, OR and NOT over the event text, term filters, and
``*`` for every event) this module reads each term's postings in one piece,
unpickles them a block at a time, and combines them as ``{document number:
score}``. An AND starts from its rarest part; the other parts then unpickle only
the blocks that can hold its matches.

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

import heapq
import io
import operator
import pickle
import zlib
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable
from functools import reduce
from itertools import accumulate
from typing import Any

from whoosh import query as wq
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC
from whoosh.formats import Positions
from whoosh.scoring import BM25FScorer, WeightScorer

__all__ = ["Unsupported", "scores"]

Scores = dict[int, float]
# The documents a part of a query is asked about, when an AND has narrowed them down.
Within = Collection[int] | None


class Unsupported(Exception):
    """The query has a part that only Whoosh's matchers evaluate."""


def scores(
    searcher: Any, q: wq.Query, *, best: int | None = None, keep: Callable[[int], bool] | None = None
) -> Scores:
    """Every live document of the searcher's commit that matches ``q`` and that
    ``keep`` (given a document number) keeps, with its score.

    With ``best``, only the ``best`` highest-scoring matches are sure to carry their
    exact score. The others may carry less, never more, and never enough to rank
    among those: the word pairs that ``match="any"`` adds to an OR are then checked
    only in the events whose score they could lift into the best.
    """
    found: Scores = {}
    for leaf, offset in searcher.leaf_searchers():
        deleted = leaf.reader().deleted_docs_set
        kept = _kept(deleted, keep, offset) if deleted or keep is not None else None
        local = _Segment(leaf, best, kept).run(q)
        if not offset and not found:
            found = local
        else:
            found.update((docnum + offset, score) for docnum, score in local.items())
    return found


def _kept(deleted: frozenset[int], keep: Callable[[int], bool] | None, offset: int) -> Callable[[int], bool]:
    """Whether a segment keeps one of its documents: live, and kept by ``keep``."""
    if keep is None:
        return lambda docnum: docnum not in deleted
    return lambda docnum: docnum not in deleted and keep(docnum + offset)


class _Segment:
    """Evaluates queries over the postings of one segment, in its own document numbers."""

    def __init__(self, searcher: Any, best: int | None, kept: Callable[[int], bool] | None) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.best = best
        self.kept = kept
        # The scores of terms read whole: a query can name a term more than
        # once (the word pairs of match="any" repeat every word).
        self._whole_scores: dict[tuple[str, bytes], Scores] = {}

    def run(self, q: wq.Query) -> Scores:
        """The matches of ``q`` that the segment keeps; see :func:`scores` for ``best``."""
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

    def _kept(self, found: Scores) -> Scores:
        return found if self.kept is None else {d: s for d, s in found.items() if self.kept(d)}

    def _best_of_or(self, q: wq.Or, pairs: list[wq.Phrase], n: int) -> Scores:
        """An OR whose phrases add no matches, only score (each holds one of its
        terms): every match, exactly scored where it could rank in the best ``n``.

        A phrase scores the sum of its words' scores, so an event holding all its
        words can gain at most that. Events are checked in the order of what
        they could reach, until that is below the ``n``-th best exact score.
        """
        found = self._kept(_union([self.evaluate(sub) for sub in q.subqueries if not any(sub is p for p in pairs)]))
        reach = dict(found)
        open_: set[int] = set()  # events whose score is not known yet
        for pair in pairs:
            for d, gain in self._phrase_bound(pair).items():
                if d in reach:
                    reach[d] += gain
                    open_.add(d)
        exact = heapq.nlargest(n, ((s, -d) for d, s in found.items() if d not in open_))
        pending = sorted(zip(map(reach.__getitem__, open_), map(operator.neg, open_)), reverse=True)
        start, size = 0, max(4 * n, 64)
        while start < len(pending) and n:
            if len(exact) >= n and pending[start] < exact[-1]:
                break
            batch = {-negated for _, negated in pending[start : start + size]}
            start, size = start + size, 2 * size
            gains = _union([self._phrase(pair, batch) for pair in pairs])
            for d in batch:
                found[d] += gains.get(d, 0.0)
            exact = heapq.nlargest(n, exact + [(found[d], -d) for d in batch])
        return found

    def _phrase_bound(self, q: wq.Phrase) -> Scores:
        """The most phrase ``q`` can score in each event: the sum of its words' scores."""
        terms = [self._bytes(q.fieldname, word) for word in q.words]
        if any(term is None for term in terms):
            return {}
        return _boosted(reduce(_summed, [self._term_scores(q.fieldname, term, None) for term in terms]), q.boost)

    def evaluate(self, q: wq.Query, within: Within = None) -> Scores:
        """The matches of ``q``, only those in ``within`` when it is given."""
        kind = type(q)
        if q is wq.NullQuery or (within is not None and not within):
            return {}
        if kind is wq.Term:
            return self._term(q, within)
        if kind is wq.Phrase:
            return self._phrase(q, within)
        if kind is wq.And:
            return self._and(q, within)
        if kind is wq.Or and not q.minmatch and not q.scale:
            return _boosted(_union([self.evaluate(sub, within) for sub in q.subqueries]), q.boost)
        if kind is wq.Every and q.fieldname in (None, "", "*"):
            return dict.fromkeys(range(self.reader.doc_count_all()) if within is None else within, q.boost)
        if kind is wq.Not:  # inside an OR: every event without the words
            excluded = self.evaluate(q.query, within)
            candidates = range(self.reader.doc_count_all()) if within is None else within
            return {d: 1.0 for d in candidates if d not in excluded}
        if kind is wq.AndNot:
            found = self.evaluate(q.a, within)
            excluded = self.evaluate(q.b, found.keys())
            return {d: s for d, s in found.items() if d not in excluded}
        raise Unsupported(kind.__name__)

    def _and(self, q: wq.And, within: Within) -> Scores:
        positive = [sub for sub in q.subqueries if not isinstance(sub, wq.Not)]
        negative = [sub for sub in q.subqueries if isinstance(sub, wq.Not)]
        if not positive:  # NOT a NOT b: the first NOT gives the candidates
            positive, negative = negative[:1], negative[1:]
        # The rarest part first: the others then read only the blocks of their
        # postings that hold its matches.
        positive.sort(key=lambda sub: sub.estimate_size(self.reader))
        found: Scores | None = None
        for sub in positive:
            part = self.evaluate(sub, within if found is None else found.keys())
            found = part if found is None else _summed(found, part)
            if not found:
                return {}
        assert found is not None
        for sub in negative:
            excluded = self.evaluate(sub.query, found.keys())
            # Whoosh's matcher for NOT scores 1 in every document it lets through.
            found = {d: s + 1.0 for d, s in found.items() if d not in excluded}
        return _boosted(found, q.boost)

    def _term(self, q: wq.Term, within: Within) -> Scores:
        term = self._bytes(q.fieldname, q.text)
        if term is None:
            return {}
        return _boosted(self._term_scores(q.fieldname, term, within), q.boost)

    def _phrase(self, q: wq.Phrase, within: Within) -> Scores:
        """Documents holding the words at consecutive positions (Whoosh's phrase
        with its default slop of 1); the score is the sum of the words' scores."""
        field = self.reader.schema[q.fieldname] if q.fieldname in self.reader.schema else None
        if field is None or q.slop != 1 or not q.words or not field.format.supports("positions"):
            raise Unsupported("phrase that Whoosh must check")
        terms = [self._bytes(q.fieldname, word) for word in q.words]
        if any(term is None for term in terms):
            return {}
        # Rarest word first, as in an AND.
        order = sorted(range(len(terms)), key=lambda i: self.reader.doc_frequency(q.fieldname, terms[i]))
        scores: Scores | None = None
        positions: dict[int, dict[int, Any]] = {}
        for i in order:
            ids, weights, values = self._read(q.fieldname, terms[i], within if scores is None else scores.keys())
            part = self._scored(q.fieldname, terms[i], ids, weights)
            scores = part if scores is None else _summed(scores, part)
            positions[i] = dict(zip(ids, values))
            if not scores:
                return {}
        assert scores is not None
        decode = _positions if type(field.format) is Positions else field.format.decode_positions
        found = {}
        for docnum, score in scores.items():
            starts = set(decode(positions[0][docnum]))
            for i in range(1, len(terms)):
                starts &= {p - i for p in decode(positions[i][docnum])}
                if not starts:
                    break
            else:
                found[docnum] = score
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

    def _term_scores(self, fieldname: str, term: bytes, within: Within) -> Scores:
        """The scores of a term's postings in ``within``, or all."""
        key = (fieldname, term)
        whole = self._whole_scores.get(key)
        if whole is not None:
            return whole if within is None else {d: s for d in within if (s := whole.get(d)) is not None}
        ids, weights, _ = self._read(fieldname, term, within)
        found = self._scored(fieldname, term, ids, weights)
        if within is None:
            self._whole_scores[key] = found
        return found

    def _read(self, fieldname: str, term: bytes, within: Within) -> tuple[list[int], list[float], list[Any]]:
        """Document numbers, weights and values of a term's postings (those in
        ``within`` when it is given), deleted documents included."""
        terms = self.reader._terms
        info = terms.term_info(fieldname, term)
        ids: list[int] = []
        weights: list[float] = []
        values: list[Any] = []
        if info.is_inlined():  # a short list kept in the term's entry
            _keep(within, *info.inlined_postings(), ids, weights, values)
            return ids, weights, values
        # The postings are read in one piece and cut into blocks here, by the
        # layout of Whoosh's W3PostingsWriter (Whoosh is pinned): a header, then
        # per block its size (negative for the last), a pickled tuple of block
        # facts, and a pickled tuple of ids (as gaps), weights and values.
        offset, length = info.extent()
        if isinstance(length, tuple):  # Whoosh reads it back as struct.unpack's tuple
            (length,) = length
        raw = terms._postfile.get(offset, length)
        if raw[: len(WHOOSH3_HEADER_MAGIC)] != WHOOSH3_HEADER_MAGIC:
            raise Unsupported("postings in another layout")
        stream = io.BytesIO(raw)
        wanted = None if within is None else sorted(within)
        pos, last, previous_max = len(WHOOSH3_HEADER_MAGIC), False, -1
        while not last:
            size = int.from_bytes(raw[pos : pos + 4], "big", signed=True)
            last, end = size < 0, pos + 4 + abs(size)
            stream.seek(pos + 4)
            count, max_id, _, compression, _, _ = pickle.load(stream)
            data_start, pos = stream.tell(), end
            if wanted is not None:
                # A block that holds none of the wanted documents is never unpickled.
                nxt = bisect_left(wanted, previous_max + 1)
                if nxt == len(wanted):
                    break
                previous_max = max_id
                if wanted[nxt] > max_id:
                    continue
            data = raw[data_start:end]
            block_ids, block_weights, block_values = pickle.loads(zlib.decompress(data) if compression else data)
            if block_weights is None:
                block_weights = (1.0,) * count
            elif isinstance(block_weights, float):
                block_weights = (block_weights,) * count
            if not isinstance(block_values, tuple):  # formats without positions store none
                block_values = (None,) * count
            _keep(within, accumulate(block_ids), block_weights, block_values, ids, weights, values)
        return ids, weights, values

    def _scored(self, fieldname: str, term: bytes, ids: list[int], weights: list[float]) -> Scores:
        scorer = self.searcher.weighting.scorer(self.searcher, fieldname, term)
        if isinstance(scorer, WeightScorer):
            return dict(zip(ids, weights))
        if not isinstance(scorer, BM25FScorer):
            raise Unsupported(type(scorer).__name__)
        # Whoosh's bm25(), step for step, with the scorer's own field lengths
        # (the ranking model reads them in bulk, once per segment).
        idf, k1, b, avgfl, length = scorer.idf, scorer.K1, scorer.B, scorer.avgfl, scorer.dfl
        k1_plus_1 = k1 + 1
        return {d: idf * ((w * k1_plus_1) / (w + k1 * ((1 - b) + b * length(d) / avgfl))) for d, w in zip(ids, weights)}


def _positions(value: bytes) -> Iterable[int]:
    """Whoosh's Positions.decode_positions, in C but for the loop: the count of
    positions, then their gaps pickled without the final STOP opcode."""
    return accumulate(pickle.loads(value[4:] if value.endswith(b".") else value[4:] + b"."))


def _boosted(found: Scores, boost: float) -> Scores:
    if boost == 1.0:
        return found
    return {d: s * boost for d, s in found.items()}


def _summed(found: Scores, part: Scores) -> Scores:
    """The events in both, each with the sum of its two scores."""
    return {d: s + part[d] for d, s in found.items() if d in part}


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


def _keep(
    within: Within, block_ids: Iterable[int], block_weights: Iterable[float], block_values: Iterable[Any],
    ids: list[int], weights: list[float], values: list[Any],
) -> None:  # fmt: skip
    """Appends the postings of a block, those in ``within`` when it is given."""
    if within is None:
        ids += block_ids
        weights += block_weights
        values += block_values
        return
    for docnum, weight, value in zip(block_ids, block_weights, block_values):
        if docnum in within:
            ids.append(docnum)
            weights.append(weight)
            values.append(value)
