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
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from whoosh import query as wq
from whoosh.index import FileIndex
from whoosh.query import QueryError
from whoosh.qparser import FuzzyTermPlugin, GtLtPlugin, MultifieldParser, PhrasePlugin, Plugin, syntax
from whoosh.scoring import BM25F
from whoosh.searching import Searcher

from chronsearch.analysis import cache_file_name, janome_cache
from chronsearch.chronicle import CJK_CHARS, Event
from chronsearch.errors import ChronsearchError, QuerySyntaxError
from chronsearch.indexing import open_index
from chronsearch.schema import CONTENT_FIELDS, FIELD_BOOSTS
from chronsearch.snippets import highlight_spans, make_snippet, query_sequences

__all__ = ["ChronicleIndex", "Hit", "SearchResults", "IndexStats", "parse_query"]

Match = Literal["all", "any"]
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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "highlights": [list(span) for span in self.highlights]}


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A page of hits, with the total and facet counts over *all* matches."""

    query: str
    total: int
    hits: tuple[Hit, ...]
    facets: Mapping[str, Mapping[str, int]]
    took_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "hits": [hit.to_dict() for hit in self.hits],
            "facets": {name: dict(counts) for name, counts in self.facets.items()},
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
    """

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
                if len(segments) == 1:
                    node.text = segments[0]
                elif segments:
                    group[i] = syntax.AndGroup([_with_text(node, seg) for seg in segments])
        return group


def _with_text(node: Any, text: str) -> Any:
    part = copy.copy(node)
    part.text = text
    return part


def parse_query(text: str, schema: Any, *, match: Match = "all") -> wq.Query:
    """The Whoosh query for ``text``; raises :class:`QuerySyntaxError` if it has none."""
    if match not in ("all", "any"):
        raise ValueError(f"match must be 'all' or 'any', not {match!r}")
    if not text.strip() or text.strip() == "*":
        return wq.Every()
    group = syntax.AndGroup if match == "all" else syntax.OrGroup
    parser = MultifieldParser(list(CONTENT_FIELDS), schema, fieldboosts=FIELD_BOOSTS, group=group)
    parser.add_plugin(GtLtPlugin())
    parser.add_plugin(FuzzyTermPlugin())
    parser.add_plugin(_ContentWords())
    try:
        q = parser.parse(text)
    except Exception as exc:  # Whoosh's parser raises assorted errors on odd input
        raise QuerySyntaxError(text, str(exc) or type(exc).__name__) from None
    error = next((e for leaf in q.leaves() if (e := getattr(leaf, "error", None))), None)
    error = error or getattr(q, "error", None)
    if error:
        raise QuerySyntaxError(text, str(error))
    return q


def _filter_query(year: int | None, month: int | None, lang: str | None) -> wq.Query | None:
    parts: list[wq.Query] = []
    if year is not None:
        parts.append(wq.NumericRange("year", year, year))
    if month is not None:
        parts.append(wq.NumericRange("month", month, month))
    if lang is not None:
        parts.append(wq.Term("lang", lang))
    return wq.And(parts) if parts else None


def _counts(counter: Counter[Any]) -> dict[str, int]:
    return {str(key): counter[key] for key in sorted(counter)}


