"""Keeping the index in step with a folder of chronicles.

    >>> update("seeds", "index").to_dict()
    {'added_files': 2, 'changed_files': 0, 'removed_files': 0, 'unchanged_files': 0,
     'events_added': 92, 'events_removed': 0, 'events_total': 92, 'took_ms': 812.4,
     'errors': [], 'rebuilt': None}
    >>> update("seeds", "index").unchanged_files    # nothing changed: nothing analysed
    2

:func:`update` re-indexes only the files whose content changed (a size and
mtime check first, the SHA-256 of the bytes decides) and drops the events of
removed files. How it stays safe:

- **One commit.** Deletions, additions and the record of indexed files land in
  one Whoosh commit. The record (the *manifest*) is a file named after the
  index generation it describes, written before the commit that creates that
  generation, so whichever generation a reader sees, its manifest is there. A
  process killed at any moment leaves the last commit intact: every file in its
  old state or its new one, never half.
- **One writer.** Writers take a lock file first (an ``flock``, which the
  kernel releases when a process dies, so a killed writer leaves no stale
  lock); a second writer waits up to ``wait`` seconds, then gives up. Readers
  never wait: they search the last commit.
- **Bad files lose nothing.** A file that cannot be read or parsed is reported
  (one line, naming the file and line) and its previously indexed events stay.
- **Versions.** The index's name records the schema, analyzer and Janome
  versions (:func:`chronsearch.schema.index_name`). Code never opens an index
  with another name; it builds its own beside it, then deletes the old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from whoosh.filedb.filestore import FileStorage
from whoosh.index import EmptyIndexError, FileIndex, LockError
from whoosh.query import Term
from whoosh.writing import CLEAR

from chronsearch.analysis import analysed_ahead, cache_file_name, has_cjk, janome_cache
from chronsearch.chronicle import Event, chronicle_sources, read_chronicle
from chronsearch.glossary import GLOSSARY_FILE, parse_glossary
from chronsearch.errors import (
    ChronicleFormatError,
    ChronsearchError,
    IndexDamagedError,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
)
from chronsearch.schema import index_name, make_schema
from chronsearch.writing import SegmentWriter

__all__ = [
    "Freshness",
    "UpdateStats",
    "update",
    "build",
    "freshness",
    "is_fresh",
    "index_events",
    "open_index",
    "indexed_glossary",
    "seeds_directory",
]

_TOC = re.compile(r"^_(?P<name>.+)_(?P<gen>\d+)\.toc$")
_VERSIONS = re.compile(r"^events_s(?P<schema>\d+)_a(?P<analyzers>\d+)_j(?P<janome>[\d-]+)$")
_LOCK = "chronsearch_WRITELOCK"
_MANIFEST_FORMAT = 1

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class UpdateStats:
    """What an update did. ``rebuilt`` says why every file was indexed anew, if it was."""

    added_files: int
    changed_files: int
    removed_files: int
    unchanged_files: int
    events_added: int
    events_removed: int
    events_total: int
    took_ms: float
    errors: tuple[str, ...] = ()
    rebuilt: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the index's contents changed."""
        return bool(self.added_files or self.changed_files or self.removed_files or self.rebuilt)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": list(self.errors)}


