"""Highlighting and snippets: which characters of an event matched, and which part to show.

    >>> text = "High-tech Zone was approved. Start-up Workshop Nursery was established."
    >>> make_snippet(text, [(38, 46)], width=40)
    ('Start-up Workshop Nursery was established.', ((9, 17),))

Matches are found by analyzing the stored text again with each field's analyzer
and comparing tokens with the query's terms; the analyzers give offsets into the
original text, so highlights are exact whatever normalization did. A phrase
highlights only where its words stand together.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from whoosh import query as wq

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
        tokens = [
            (t.text, t.pos, t.startchar, t.endchar)
            for t in schema[field].analyzer(text, positions=True, chars=True, mode="index")
        ]
        for seq in wanted:
            k = len(seq)
            for i in range(len(tokens) - k + 1):
                window = tokens[i : i + k]
                if all(tok[0] == word for tok, word in zip(window, seq)) and all(
                    window[j + 1][1] == window[j][1] + 1 for j in range(k - 1)
                ):
                    spans.append((window[0][2], window[-1][3]))
    return _merge(spans)


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
    return ch.isalnum() and ch.isascii() or unicodedata.combining(ch) > 0


def _cut_back(text: str, pos: int, floor: int) -> int:
    """Move ``pos`` back so it does not split a Latin word or a combined character."""
    p = pos
    while floor < p < len(text) and _is_wordchar(text[p]) and _is_wordchar(text[p - 1]):
        p -= 1
    return p if p > floor else pos


def make_snippet(text: str, spans: list[Span], *, width: int = 160) -> tuple[str, tuple[Span, ...]]:
    """The part of ``text`` to show, at most about ``width`` characters, and its highlights.

    A short text is shown whole. A longer one shows the sentence with the most
    matched characters, and the sentences after it while they fit; a sentence
    longer than ``width`` is cut around its first match, at a word boundary,
    with ``…`` where text was left out. Line breaks become spaces.
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
        start = _cut_back(text, start, 0)
        end = _cut_back(text, min(end, start + width), start)
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
