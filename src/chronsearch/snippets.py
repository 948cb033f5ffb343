"""Highlighting and snippets: which characters of an event matched, and which part to show.

    >>> text = "High-tech Zone was approved. Start-up Workshop Nursery was established."
    >>> make_snippet(text, [(38, 46)], width=40)
    ('Start-up Workshop Nursery was established.', ((9, 17),))

Matches are found by analyzing the stored text again with each field's analyzer
and comparing tokens with the query's terms; the analyzers give offsets into the
original text, so highlights are exact whatever normalization did. A phrase
highlights only where its words stand together. A phrase of CJK n-grams is a
string, so it is looked for as one in the normalized text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from whoosh import query as wq

from chronsearch.analysis import CjkNgramTokenizer, indexed_spans, normalize
from chronsearch.schema import CONTENT_FIELDS

__all__ = ["highlight_spans", "make_snippet"]

Span = tuple[int, int]

# A sentence ends after Japanese 。！？ (and their ASCII cousins), or after a
# Latin full stop that is followed by a space.
_SENTENCE_END = re.compile(r"[。！？!?]+|\.(?=\s)")


def _positive_leaves(q: wq.Query) -> Iterator[wq.Query]:
    """The leaf queries whose matches should be highlighted: not those under NOT."""
    if isinstance(q, wq.Not):
        return
    if isinstance(q, wq.AndNot):
        yield from _positive_leaves(q.a)
    elif isinstance(q, wq.Phrase) or q.is_leaf():
        yield q
    else:
        for child in q.children():
            yield from _positive_leaves(child)


def query_sequences(q: wq.Query, reader: Any) -> dict[str, set[tuple[str, ...]]]:
    """Per content field, the term sequences to highlight (a phrase is one sequence)."""
    found: dict[str, set[tuple[str, ...]]] = {}
    for leaf in _positive_leaves(q):
        field = getattr(leaf, "fieldname", None)
        if field not in CONTENT_FIELDS:
            continue
        if isinstance(leaf, wq.Phrase):
            found.setdefault(field, set()).add(tuple(leaf.words))
        elif isinstance(leaf, wq.Term):
            found.setdefault(field, set()).add((leaf.text,))
        else:
            # Prefix, wildcard and fuzzy queries: highlight the terms they matched.
            for fname, btext in leaf.existing_terms(reader, expand=True):
                if fname == field:
                    found.setdefault(field, set()).add((btext.decode("utf-8"),))
    return found


def highlight_spans(text: str, sequences: dict[str, set[tuple[str, ...]]], schema: Any) -> list[Span]:
    """Character spans of ``text`` that match ``sequences``, merged and sorted."""
    spans: list[Span] = []
    for field, wanted in sequences.items():
        analyzer = schema[field].analyzer
        analysed: set[tuple[str, ...]] = set()
        for seq in wanted:
            # An n-gram phrase is a CJK string, found faster by looking for it
            # than by cutting the whole text into n-grams.
            string = analyzer.joined(seq) if isinstance(analyzer, CjkNgramTokenizer) else None
            if string is None:
                analysed.add(seq)
            else:
                spans.extend(_string_spans(text, string))
        if analysed:
            spans.extend(_token_spans(text, analysed, analyzer))
    return _merge(spans)


def _string_spans(text: str, string: str) -> Iterator[Span]:
    """Where ``string`` occurs in ``text`` once normalized, overlaps included."""
    norm = normalize(text)
    at = norm.text.find(string)
    while at >= 0:
        yield norm.span(at, at + len(string))
        at = norm.text.find(string, at + 1)


def _token_spans(text: str, wanted: Iterable[tuple[str, ...]], analyzer: Any) -> Iterator[Span]:
    """Where the analyzer's tokens of ``text`` hold each sequence at adjacent positions."""
    spans = indexed_spans(analyzer, text)
    if spans is not None:
        # Its terms, without a Token object each; offsets map back only for a match.
        tokens = [(term, pos, start, end) for pos, term, start, end in spans]
        span = normalize(text).span
    else:
        tokens = [(t.text, t.pos, t.startchar, t.endchar) for t in analyzer(text, positions=True, chars=True, mode="index")]
        span = _same
    starts: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        starts.setdefault(token[0], []).append(i)
    for seq in wanted:
        k = len(seq)
        for i in starts.get(seq[0], ()):
            window = tokens[i : i + k]
            if len(window) == k and all(tok[0] == word for tok, word in zip(window, seq)) and all(
                window[j + 1][1] == window[j][1] + 1 for j in range(k - 1)
            ):
                yield span(window[0][2], window[-1][3])


