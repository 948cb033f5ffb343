"""The large corpora of ``../shared/scale``, for benchmarks.

The archives are unpacked once into a cache folder outside the project
(``$CHRONSEARCH_BENCH_CACHE``, else ``<tmp>/chronsearch-bench``), never into it.

    >>> events = list(scale_events("ja-text", limit=3))
    >>> write_split_corpus(Path("/tmp/c"), files=1000, events_per_file=30)
"""

from __future__ import annotations

import itertools
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from chronsearch.chronicle import Event, find_chronicles, read_chronicle

ROOT = Path(__file__).resolve().parents[1]
SHARED_SCALE = Path(os.environ.get("CHRONSEARCH_SCALE", ROOT.parent / "shared" / "scale"))
CORPORA = {"en-news": "chron-en-news", "en-prose": "chron-en-prose", "ja-text": "chron-ja-text"}
EN_MONTHS = "January February March April May June July August September October November December".split()


def cache_dir() -> Path:
    path = Path(os.environ.get("CHRONSEARCH_BENCH_CACHE", Path(tempfile.gettempdir()) / "chronsearch-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def unpack(corpus: str) -> Path:
    """The folder of one corpus's chronicle files, unpacked on first use."""
    name = CORPORA[corpus]
    target = cache_dir() / name
    done = cache_dir() / f".{name}.unpacked"
    if not done.exists():
        archive = SHARED_SCALE / f"{name}.tar.xz"
        if not archive.exists():
            raise SystemExit(f"{archive} not found: the scale corpora live in ../shared/scale")
        with tarfile.open(archive) as tar:
            tar.extractall(cache_dir(), filter="data")
        done.touch()
    return target


def scale_events(corpus: str, *, limit: int | None = None) -> Iterator[Event]:
    """The events of one corpus, in file order."""
    folder = unpack(corpus)
    events = (e for path in find_chronicles(folder) for e in read_chronicle(path, root=folder))
    return itertools.islice(events, limit)


def write_chronicle(path: Path, events: list[Event], *, title: str) -> None:
    """Write ``events`` (all of one year) as a chronicle file with month headings."""
    lines = [title, ""]
    month = None
    for event in events:
        if event.month != month and event.month is not None:
            month = event.month
            lines += [EN_MONTHS[month - 1] if event.lang == "en" else f"{month}月", ""]
        lines += [event.text, ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_split_corpus(
    out: Path, *, files: int, events_per_file: int, corpora: tuple[str, ...] = ("ja-text", "en-news")
) -> int:
    """``files`` chronicles of ``events_per_file`` events, taken in turn from ``corpora``.

    Returns the number of events written. Each file holds consecutive events
    of one year, so years and months stay true to the source.
    """
    out.mkdir(parents=True, exist_ok=True)
    streams = [scale_events(c) for c in corpora]
    written = 0
    for n in range(files):
        stream = streams[n % len(streams)]
        chunk = list(itertools.islice(stream, events_per_file))
        year = chunk[0].year
        chunk = [e for e in chunk if e.year == year]
        write_chronicle(out / f"{year}-{n:04d}.txt", chunk, title=f"{year} Events")
        written += len(chunk)
    return written
