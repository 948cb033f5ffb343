"""Building the index from a folder of chronicles, and opening it again.

    >>> stats = build(Path("seeds"), Path("index"))
    >>> stats.files, stats.events, stats.errors
    (2, 92, ())

A file that cannot be read or parsed is reported in ``errors`` (one line each,
naming the file and line) and skipped; the other files are indexed. The new
index replaces the old one in a single commit, so a build that fails or is
killed leaves the last good index answering.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from whoosh.filedb.filestore import FileStorage
from whoosh.index import FileIndex, LockError
from whoosh.writing import CLEAR

from chronsearch.chronicle import Event, find_chronicles, read_chronicle
from chronsearch.errors import (
    ChronicleFormatError,
    ChronsearchError,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
)
from chronsearch.schema import index_name, make_schema

__all__ = ["BuildStats", "build", "index_events", "open_index"]

_TOC = re.compile(r"^_(?P<name>.+)_\d+\.toc$")


@dataclass(frozen=True, slots=True)
class BuildStats:
    """What a build did."""

    files: int
    events: int
    took_ms: float
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": list(self.errors)}


def read_events(seeds: Path) -> tuple[list[Event], int, list[str]]:
    """Every event under ``seeds``, the number of files read, and one line per bad file."""
    if not seeds.is_dir():
        raise ChronsearchError(f"{seeds}: no such seeds directory")
    events: list[Event] = []
    errors: list[str] = []
    files = 0
    for path in find_chronicles(seeds):
        try:
            events.extend(read_chronicle(path, root=seeds))
        except ChronicleFormatError as exc:
            # Name the file as the user can find it, not relative to the seeds dir.
            errors.append(str(ChronicleFormatError(str(path), exc.message, line=exc.line)))
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
        else:
            files += 1
    return events, files, errors


def event_document(event: Event) -> dict[str, Any]:
    """The Whoosh document for ``event``: stored metadata, and the text per analyzer."""
    doc: dict[str, Any] = {
        "id": event.id,
        "year": event.year,
        "lang": event.lang,
        "source": event.source,
        "line": event.line,
        "text": event.text,
        "word": event.text,
        "stem": event.text,
        "bigram": event.text,
        "unigram": event.text,
    }
    if event.month is not None:
        doc["month"] = event.month
    if event.lang == "ja":
        doc["morph"] = event.text
    return doc


def build(seeds: str | Path, index: str | Path) -> BuildStats:
    """Index every chronicle under ``seeds`` into ``index``, replacing what was there."""
    started = time.perf_counter()
    seeds, index = Path(seeds), Path(index)
    events, files, errors = read_events(seeds)
    index_events(events, index)
    took_ms = (time.perf_counter() - started) * 1000
    return BuildStats(files=files, events=len(events), took_ms=round(took_ms, 1), errors=tuple(errors))


def index_events(events: Iterable[Event], index: str | Path) -> int:
    """Replace the contents of ``index`` with ``events``, in one commit; returns their number."""
    index = Path(index)
    index.mkdir(parents=True, exist_ok=True)
    storage = FileStorage(str(index))
    name = index_name()
    if storage.index_exists(name):
        ix = storage.open_index(name)
    else:
        ix = FileIndex.create(storage, make_schema(), name)
    try:
        writer = ix.writer()
    except LockError:
        raise IndexLockedError(f"{index}: the index is being written by another process") from None
    count = 0
    try:
        for event in events:
            writer.add_document(**event_document(event))
            count += 1
    except BaseException:
        writer.cancel()
        raise
    # CLEAR drops the old segments in the same commit that adds the new one.
    writer.commit(mergetype=CLEAR)
    _remove_other_indexes(storage, keep=name)
    return count


def open_index(index: Path) -> FileIndex:
    """Open the index at ``index`` made by this version of chronsearch."""
    if not index.is_dir():
        raise IndexMissingError(f"{index}: no index here; build it with `chronsearch index`")
    storage = FileStorage(str(index))
    name = index_name()
    if storage.index_exists(name):
        return storage.open_index(name)
    if _index_names(storage):
        raise IndexVersionError(
            f"{index}: the index was built by another version of chronsearch;"
            " rebuild it with `chronsearch index`"
        )
    raise IndexMissingError(f"{index}: no index here; build it with `chronsearch index`")


def _index_names(storage: FileStorage) -> set[str]:
    return {m["name"] for f in storage.list() if (m := _TOC.match(f))}


def _remove_other_indexes(storage: FileStorage, *, keep: str) -> None:
    """Delete the files of indexes made by other versions, now that ours is committed."""
    for name in _index_names(storage) - {keep}:
        for filename in storage.list():
            if filename.startswith((f"_{name}_", f"{name}_")):
                storage.delete_file(filename)