@dataclass
class _Plan:
    """What a scan of the seeds found to do."""

    manifest: dict[str, dict[str, Any]]
    parsed: list[tuple[str, list[Event]]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def update(
    seeds: str | Path,
    index: str | Path,
    *,
    full: bool = False,
    wait: float = 0.0,
    on_wait: Callable[[], None] | None = None,
    progress: Progress | None = None,
    cache: bool = True,
    jobs: int | None = None,
) -> UpdateStats:
    """Bring ``index`` up to date with the chronicles under ``seeds``.

    ``full`` re-indexes every file whatever its hash. If another process is
    writing the index, ``on_wait`` is called and the update waits up to
    ``wait`` seconds before raising :class:`IndexLockedError`. ``progress`` is
    called with (events indexed, events to index) while events are added.
    ``cache`` keeps Janome's analysis of each paragraph in the index folder, so
    unchanged Japanese events are never analysed again. ``jobs`` processes
    (default: one per CPU) run Janome over new Japanese paragraphs.
    """
    started = time.perf_counter()
    seeds, index = seeds_directory(seeds), Path(index)
    index.mkdir(parents=True, exist_ok=True)
    storage = _storage(index)
    name = index_name()
    with _write_lock(storage, index, wait, on_wait):
        rebuilt = "asked for (--full)" if full else None
        generation = _generation(storage, name)
        ix: FileIndex | None = None
        damage = None
        if generation >= 0:
            try:
                ix = _open_existing(storage, name, index)
            except IndexDamagedError as exc:
                damage = exc.reason
        if ix is not None:
            manifest = _read_manifest(storage, name, generation)
            if manifest is not None:
                indexed = {source: record["events"] for source, record in manifest.items() if record["events"]}
            else:
                indexed = _indexed_sources(ix)
                rebuilt = rebuilt or "the index had no record of its files"
        else:
            # A damaged index has nothing to keep: it is made anew, as a new version's is.
            rebuilt = f"the index was damaged ({damage})" if damage else _why_rebuild(storage, name)
            ix = FileIndex.create(storage, make_schema(), name)
            manifest, indexed = None, {}
        plan = _plan(seeds, manifest or {}, indexed, full=full or manifest is None)
        if not (plan.parsed or plan.removed):
            if plan.manifest != manifest:
                # No event to add or delete (a touch, a glossary edit, a file that
                # now fails to parse): record the files' new state, commit nothing.
                _write_manifest(storage, name, max(generation, 0), plan.manifest)
            events_added = events_removed = 0
        else:
            with _analysis_cache(index, cache):
                events_added, events_removed = _commit(ix, storage, name, plan, indexed, progress, _jobs(jobs))
    # The manifest counts each file's events, and is committed with them.
    total = sum(record["events"] for record in plan.manifest.values())
    took_ms = round((time.perf_counter() - started) * 1000, 1)
    return UpdateStats(
        added_files=plan.added,
        changed_files=plan.changed,
        removed_files=len(plan.removed),
        unchanged_files=plan.unchanged,
        events_added=events_added,
        events_removed=events_removed,
        events_total=total,
        took_ms=took_ms,
        errors=tuple(plan.errors),
        rebuilt=rebuilt,
    )


def build(seeds: str | Path, index: str | Path, **kwargs: Any) -> UpdateStats:
    """Index every file anew: :func:`update` with ``full=True``."""
    return update(seeds, index, full=True, **kwargs)


def seeds_directory(seeds: str | Path) -> Path:
    """``seeds`` as a Path; raises :class:`ChronsearchError` if it is not a directory."""
    if not Path(seeds).is_dir():
        raise ChronsearchError(f"{seeds}: no such seeds directory")
    return Path(seeds)


class Freshness(NamedTuple):
    """Whether an index reflects the chronicles, and the errors recorded for
    those of them that could not be indexed (files unchanged since)."""

    fresh: bool
    errors: tuple[str, ...] = ()


def freshness(seeds: str | Path, index: str | Path) -> Freshness:
    """Whether ``index`` already reflects the files under ``seeds``, by size and mtime,
    and if so the errors of those it could not index.

    It reads one small file and stats the chronicles; it opens no index.
    """
    storage = _storage(index)
    name = index_name()
    if not Path(index).is_dir() or not Path(seeds).is_dir():
        return Freshness(False)
    manifest = _read_manifest(storage, name, _generation(storage, name))
    if manifest is None:
        return Freshness(False)
    sources = _tracked_files(seeds)
    if len(sources) != len(manifest):
        return Freshness(False)
    errors = []
    for source in sources:
        record = manifest.get(source)
        try:
            st = os.stat(os.path.join(seeds, source))
        except OSError:  # gone since the listing
            return Freshness(False)
        if record is None or not _same_stat(record, st):
            return Freshness(False)
        if record.get("error"):
            errors.append(record["error"])
    return Freshness(True, tuple(errors))


def is_fresh(seeds: str | Path, index: str | Path) -> bool:
    """Whether ``index`` already reflects the files under ``seeds`` (see :func:`freshness`)."""
    return freshness(seeds, index).fresh


def index_events(events: Iterable[Event], index: str | Path, *, cache: bool = True, jobs: int | None = None) -> int:
    """Replace everything in ``index`` with ``events``, in one commit; returns their number.

    For indexing events that come from elsewhere than chronicle files (an
    evaluation corpus, say). The index then has no record of files, so a later
    :func:`update` re-indexes from scratch.
    """
    index = Path(index)
    index.mkdir(parents=True, exist_ok=True)
    storage = _storage(index)
    name = index_name()
    with _write_lock(storage, index, 0.0, None):
        if _generation(storage, name) >= 0:
            ix = _open_existing(storage, name, index)
        else:
            ix = FileIndex.create(storage, make_schema(), name)
        writer = SegmentWriter(ix)
        count = 0
        try:
            with _analysis_cache(index, cache):
                for event in analysed_ahead(events, _text, jobs=_jobs(jobs)):
                    writer.add_document(**event_document(event))
                    count += 1
        except BaseException:
            writer.cancel()
            raise
        # Dropping the manifest first: a crash in between leaves no stale record.
        _drop_manifests(storage, name, keep=None)
        writer.commit(mergetype=CLEAR)
    return count


def open_index(index: Path) -> FileIndex:
    """Open the index at ``index`` made by this version of chronsearch."""
    if not index.is_dir():
        raise IndexMissingError(f"{index}: no index here; build it with `chronsearch index`")
    storage = _storage(index)
    name = index_name()
    for attempt in range(10):
        try:
            if _generation(storage, name) < 0:
                break
            return _open_existing(storage, name, index)
        except (FileNotFoundError, EmptyIndexError):
            # A commit replaced the generation we were reading, between listing
            # its table of contents and opening it: read the new one.
            if attempt == 9:
                raise
            time.sleep(0.02)
    if _index_names(storage):
        raise IndexVersionError(
            f"{index}: the index was built by another version of chronsearch;"
            " rebuild it with `chronsearch index`"
        )
    raise IndexMissingError(f"{index}: no index here; build it with `chronsearch index`")


def _open_existing(storage: FileStorage, name: str, index: Path) -> FileIndex:
    """Whoosh's index ``name``; raises :class:`IndexDamagedError` if its files cannot be read."""
    try:
        return storage.open_index(name)
    except (FileNotFoundError, EmptyIndexError):
        raise  # a commit replaced the files being read; the caller reads the new ones
    except Exception as exc:  # a truncated table of contents fails in pickle, struct, zlib…
        raise IndexDamagedError(str(index), str(exc) or type(exc).__name__) from None


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
    }
    # The n-gram fields only ever hold CJK characters; analysing text without any is wasted.
    if has_cjk(event.text):
        doc["bigram"] = doc["unigram"] = event.text
    if event.month is not None:
        doc["month"] = event.month
    if event.lang == "ja":
        doc["morph"] = event.text
    return doc


