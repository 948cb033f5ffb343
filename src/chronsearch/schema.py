"""The index's fields, and the name that ties an index to the code that made it.

An event is stored once (``text`` and its metadata) and indexed five times, once
per analyzer in :mod:`chronsearch.analysis`. A query word is looked up in all five
content fields at once, with the boosts in :data:`FIELD_BOOSTS`: an exact word
outranks its stem, and a Janome word outranks a bare n-gram match.

Whoosh pickles the schema into the index, and unpickling one made by other
code can fail in unpredictable ways. So the index's *name* records the schema
format, the analyzers and the Janome version (:func:`index_name`): code only
ever opens an index with its own name, and an index under any other name is
reported as out of date, never unpickled.
"""

from __future__ import annotations

from typing import Any

from janome import __version__ as janome_version  # only the version module, not the tokenizer
from whoosh.columns import RefBytesColumn
from whoosh.fields import ID, NUMERIC, STORED, TEXT, Schema

from chronsearch.analysis import (
    ANALYSIS_VERSION,
    CJK_BIGRAMS,
    CJK_UNIGRAMS,
    ENGLISH,
    ENGLISH_STEMS,
    JAPANESE,
)
from chronsearch.postings import ArrayPositions

__all__ = ["SCHEMA_VERSION", "CONTENT_FIELDS", "FIELD_BOOSTS", "make_schema", "index_name"]

# Bump when a field is added, removed or changes type, or the codec
# (:mod:`chronsearch.postings`) changes.
SCHEMA_VERSION = 6

FIELD_BOOSTS = {
    "word": 2.0,
    "stem": 1.0,
    "morph": 2.0,
    "bigram": 0.5,
    "unigram": 0.5,
}
CONTENT_FIELDS = tuple(FIELD_BOOSTS)


def _text(analyzer: Any) -> TEXT:
    # A query word that analyzes to several tokens ("e-commerce", "ハイテク産業区")
    # must match them adjacent, not anywhere in the event.
    field = TEXT(analyzer=analyzer, multitoken_query="phrase")
    field.format = ArrayPositions()
    return field


def make_schema() -> Schema:
    """A new schema object; Whoosh keeps per-index state in it, so never share one."""
    return Schema(
        id=ID(stored=True, unique=True),
        # One term per value (shift_step = bits), not Whoosh's eight precision
        # tiers: ranges over years and months are short, lines are looked up
        # one at a time, and every term costs at commit.
        year=NUMERIC(int, bits=16, shift_step=16, signed=False, stored=True, sortable=True),
        # Events before any month heading have no month; the column reads 0.
        month=NUMERIC(int, bits=8, shift_step=8, signed=False, stored=True, sortable=True),
        # Few distinct values: a column of small references into a table of them.
        lang=ID(stored=True, sortable=RefBytesColumn()),
        source=ID(stored=True, sortable=RefBytesColumn()),
        line=NUMERIC(int, bits=32, shift_step=32, signed=False, stored=True, sortable=True),
        text=STORED(),
        word=_text(ENGLISH),
        stem=_text(ENGLISH_STEMS),
        morph=_text(JAPANESE),
        bigram=_text(CJK_BIGRAMS),
        unigram=_text(CJK_UNIGRAMS),
    )


def index_name() -> str:
    """The Whoosh index name for this code: schema, analyzers and Janome versions."""
    janome = janome_version.replace(".", "-")
    return f"events_s{SCHEMA_VERSION}_a{ANALYSIS_VERSION}_j{janome}"
