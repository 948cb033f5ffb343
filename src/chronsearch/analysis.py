"""Analyzers: how event text becomes index terms.

Every analyzer first normalizes the text with :func:`normalize` (NFKC, then
lowercase), so ``ＩＢＭ``, ``IBM`` and ``ibm`` are one term, and then maps each
token back to character offsets in the *original* text, so highlighting is exact::

    >>> [(t.text, t.startchar, t.endchar) for t in ENGLISH(
    ...     "ＩＢＭ investigated", chars=True)]
    [('ibm', 0, 3), ('investigated', 4, 16)]
    >>> [(t.text, t.startchar, t.endchar) for t in JAPANESE(
    ...     "ＩＢＭの拠点が設立された。", chars=True)]
    [('拠点', 4, 6), ('設立', 7, 9)]
    >>> [t.text for t in CJK_BIGRAMS("高新区")]
    ['高新', '新区']

Four analyzers feed five fields (see :mod:`chronsearch.schema`):

- ``ENGLISH`` / ``ENGLISH_STEMS``: Latin-script words of any event, exact and
  Porter-stemmed, with English stop words removed.
- ``JAPANESE``: Janome base forms of Japanese events; particles, auxiliaries,
  symbols and a few empty verbs and nouns dropped.
- ``CJK_BIGRAMS`` / ``CJK_UNIGRAMS``: overlapping character bigrams of every run of
  CJK characters, and single characters. They guarantee recall whatever Janome
  does: a CJK string that occurs in an event's normalized text is a phrase of
  adjacent bigrams in it (or, for one character, a unigram).

Janome is imported and its dictionary loaded on first use, once per process;
text without a CJK character never loads it. Analyzers are pickled into the index
with the schema, so they hold no Janome object, only their settings.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import itertools
import multiprocessing
import os
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, TypeVar

from janome import __version__ as janome_version  # only the version module, not the tokenizer
from whoosh.analysis import CompositeAnalyzer, StemFilter, StopFilter, Token, Tokenizer

from chronsearch.chronicle import CJK_CHARS

if TYPE_CHECKING:
    from janome.tokenizer import Tokenizer as JanomeTokenizerType

T = TypeVar("T")

__all__ = [
    "normalize",
    "Normalized",
    "ENGLISH",
    "ENGLISH_STEMS",
    "JAPANESE",
    "CJK_BIGRAMS",
    "CJK_UNIGRAMS",
    "ANALYSIS_VERSION",
    "indexed_terms",
    "indexed_spans",
]

# Bump when any analyzer's output changes: the index name carries it, so an index
# made by older analyzers is rebuilt instead of being searched with new ones.
ANALYSIS_VERSION = 3

# Lucene's English stop set (Elasticsearch's `_english_`). Whoosh's own list also
# drops "may" and "us", which are real words in a chronicle.
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the"
    " their then there these they this to was will with".split()
)

# Base forms that carry no meaning of their own; the first group is kuromoji's
# default Japanese stop list, trimmed to the words Janome gives as base forms.
JAPANESE_STOP_WORDS = frozenset(
    "する ある いる なる れる られる せる させる できる おる くる いく"
    " こと もの ため よう これ それ あれ この その あの ここ そこ"
    " ところ とき".split()
)
# Janome's part-of-speech majors that never help a search.
_DROPPED_POS = ("助詞", "助動詞", "記号", "フィラー")

_CJK = re.compile(CJK_CHARS)
_CJK_RUN = re.compile(CJK_CHARS + "+")
# A Latin-script word: letters joined by inner dots and apostrophes ("u.s",
# "zone's"), or a number ("3.6", "1,000"). Letters and digits split, as
# Elasticsearch's word delimiter does, so "3.6㎢" (NFKC "3.6km2") holds "km" "2"
# and the query "㎢" is the phrase "km 2". CJK_CHARS is "[...]"; its body is
# reused inside the negated classes.
_LETTERS = r"[^\W\d_{cjk}]+".format(cjk=CJK_CHARS[1:-1])
_LATIN_WORD = re.compile(rf"{_LETTERS}(?:['.’]{_LETTERS})*|\d+(?:[.,]\d+)*")
_POSSESSIVE = ("'s", "’s")

# Characters that NFKC composes with the character before them even though they
# are not combining marks: half-width katakana (semi-)voiced sound marks.
_COMPOSING = frozenset("\uff9e\uff9f")


class Normalized(NamedTuple):
    """Normalized text, and for each of its characters the span it came from."""

    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the normalized characters ``start:end``."""
        return self.starts[start], self.ends[end - 1]


