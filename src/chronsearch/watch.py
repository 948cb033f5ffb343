"""Watching the chronicles and updating the index as they change.

    >>> for outcome in watch("seeds", "index"):
    ...     print(outcome)      # an UpdateStats at start, then one per burst of edits

File events come from ``watchfiles`` (inotify on Linux); a burst of changes
(an editor's save, a ``git checkout``) is debounced into one update, and each
update is the ordinary incremental :func:`chronsearch.indexing.update`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from chronsearch.errors import ChronsearchError
from chronsearch.glossary import GLOSSARY_FILE
from chronsearch.indexing import UpdateStats, seeds_directory, update

__all__ = ["watch"]


def _is_tracked(change: object, path: str) -> bool:
    """A chronicle, or the glossary (anywhere: a rename into place counts)."""
    p = Path(path)
    return (p.suffix == ".txt" or p.name == GLOSSARY_FILE) and not p.name.startswith(".")


def watch(
    seeds: str | Path,
    index: str | Path,
    *,
    debounce_ms: int = 300,
    wait: float = 60.0,
    stop: threading.Event | None = None,
) -> Iterator[UpdateStats | ChronsearchError]:
    """Update ``index`` now and after every burst of changes under ``seeds``.

    Yields each update's stats, or the error that stopped it (a locked index,
    say); watching goes on after an error. Ends when ``stop`` is set; Ctrl-C
    raises KeyboardInterrupt. A missing ``seeds`` raises at once, not when
    iterated.
    """
    return _watching(seeds_directory(seeds), index, debounce_ms, wait, stop)


def _watching(
    seeds: str | Path, index: str | Path, debounce_ms: int, wait: float, stop: threading.Event | None
) -> Iterator[UpdateStats | ChronsearchError]:
    # Imported here: only this command needs it, and it costs start-up time.
    from watchfiles import watch as watch_files

    def one_update() -> UpdateStats | ChronsearchError:
        try:
            return update(seeds, index, wait=wait)
        except ChronsearchError as exc:
            return exc

    # The watcher must be running before the first update, or an edit made while
    # that update runs would be missed. It is, once it first reports (a change or
    # a quiet interval); from then on it records changes while updates run.
    batches = watch_files(
        seeds,
        watch_filter=_is_tracked,
        debounce=debounce_ms,
        stop_event=stop,
        yield_on_timeout=True,
        rust_timeout=200,
    )
    next(batches, None)
    yield one_update()
    for changes in batches:
        if changes:
            yield one_update()