# --- planning ---------------------------------------------------------------


def _tracked_files(seeds: str | Path) -> list[str]:
    """The chronicles under ``seeds``, and the glossary if there is one."""
    glossary = os.path.isfile(os.path.join(seeds, GLOSSARY_FILE))
    return chronicle_sources(seeds) + ([GLOSSARY_FILE] if glossary else [])


def indexed_glossary(ix: FileIndex, generation: int, known: Any = None) -> tuple[Any, list[list[str]] | None]:
    """When the record of commit ``generation`` of ``ix`` was written, and the glossary rows it holds.

    A glossary edit rewrites the record without a new commit, so a reader
    rereads it when that time changes; until then (``known``) the rows are None.
    """
    storage, name = ix.storage, ix.indexname
    try:
        written = (generation, os.stat(os.path.join(storage.folder, _manifest_file(name, generation))).st_mtime_ns)
    except OSError:
        return None, []
    if written == known:
        return written, None
    manifest = _read_manifest(storage, name, generation) or {}
    return written, manifest.get(GLOSSARY_FILE, {}).get("glossary") or []


def _same_stat(record: dict[str, Any], st: os.stat_result) -> bool:
    return record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns


def _plan(seeds: Path, old: dict[str, dict[str, Any]], indexed: dict[str, int], *, full: bool) -> _Plan:
    """Compare the files under ``seeds`` with the ``old`` manifest; parse what changed.

    ``indexed`` maps each file with events in the index to their number.
    """
    plan = _Plan(manifest={})
    for source in _tracked_files(seeds):
        path = seeds / source
        record = old.get(source)
        try:
            st = os.stat(os.path.join(seeds, source))
            if not full and record is not None and _same_stat(record, st):
                plan.manifest[source] = record
                plan.unchanged += 1
                if record.get("error"):
                    plan.errors.append(record["error"])
                continue
            data = path.read_bytes()
        except OSError as exc:
            plan.errors.append(f"{path}: {exc.strerror or exc}")
            if record is not None:
                plan.manifest[source] = record
            continue
        sha = hashlib.sha256(data).hexdigest()
        stat = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if not full and record is not None and record["sha256"] == sha:
            plan.manifest[source] = {**record, **stat, "error": None}
            plan.unchanged += 1
            continue
        try:
            if source == GLOSSARY_FILE:
                glossary, events = parse_glossary(data, source=source), []
            else:
                glossary, events = None, read_chronicle(path, root=seeds, data=data)
        except ChronicleFormatError as exc:
            # Keep the events indexed from the file's last good state; remember
            # the failure under the new size and mtime so it is not re-read.
            message = str(ChronicleFormatError(str(path), exc.message, line=exc.line))
            plan.errors.append(message)
            kept = record or {"sha256": None, "events": indexed.get(source, 0)}
            plan.manifest[source] = {**kept, **stat, "error": message}
            continue
        plan.manifest[source] = {"sha256": sha, **stat, "events": len(events), "error": None}
        if glossary is not None:
            # The glossary is data for queries, not events: it lives in the manifest.
            plan.manifest[source]["glossary"] = glossary
        else:
            plan.parsed.append((source, events))
        if source in indexed or (record is not None and source == GLOSSARY_FILE):
            plan.changed += 1
        else:
            plan.added += 1
    plan.removed = sorted(set(indexed) - set(plan.manifest))
    return plan