def _same(start: int, end: int) -> Span:
    return start, end


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _sentences(text: str) -> list[Span]:
    bounds = [0]
    for m in _SENTENCE_END.finditer(text):
        bounds.append(m.end())
    bounds.append(len(text))
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if text[a:b].strip()]


def _is_wordchar(ch: str) -> bool:
    return ch.isalnum() and ch.isascii() or _joins_previous(ch)


def _joins_previous(ch: str) -> bool:
    """A combining mark, variation selector or joiner: part of the character before it."""
    return unicodedata.combining(ch) > 0 or unicodedata.category(ch) in ("Mn", "Me") or ch == "\u200d"


def _script(ch: str) -> str | None:
    """Kanji, hiragana or katakana; a Japanese word rarely changes script inside."""
    if "\u3041" <= ch <= "\u309f":
        return "hiragana"
    if "\u30a1" <= ch <= "\u30fa" or "\u30fc" <= ch <= "\u30ff":  # not the middle dot ・
        return "katakana"
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or ch in "々〆":
        return "kanji"
    return None


# How far a cut may move to fall between words: a run of kanji or katakana
# longer than this is a compound, and cutting between its words is what is left.
_CJK_REACH = 8
_LATIN_REACH = 40


def _splits(text: str, p: int) -> bool:
    """Whether a cut at ``p`` falls inside a Latin word, a character, or a run of one script."""
    if p <= 0 or p >= len(text):
        return False
    before, after = text[p - 1], text[p]
    if _joins_previous(after) or (_is_wordchar(before) and _is_wordchar(after)):
        return True
    return _script(before) is not None and _script(before) == _script(after)


def _cut(text: str, pos: int, *, lo: int, hi: int, forward: bool) -> int:
    """The cut nearest ``pos`` within ``[lo, hi]`` that splits no word, looking
    ``forward`` (into the snippet) first; ``pos`` itself when there is none close enough.

    Only a Latin word is worth looking the other way for, which makes the
    snippet a little wider than asked.
    """
    if not _splits(text, pos):
        return pos
    cjk = _script(text[pos]) is not None
    reach = _CJK_REACH if cjk else _LATIN_REACH
    for step in ((1,) if cjk else (1, -1)) if forward else ((-1,) if cjk else (-1, 1)):
        for p in range(pos + step, pos + step * (reach + 1), step):
            if not 0 <= p <= len(text):
                break
            if lo <= p <= hi and not _splits(text, p):
                return p
    return pos


def make_snippet(text: str, spans: list[Span], *, width: int = 160) -> tuple[str, tuple[Span, ...]]:
    """The part of ``text`` to show, at most about ``width`` characters, and its highlights.

    A short text is shown whole. A longer one shows the sentence with the most
    matched characters, and the sentences after it while they fit; a sentence
    longer than ``width`` is cut around its first match, between words (never
    inside a Latin word or a character; in Japanese, where the script changes,
    if that is close by), with ``…`` where text was left out. Line breaks
    become spaces.
    """
    flat = text.replace("\r", " ").replace("\n", " ")
    if len(text) <= width:
        return flat, tuple(spans)

    def covered(s: Span) -> int:
        return sum(max(0, min(e, s[1]) - max(b, s[0])) for b, e in spans)

    sentences = _sentences(text)
    best = max(range(len(sentences)), key=lambda i: (covered(sentences[i]), -i))
    start, end = sentences[best]
    for s_start, s_end in sentences[best + 1 :]:
        if s_end - start > width:
            break
        end = s_end
    if end - start > width:
        inside = [b for b, e in spans if start <= b < end]
        first = inside[0] if inside else start
        if first - start > width * 3 // 4:
            # Only move the start when the first match would not be in view.
            start = max(start, min(first - width // 4, end - width))
        # Cuts move to fall between words, but never past the first match in view.
        match = next(((b, e) for b, e in spans if start <= b < end), (end, start))
        start = _cut(text, start, lo=0, hi=match[0], forward=True)
        end = _cut(text, min(end, start + width), lo=max(match[1], start + 1), hi=len(text), forward=False)
    # Leading and trailing spaces would sit next to the ellipsis.
    while start < end and flat[start].isspace():
        start += 1
    while end > start and flat[end - 1].isspace():
        end -= 1
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    shown = tuple(
        (max(b, start) + shift, min(e, end) + shift) for b, e in spans if b < end and e > start
    )
    return prefix + flat[start:end] + suffix, shown
