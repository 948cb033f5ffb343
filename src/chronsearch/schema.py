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

import importlib.metadata

from whoosh.fields import ID, NUMERIC, STORED, TEXT, Schema

from chronsearch.analysis import (
    ANALYSIS_VERSION,
    CJK_BIGRAMS,
    CJK_UNIGRAMS,
    ENGLISH,
    ENGLISH_STEMS,
    JAPANESE,
)

__all__ = ["SCHEMA_VERSION", "CONTENT_FIELDS", "FIELD_BOOSTS", "make_schema", "index_name"]

# Bump when a field is added, removed or changes type.
SCHEMA_VERSION = 2

FIELD_BOOSTS = {
    "word": 2.0,
    "stem": 1.0,
    "morph": 2.0,
    "bigram": 1.0,
    "unigram": 0.5,
}
CONTENT_FIELDS = tuple(FIELD_BOOSTS)


def make_schema() -> Schema:
    """A new schema object; Whoosh keeps per-index state in it, so never share one."""
    return Schema(
        id=ID(stored=True, unique=True),
        year=NUMERIC(int, stored=True, sortable=True),
        # Events before any month heading have no month; the column reads 0.
        month=NUMERIC(int, stored=True, sortable=True),
        lang=ID(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        line=NUMERIC(int, stored=True, sortable=True),
        text=STORED(),
        # A query word that analyzes to several tokens ("e-commerce", "ハイテク産業区")
        # must match them adjacent, not anywhere in the event.
        word=TEXT(analyzer=ENGLISH, multitoken_query="phrase"),
        stem=TEXT(analyzer=ENGLISH_STEMS, multitoken_query="phrase"),
        morph=TEXT(analyzer=JAPANESE, multitoken_query="phrase"),
        bigram=TEXT(analyzer=CJK_BIGRAMS, multitoken_query="phrase"),
        unigram=TEXT(analyzer=CJK_UNIGRAMS, multitoken_query="phrase"),
    )


def index_name() -> str:
    """The Whoosh index name for this code: schema, analyzers and Janome versions."""
    janome = importlib.metadata.version("janome").replace(".", "-")
    return f"events_s{SCHEMA_VERSION}_a{ANALYSIS_VERSION}_j{janome}"