def _commit(
    ix: FileIndex,
    storage: FileStorage,
    name: str,
    plan: _Plan,
    indexed: dict[str, int],
    progress: Progress | None,
    jobs: int,
) -> tuple[int, int]:
    """Apply ``plan`` in one commit; returns (events added, events removed)."""
    try:
        writer = SegmentWriter(ix)
    except LockError:  # a writer that did not take our lock, such as plain Whoosh
        raise IndexLockedError(f"{storage.folder}: another process is writing the index") from None
    try:
        removed = 0
        for source in plan.removed + [s for s, _ in plan.parsed if s in indexed]:
            removed += writer.delete_by_term("source", source)
        total = sum(len(events) for _, events in plan.parsed)
        added = 0
        for event in analysed_ahead(_drained(plan.parsed), _text, jobs=jobs):
            writer.add_document(**event_document(event))
            added += 1
            if progress is not None and (added % 64 == 0 or added == total):
                progress(added, total)
        _write_manifest(storage, name, writer.generation, plan.manifest)
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    _drop_manifests(storage, name, keep=writer.generation)
    _remove_other_indexes(storage, keep=name)
    return added, removed


def _drained(parsed: list[tuple[str, list[Event]]]) -> Iterator[Event]:
    """The events of ``parsed`` in order, each file's let go of once read: a
    rebuild need not hold every event in memory until it commits."""
    parsed.reverse()
    while parsed:
        yield from parsed.pop()[1]


def _indexed_sources(ix: FileIndex) -> dict[str, int]:
    """Each file with live events in the index, and their number (when its manifest is lost)."""
    with ix.searcher() as searcher:
        counts = {
            source.decode("utf-8"): sum(1 for _ in searcher.docs_for_query(Term("source", source)))
            for source in searcher.lexicon("source")
        }
    return {source: n for source, n in counts.items() if n}


# --- files in the index directory --------------------------------------------