@functools.lru_cache(maxsize=64)
def normalize(text: str) -> Normalized:
    """NFKC and lowercase ``text``, keeping a map back to the original offsets.

    The text is normalized one base character (with its combining marks) at a
    time, so every normalized character knows which original characters it
    came from; ``"㎡"`` becomes ``"m2"``, both characters mapping to the one
    original. Each field of an event analyses the same text, so the last few
    results are kept.
    """
    if _unchanged(text):
        # Nothing moves: every character maps to itself.
        return Normalized(text.lower(), range(len(text)), range(1, len(text) + 1))
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    _normalize_into(text, 0, len(text), pieces, starts, ends)
    return Normalized("".join(pieces), starts, ends)


def _unchanged(text: str) -> bool:
    """Whether normalizing ``text`` only lowercases it, one character for one."""
    return unicodedata.is_normalized("NFKC", text) and len(text.lower()) == len(text)


def _normalize_into(text: str, i: int, j: int, pieces: list[str], starts: list[int], ends: list[int]) -> None:
    """Normalize ``text[i:j]``: halves that need only lowercasing are taken whole,
    so a long text with a few full-width characters costs a few C calls, not a
    Python step per character. A half never starts at a combining mark."""
    if j - i > 16:
        mid = (i + j) // 2
        while mid < j and _joins(text[mid]):
            mid += 1
        if mid < j:
            for a, b in ((i, mid), (mid, j)):
                # Taken whole only if no character joins the one before it (each
                # is then its own piece), and without Σ, which lowercases by context.
                part = text[a:b]
                if _unchanged(part) and "Σ" not in part and not any(map(_joins, part)):
                    pieces.append(part.lower())
                    starts.extend(range(a, b))
                    ends.extend(range(a + 1, b + 1))
                else:
                    _normalize_into(text, a, b, pieces, starts, ends)
            return
    while i < j:
        k = i + 1
        while k < j and _joins(text[k]):
            k += 1
        piece = unicodedata.normalize("NFKC", text[i:k]).lower()
        pieces.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([k] * len(piece))
        i = k