class ChronicleIndex:
    """An open chronicle index. Use :meth:`open`; close it, or use it as a context manager."""

    def __init__(self, ix: FileIndex) -> None:
        self._ix = ix
        self._searcher: Searcher | None = None

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

    def _current_searcher(self) -> Searcher:
        # refresh() is cheap when nothing changed, and picks up a new commit.
        if self._searcher is None:
            self._searcher = self._ix.searcher(weighting=BM25F())
        else:
            self._searcher = self._searcher.refresh()
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
    ) -> SearchResults:
        """Search the events; ``total`` and ``facets`` count every match, not just this page."""
        if sort not in ("relevance", "chronological"):
            raise ValueError(f"sort must be 'relevance' or 'chronological', not {sort!r}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        started = time.perf_counter()
        searcher = self._current_searcher()
        q = parse_query(query, searcher.schema, match=match)
        filt = _filter_query(year, month, lang)
        columns = _Columns(searcher)
        page: list[tuple[int, float | None]] = []
        try:
            matched = list(searcher.docs_for_query(q if filt is None else wq.And([q, filt])))
            if sort == "chronological":
                ordered = sorted(matched, key=columns.chronological_key)
                page = [(docnum, None) for docnum in ordered[offset : offset + limit]]
            elif limit and matched:
                results = searcher.search(q, limit=offset + limit, filter=filt)
                page = [(hit.docnum, round(hit.score, 4)) for hit in results[offset : offset + limit]]
        except QueryError as exc:  # a query Whoosh accepted but cannot run
            raise QuerySyntaxError(query, str(exc)) from None
        sequences = query_sequences(q, searcher.reader()) if page else {}
        # Highlighting analyses each hit's text again; the index's analysis
        # cache spares running Janome for that.
        with janome_cache(Path(self._ix.storage.folder) / cache_file_name(), readonly=True):
            hits = tuple(self._hit(searcher, docnum, score, sequences) for docnum, score in page)
        facets = columns.tally(matched, ("year", "month", "lang"))
        took_ms = round((time.perf_counter() - started) * 1000, 1)
        return SearchResults(query=query, total=len(matched), hits=hits, facets=facets, took_ms=took_ms)

    def _hit(self, searcher: Searcher, docnum: int, score: float | None, sequences: Any) -> Hit:
        event = _event(searcher.stored_fields(docnum))
        snippet, highlights = make_snippet(event.text, highlight_spans(event.text, sequences, searcher.schema))
        return Hit(**asdict(event), score=score, snippet=snippet, highlights=highlights)

    def get(self, ref: str) -> Event:
        """The event with id ``ref`` (``source#ordinal``) or at ``source:line``."""
        searcher = self._current_searcher()
        source, sep, line = ref.rpartition(":")
        if sep and line.isdigit() and "#" not in line:
            q: wq.Query = wq.And([wq.Term("source", source), wq.NumericRange("line", int(line), int(line))])
        else:
            q = wq.Term("id", ref)
        docnum = next(iter(searcher.docs_for_query(q)), None)
        if docnum is None:
            raise ChronsearchError(f"no event {ref!r} (give an id such as 'file.txt#3' or 'file.txt:12')")
        return _event(searcher.stored_fields(docnum))

    def stats(self) -> IndexStats:
        """Counts of the indexed events."""
        searcher = self._current_searcher()
        docnums = list(searcher.reader().all_doc_ids())
        counts = _Columns(searcher).tally(docnums, ("year", "month", "lang", "source"))
        return IndexStats(events=len(docnums), **counts)


def _event(stored: Mapping[str, Any]) -> Event:
    """The event whose stored fields are ``stored``; an event without a month stores none."""
    return Event(**{name: stored.get(name) for name in Event.__dataclass_fields__})


class _Columns:
    """Per-document values read from the index's columns, for facets and sorting."""

    def __init__(self, searcher: Searcher) -> None:
        reader = searcher.reader()
        self._cols = {name: reader.column_reader(name) for name in ("year", "month", "lang", "source", "line")}

    def month(self, docnum: int) -> int:
        """The event's month, or 0 for none: the column holds a sentinel out of 1-12 then."""
        month = self._cols["month"][docnum]
        return month if 1 <= month <= 12 else 0

    def value(self, name: str, docnum: int) -> Any:
        if name == "month":
            month = self.month(docnum)
            return f"{self._cols['year'][docnum]}-{month:02d}" if month else None
        return self._cols[name][docnum]

    def chronological_key(self, docnum: int) -> tuple[Any, ...]:
        cols = self._cols
        return (cols["year"][docnum], self.month(docnum), cols["source"][docnum], cols["line"][docnum])

    def tally(self, docnums: Iterable[int], names: Iterable[str]) -> dict[str, dict[str, int]]:
        tallies: dict[str, dict[str, int]] = {}
        docnums = list(docnums)
        for name in names:
            counter = Counter(self.value(name, d) for d in docnums)
            counter.pop(None, None)
            tallies[name] = _counts(counter)
        return tallies
