"""chronsearch: full-text search over English and Japanese chronicles.

    >>> import chronsearch
    >>> chronsearch.update("seeds", "index").events_total
    92
    >>> with chronsearch.ChronicleIndex.open("index") as ix:
    ...     hit = ix.search("Toshiba").hits[0]
    >>> hit.year, hit.source, hit.line
    (2014, '2014-industrial-development-events.en.txt', 7)

Importing the package does not import Janome; it is loaded the first time
Japanese text is analyzed.
"""

from chronsearch.chronicle import Event, parse_chronicle, read_chronicle
from chronsearch.errors import (
    ChronicleFormatError,
    ChronsearchError,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
    IndexDamagedError,
    QuerySyntaxError,
)
from chronsearch.indexing import UpdateStats, build, is_fresh, update
from chronsearch.searching import ChronicleIndex, Hit, IndexStats, SearchResults

__all__ = [
    "ChronicleFormatError",
    "ChronicleIndex",
    "ChronsearchError",
    "Event",
    "Hit",
    "IndexLockedError",
    "IndexMissingError",
    "IndexStats",
    "IndexVersionError",
    "IndexDamagedError",
    "QuerySyntaxError",
    "SearchResults",
    "UpdateStats",
    "build",
    "is_fresh",
    "parse_chronicle",
    "read_chronicle",
    "update",
]