def _joins(ch: str) -> bool:
    """Whether ``ch`` is normalized together with the character before it."""
    return ch in _COMPOSING or unicodedata.combining(ch) > 0


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a character searched through CJK n-grams."""
    return _CJK.search(text) is not None


@functools.cache
def _janome() -> JanomeTokenizerType:
    # Importing Janome and loading its dictionary takes about 0.3 s, so it
    # happens once per process and only when Japanese text needs it.
    from janome.tokenizer import Tokenizer as Janome

    return Janome()


class NormalizingTokenizer(Tokenizer):
    """Base of the tokenizers here: normalize, split, map offsets back.

    Subclasses implement :meth:`terms`, which yields ``(position, term, start,
    end)`` with offsets into the normalized text; a tokenizer leaves a gap in
    the positions where a phrase must not match across.
    """

    def terms(self, text: str, mode: str) -> Iterator[tuple[int, str, int, int]]:
        raise NotImplementedError

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: object,
    ) -> Iterator[Token]:
        norm = normalize(value)
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if tokenize:
            terms = self.terms(norm.text, mode)
        else:
            # Wildcard and prefix queries ask for the whole string as one term.
            terms = iter([(0, norm.text, 0, len(norm.text))] if norm.text else [])
        for pos, term, start, end in terms:
            token.text = term
            token.boost = 1.0
            token.stopped = False
            orig_start, orig_end = norm.span(start, end)
            if keeporiginal:
                token.original = value[orig_start:orig_end]
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar = start_char + orig_start
                token.endchar = start_char + orig_end
            yield token


class LatinWordTokenizer(NormalizingTokenizer):
    """Latin-script words and numbers; CJK characters separate words and are left out."""

    def terms(self, text: str, mode: str) -> Iterator[tuple[int, str, int, int]]:
        for pos, match in enumerate(_LATIN_WORD.finditer(text)):
            word = match.group()
            yield pos, word[:-2] if word.endswith(_POSSESSIVE) else word, match.start(), match.end()


def indexed_terms(analyzer: Any, text: str) -> list[tuple[int, str]] | None:
    """The ``(position, term)`` pairs ``analyzer`` indexes for ``text``, in order:
    what its tokens say in index mode, or None for an analyzer not built here.

    Indexing asks every field's analyzer for its terms, and Whoosh's way, one
    ``Token`` through every filter per word, costs more than finding the words.
    The English fields share one split of the text into words.
    """
    if isinstance(analyzer, NormalizingTokenizer):
        return [(pos, term) for pos, term, _, _ in analyzer.terms(normalize(text).text, "index")]
    if not (isinstance(analyzer, CompositeAnalyzer) and isinstance(analyzer.items[0], LatinWordTokenizer)):
        return None
    terms = [(pos, term) for pos, term, _, _ in _latin_words(text)]
    for step in analyzer.items[1:]:
        if type(step) is StopFilter and not step.renumber:
            shortest, longest, stops = step.min, step.max, step.stops
            terms = [
                (pos, term)
                for pos, term in terms
                if len(term) >= shortest and (longest is None or len(term) <= longest) and term not in stops
            ]
        elif type(step) is StemFilter and step.lang and not step.ignore:
            stem = _stemmer(step.lang)
            terms = [(pos, stem(term)) for pos, term in terms]
        else:
            return None
    return terms


def indexed_spans(analyzer: Any, text: str) -> list[tuple[int, str, int, int]] | None:
    """:func:`indexed_terms` with each term's span in ``normalize(text).text``:
    ``(position, term, start, end)``; None for an analyzer not built here."""
    if isinstance(analyzer, NormalizingTokenizer):
        return list(analyzer.terms(normalize(text).text, "index"))
    terms = indexed_terms(analyzer, text)
    if terms is None:
        return None
    # The analyzer is a LatinWordTokenizer and filters that keep positions:
    # a term's position is its word's index.
    words = _latin_words(text)
    return [(pos, term, words[pos][2], words[pos][3]) for pos, term in terms]


@functools.lru_cache(maxsize=4)
def _latin_words(text: str) -> list[tuple[int, str, int, int]]:
    return list(LatinWordTokenizer().terms(normalize(text).text, "index"))


@functools.cache
def _stemmer(lang: str) -> Callable[[str], str]:
    # Whoosh's StemFilter keeps its own cache of stems, which costs more per word
    # than the stemming it saves: a plain LRU cache in front of the stemmer.
    from whoosh.lang import stemmer_for_language

    return functools.lru_cache(maxsize=200_000)(stemmer_for_language(lang))


class JanomeCache:
    """Janome's analysis of paragraphs already seen, kept in an SQLite file.

    Keyed by a hash of the normalized paragraph, so an unchanged event is never
    tokenized twice, not even by a full rebuild after a schema change; searches
    read it to highlight hits without running Janome. What is stored depends on
    Janome and on :data:`ANALYSIS_VERSION`, which :func:`cache_file_name` carries.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.readonly = readonly
        if readonly:
            # A search keeps its reader open and may be used from any thread;
            # it only reads, and SQLite serializes a connection's calls.
            self._db = sqlite3.connect(
                f"file:{os.fspath(path)}?mode=ro", uri=True, timeout=0.1, check_same_thread=False
            )
        else:
            self._db = sqlite3.connect(path)
            self._db.execute("CREATE TABLE IF NOT EXISTS terms (key BLOB PRIMARY KEY, terms TEXT) WITHOUT ROWID")
        self._pending: list[tuple[bytes, str]] = []
        self._preloaded: dict[bytes, str] = {}

    def preload(self, texts: Iterable[str]) -> None:
        """Read the analyses of ``texts`` in one query, for the :meth:`get` calls that
        follow (highlighting a page of hits); they replace the last preload."""
        keys = list({_cache_key(norm) for text in texts if has_cjk(norm := normalize(text).text)})
        self._preloaded = {}
        if not keys:
            return
        try:
            rows = self._db.execute(
                f"SELECT key, terms FROM terms WHERE key IN ({','.join('?' * len(keys))})", keys
            ).fetchall()
        except sqlite3.Error:
            rows = []
        self._preloaded = dict(rows)

    def get(self, key: bytes) -> str | None:
        if (terms := self._preloaded.get(key)) is not None:
            return terms
        try:
            row = self._db.execute("SELECT terms FROM terms WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None  # busy with a writer, or not there yet: analyse instead
        return row[0] if row else None

    def put(self, key: bytes, terms: str) -> None:
        if self.readonly:
            return
        self._pending.append((key, terms))
        if len(self._pending) >= 1000:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO terms VALUES (?, ?)", self._pending)
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()


# The cache in use by this thread, if any: threads that index or search at
# the same time each have their own connection.
_local = threading.local()


def cache_file_name() -> str:
    """The cache file for this Janome and these analyzers."""
    janome = janome_version.replace(".", "-")
    return f"janome-cache-a{ANALYSIS_VERSION}-j{janome}.sqlite"


def open_janome_cache(path: str | os.PathLike[str], *, readonly: bool = False) -> JanomeCache | None:
    """The cache at ``path``; read-only, a missing or unreadable cache is no cache (None)."""
    try:
        return JanomeCache(path, readonly=readonly)
    except sqlite3.Error:
        if not readonly:
            raise
        return None


@contextlib.contextmanager
def using_janome_cache(cache: JanomeCache | None) -> Iterator[JanomeCache | None]:
    """Use ``cache`` (or none) for Japanese analysis in this thread."""
    outer = getattr(_local, "cache", None)
    _local.cache = cache
    try:
        yield cache
    finally:
        _local.cache = outer


@contextlib.contextmanager
def janome_cache(path: str | os.PathLike[str], *, readonly: bool = False) -> Iterator[JanomeCache | None]:
    """Open the cache at ``path`` and use it for Japanese analysis in this thread."""
    cache = open_janome_cache(path, readonly=readonly)
    try:
        with using_janome_cache(cache):
            yield cache
    finally:
        if cache is not None:
            cache.close()


# Fewer Japanese paragraphs than this to analyse are not worth starting processes for.
PARALLEL_MIN = 400
_CHUNK = 128
# Chunks in flight per analysing process.
_AHEAD = 4


def analysed_ahead(items: Iterable[T], text_of: Callable[[T], str], *, jobs: int) -> Iterator[T]:
    """``items`` in order, each once Janome's analysis of its text is in this thread's cache.

    Janome takes most of the time of indexing Japanese, and it runs in Python,
    so ``jobs`` processes analyse the paragraphs the cache lacks while this one
    goes on indexing the items already done. A few chunks are in flight at a
    time, so memory does not grow with the corpus: items are read from
    ``items`` as they are needed. Without a cache, or with one job, or with
    little Japanese, the items pass through untouched.
    """
    cache: JanomeCache | None = getattr(_local, "cache", None)
    if cache is None or jobs < 2:
        yield from items
        return
    rest = iter(items)
    # Read ahead only until there is Japanese enough to be worth the processes.
    head: list[T] = []
    japanese = 0
    for item in rest:
        head.append(item)
        japanese += has_cjk(text_of(item))
        if japanese >= PARALLEL_MIN:
            break
    else:
        head.reverse()
        while head:  # letting go of each item once indexed
            yield head.pop()
        return
    every = itertools.chain(head, rest)
    del head

    def wanted(chunk: list[T]) -> list[tuple[bytes, str]]:
        """The chunk's normalized texts that Janome has not analysed yet, by cache key."""
        found: dict[bytes, str] = {}
        for item in chunk:
            norm = normalize(text_of(item)).text
            if has_cjk(norm) and (key := _cache_key(norm)) not in found and cache.get(key) is None:
                found[key] = norm
        return list(found.items())

    # Forked workers start with the modules already imported; they only run
    # Janome and hand back rows, never touching the cache.
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        in_flight: collections.deque[tuple[list[T], Any]] = collections.deque()
        while True:
            chunk = list(itertools.islice(every, _CHUNK))
            if chunk:
                todo = wanted(chunk)
                in_flight.append((chunk, pool.apply_async(_analyse_rows, (todo,)) if todo else None))
            if not in_flight:
                return
            if len(in_flight) > _AHEAD * jobs or not chunk:
                done, pending = in_flight.popleft()
                for key, stored in pending.get() if pending is not None else ():
                    cache.put(key, stored)
                cache.flush()  # get() reads the database, not what put() holds back
                yield from done


def _analyse_rows(wanted: list[tuple[bytes, str]]) -> list[tuple[bytes, str]]:
    """Janome's analysis of each ``(key, normalized text)``, as the cache stores it."""
    return [(key, _rows(JanomeTokenizer()._analyse(norm))) for key, norm in wanted]


def _rows(terms: Iterable[tuple[int, str, int, int]]) -> str:
    return "\n".join(f"{p}\t{t}\t{s}\t{e}" for p, t, s, e in terms)


def _cache_key(norm: str) -> bytes:
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()


class JanomeTokenizer(NormalizingTokenizer):
    """Janome base forms of the words that hold a CJK character.

    Latin words are left to the English fields, so text with no CJK character
    yields nothing and does not load Janome. Inside :func:`janome_cache`,
    paragraphs analysed before come from the cache.
    """

    def terms(self, text: str, mode: str) -> Iterator[tuple[int, str, int, int]]:
        if not has_cjk(text):
            return
        cache = getattr(_local, "cache", None) if mode == "index" else None
        if cache is None:
            yield from self._analyse(text)
            return
        key = _cache_key(text)
        stored = cache.get(key)
        if stored is not None:
            for row in stored.split("\n") if stored else ():
                pos, term, start, end = row.split("\t")
                yield int(pos), term, int(start), int(end)
            return
        terms = list(self._analyse(text))
        cache.put(key, _rows(terms))
        yield from terms

    def _analyse(self, text: str) -> Iterator[tuple[int, str, int, int]]:
        # Dropped words take no position, so "京都を訪問" is the phrase 京都 訪問.
        for pos, (_, base, start, end) in enumerate(japanese_tokens(text)):
            yield pos, base, start, end


def japanese_tokens(text: str) -> Iterator[tuple[str, str, int, int]]:
    """(surface, base form, start, end) of each word of ``text`` (normalized) that the
    Japanese analyzer keeps: content words holding a CJK character, less stop words."""
    start = 0
    for token in _janome().tokenize(text):
        surface = token.surface
        end = start + len(surface)
        base = token.base_form if token.base_form != "*" else surface
        if (
            not token.part_of_speech.startswith(_DROPPED_POS)
            and base not in JAPANESE_STOP_WORDS
            and has_cjk(surface)
        ):
            yield surface, base, start, end
        start = end


class CjkNgramTokenizer(NormalizingTokenizer):
    """Overlapping character n-grams (n = 1 or 2) of each run of CJK characters.

    A query string of one CJK character has no bigram, so the unigram field
    answers it; in query mode the unigram tokenizer therefore yields only runs
    of a single character, and the bigram one only longer runs. Positions skip
    one between runs, so a phrase never matches across punctuation or Latin
    text: "双創業" is not in "双創(創業".
    """

    def __init__(self, n: int) -> None:
        self.n = n

    def terms(self, text: str, mode: str) -> Iterator[tuple[int, str, int, int]]:
        n = self.n
        pos = 0
        for run in _CJK_RUN.finditer(text):
            start, end = run.span()
            if n == 1 and mode == "query" and end - start > 1:
                continue
            for i in range(start, end - n + 1):
                yield pos, text[i : i + n], i, i + n
                pos += 1
            pos += 1

    def joined(self, grams: Sequence[str]) -> str | None:
        """The CJK string whose n-grams, in order, are ``grams``; None if there is none."""
        n = self.n
        if not grams or any(len(gram) != n for gram in grams):
            return None
        if any(gram[:-1] != previous[1:] for previous, gram in zip(grams, grams[1:])):
            return None
        string = grams[0] + "".join(gram[-1] for gram in grams[1:])
        return string if _CJK_RUN.fullmatch(string) else None


# Stop words keep their positions (renumber=False), so "police probe" is not
# found in "police to probe".
ENGLISH = LatinWordTokenizer() | StopFilter(stoplist=ENGLISH_STOP_WORDS, minsize=1, renumber=False)
# Snowball English: Whoosh's older Porter stemmer gives "investigat" for
# "investigated" but "investig" for "investigate".
ENGLISH_STEMS = ENGLISH | StemFilter(lang="en")
JAPANESE = JanomeTokenizer()
CJK_BIGRAMS = CjkNgramTokenizer(2)
CJK_UNIGRAMS = CjkNgramTokenizer(1)
