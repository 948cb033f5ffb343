""""Did you mean": a corrected query when one finds little.

Only words that occur nowhere in the index are corrected, each by the indexed
word closest to it:

- Latin words by Damerau-Levenshtein distance over the index's own words
  (``toshbia`` → ``toshiba``: one transposition), the more frequent word first
  among equally close ones; the first letter is kept (as Elasticsearch's term
  suggester does by default), which spares walking the whole vocabulary;
- CJK words over the Japanese words Janome found in the index, one edit away
  (two for long katakana words), preferring a word that *reads* the same: an
  input method's wrong kanji (``共都`` for ``京都``) sounds right.

    >>> df = {"toshiba": 3, "medical": 2}
    >>> suggest("Toshbia medical", known=df.__contains__, candidates=lambda word, edits: df.items())
    'toshiba medical'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache

from whoosh.support.levenshtein import damerau_levenshtein

from chronsearch.analysis import has_cjk

__all__ = ["OPERATORS", "suggest", "correctable_words", "closest"]

# The words that are syntax to Whoosh's query parser, as chronsearch configures it
# (TO inside a range).
OPERATORS = frozenset({"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE", "REQUIRE", "TO"})
# A word of the query: not an operator, not a field name, not a field's value,
# not a fuzziness or boost ("zone~x" has no word x).
_WORD = re.compile(r"(?<![\w:~^])[^\W\d_][^\W_]*(?![\w:*?~])")
_KATAKANA = re.compile(r"^[\u30A1-\u30FA\u30FC]+$")
_LATIN = re.compile(r"[a-z]")


def correctable_words(query: str) -> list[re.Match[str]]:
    """The plain words of ``query`` that a correction may replace, with their positions."""
    return [m for m in _WORD.finditer(query) if m.group() not in OPERATORS]


def closest(word: str, candidates: Iterable[tuple[str, int]]) -> str | None:
    """The best correction of ``word`` among ``(term, document frequency)`` pairs."""
    cjk = has_cjk(word)
    most = _max_edits(word)
    ranked = []
    for term, df in candidates:
        if term == word:
            continue
        distance = damerau_levenshtein(word, term)
        if distance <= most:
            sounds_alike = cjk and _reading(term) == _reading(word)
            ranked.append((distance - sounds_alike, -df, term))
    return min(ranked)[2] if ranked else None


def _max_edits(word: str) -> int:
    if has_cjk(word):
        return 2 if _KATAKANA.match(word) and len(word) >= 6 else 1
    return 1 if len(word) <= 4 else 2


@lru_cache(maxsize=4096)
def _reading(word: str) -> str:
    """How a Japanese word is read, in katakana (Janome's dictionary reading)."""
    from chronsearch.analysis import _janome

    return "".join(
        token.reading if token.reading != "*" else token.surface for token in _janome().tokenize(word)
    )


def suggest(
    query: str,
    *,
    known: Callable[[str], bool],
    candidates: Callable[[str, int], Iterable[tuple[str, int]]],
) -> str | None:
    """``query`` with each unknown word replaced by its closest indexed word, or None.

    ``known(word)`` says whether a word occurs in the index; ``candidates(word,
    edits)`` gives the indexed terms (with document frequencies) near it.
    """
    out, pos, changed = [], 0, False
    for m in correctable_words(query):
        word = unicodedata.normalize("NFKC", m.group()).lower()
        if (has_cjk(word) and _LATIN.search(word)) or known(word):
            continue  # a word that mixes scripts is left as it is
        better = closest(word, candidates(word, _max_edits(word)))
        if better is None:
            continue
        out += [query[pos : m.start()], better]
        pos, changed = m.end(), True
    out.append(query[pos:])
    return "".join(out) if changed else None
