"""The errors chronsearch raises.

Every error a user can cause is a :class:`ChronsearchError`. Its ``str()`` is one
line that says what went wrong and where, so the CLI prints it as it is::

    >>> str(ChronicleFormatError("seeds/2019.txt", "no year in the title or the file name", line=1))
    'seeds/2019.txt:1: no year in the title or the file name'
"""

from __future__ import annotations

__all__ = [
    "ChronsearchError",
    "ChronicleFormatError",
    "QuerySyntaxError",
    "IndexMissingError",
    "IndexVersionError",
    "IndexDamagedError",
    "IndexLockedError",
]


class ChronsearchError(Exception):
    """Base class of the errors a user can cause; the CLI exits with 2 on them."""


class ChronicleFormatError(ChronsearchError):
    """A chronicle file that cannot be decoded or parsed."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class QuerySyntaxError(ChronsearchError):
    """A query string that cannot be turned into a query."""

    def __init__(self, query: str, message: str) -> None:
        self.query = query
        self.message = message
        super().__init__(f"bad query {query!r}: {message}")


class IndexMissingError(ChronsearchError):
    """There is no index at the given path."""


class IndexVersionError(ChronsearchError):
    """The index was built by a different version of the schema or analyzers."""


class IndexDamagedError(ChronsearchError):
    """The index's files cannot be read (truncated or overwritten outside chronsearch)."""

    def __init__(self, index: str, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"{index}: the index is damaged ({reason}); rebuild it with `chronsearch index --full`")


class IndexLockedError(ChronsearchError):
    """Another process is writing the index."""