def _storage(index: str | Path) -> FileStorage:
    # Without memory maps: pages of a mapped index count in the process's RSS,
    # so a search over a large index would look (and be accounted) as large as
    # the files it touched; reads through the OS's cache cost about the same.
    return FileStorage(str(index), supports_mmap=False)


def _index_names(storage: FileStorage) -> set[str]:
    return {m["name"] for f in storage.list() if (m := _TOC.match(f))}


def _generation(storage: FileStorage, name: str) -> int:
    gens = [int(m["gen"]) for f in storage.list() if (m := _TOC.match(f)) and m["name"] == name]
    return max(gens, default=-1)


def _why_rebuild(storage: FileStorage, name: str) -> str | None:
    """Why an index of another version is being replaced, or None if there is none."""
    others = _index_names(storage) - {name}
    if not others:
        return None
    new = _VERSIONS.match(name)
    old = next((m for other in sorted(others) if (m := _VERSIONS.match(other))), None)
    if new is None or old is None:
        return "the index was made by another version of chronsearch"
    what = {"schema": "the schema", "analyzers": "the analyzers", "janome": "Janome"}
    changes = [
        f"{label} ({old[key].replace('-', '.')} → {new[key].replace('-', '.')})"
        for key, label in what.items()
        if old[key] != new[key]
    ]
    return "changed since the index was made: " + ", ".join(changes)


def _manifest_file(name: str, generation: int) -> str:
    return f"_{name}_{generation}.files.json"


def _read_manifest(storage: FileStorage, name: str, generation: int) -> dict[str, dict[str, Any]] | None:
    try:
        with open(os.path.join(storage.folder, _manifest_file(name, generation)), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
        return None
    files = data.get("files")
    # A record of another shape (edited by hand, say) is no record: the index is rebuilt.
    if not isinstance(files, dict) or not all(_is_record(record) for record in files.values()):
        return None
    return files


def _is_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(key), int) for key in ("events", "size", "mtime_ns"))
        and isinstance(record.get("sha256"), (str, type(None)))  # None: a file that never parsed
    )


def _write_manifest(storage: FileStorage, name: str, generation: int, files: dict[str, Any]) -> None:
    """Write the manifest of ``generation`` atomically: a whole file or none."""
    path = os.path.join(storage.folder, _manifest_file(name, generation))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"format": _MANIFEST_FORMAT, "files": files}, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _drop_manifests(storage: FileStorage, name: str, *, keep: int | None) -> None:
    keep_file = _manifest_file(name, keep) if keep is not None else None
    for filename in storage.list():
        if filename.startswith(f"_{name}_") and ".files.json" in filename and filename != keep_file:
            _delete(storage, filename)


def _remove_other_indexes(storage: FileStorage, *, keep: str) -> None:
    """Delete the files of indexes (and caches) made by other versions, now that ours is committed."""
    for name in _index_names(storage) - {keep}:
        for filename in storage.list():
            if filename.startswith((f"_{name}_", f"{name}_")):
                _delete(storage, filename)
    for filename in storage.list():
        if filename.startswith("janome-cache-") and filename != cache_file_name():
            _delete(storage, filename)


def _analysis_cache(index: Path, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    # Without a cache file, one in memory still carries the work of the
    # analysing processes to this one.
    return janome_cache(index / cache_file_name() if enabled else ":memory:")


def _jobs(jobs: int | None) -> int:
    return jobs if jobs is not None else (os.cpu_count() or 1)


def _text(event: Event) -> str:
    return event.text


def _delete(storage: FileStorage, filename: str) -> None:
    try:
        storage.delete_file(filename)
    except OSError:
        pass  # a reader may still hold it open; the next commit tries again


@contextmanager
def _write_lock(
    storage: FileStorage, index: Path, wait: float, on_wait: Callable[[], None] | None
) -> Iterator[None]:
    lock = storage.lock(_LOCK)
    if not lock.acquire():
        if on_wait is not None:
            on_wait()
        deadline = time.monotonic() + wait
        while not lock.acquire():
            if time.monotonic() >= deadline:
                raise IndexLockedError(
                    f"{index}: another process is writing the index; gave up after {wait:g} s"
                )
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.release()
