"""Building and opening the index: bad files, rebuilds, old versions, a locked index."""

from __future__ import annotations

from pathlib import Path

import pytest
from whoosh.fields import TEXT, Schema
from whoosh.index import create_in

from chronsearch import (
    ChronicleIndex,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
    build,
)
from chronsearch.schema import index_name


def test_build_reports_files_and_events(tmp_path: Path, seeds_copy: Path):
    stats = build(seeds_copy, tmp_path / "index")
    assert (stats.files, stats.events, stats.errors) == (2, 92, ())
    assert set(stats.to_dict()) == {"files", "events", "took_ms", "errors"}


def test_bad_files_are_reported_and_the_others_indexed(tmp_path: Path, seeds_copy: Path):
    (seeds_copy / "latin1.txt").write_bytes("2015 Events\n\nCafé opened.\n".encode("latin-1"))
    (seeds_copy / "undated.txt").write_text("Events\n\nA plant opened.\n")
    (seeds_copy / "binary.txt").write_bytes(b"2015\n\n\x00\x01\x02")
    stats = build(seeds_copy, tmp_path / "index")
    assert stats.files == 2
    assert stats.events == 92
    assert sorted(stats.errors) == [
        f"{seeds_copy / 'binary.txt'}:3: binary file",
        f"{seeds_copy / 'latin1.txt'}:3: cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS",
        f"{seeds_copy / 'undated.txt'}:1: no year in the title or the file name",
    ]
    with ChronicleIndex.open(tmp_path / "index") as ix:
        assert ix.search("Toshiba").total == 1
        assert ix.search("京都").total == 2


def test_rebuild_drops_events_of_removed_files(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    build(seeds_copy, index)
    (seeds_copy / "2017-park-chronicle.ja.txt").unlink()
    assert build(seeds_copy, index).events == 35
    with ChronicleIndex.open(index) as ix:
        assert ix.stats().events == 35
        assert ix.search("京都").total == 0


def test_an_open_index_sees_a_rebuild(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    build(seeds_copy, index)
    with ChronicleIndex.open(index) as ix:
        assert ix.search("Kyoto").total == 0
        (seeds_copy / "2018.txt").write_text("2018 Events\n\nA delegation from Kyoto visited.\n")
        build(seeds_copy, index)
        assert ix.search("Kyoto").total == 1


def test_missing_index(tmp_path: Path):
    with pytest.raises(IndexMissingError, match="no index here; build it with `chronsearch index`"):
        ChronicleIndex.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissingError):
        ChronicleIndex.open(tmp_path / "empty")


def test_missing_seeds_directory(tmp_path: Path):
    with pytest.raises(Exception, match="no such seeds directory"):
        build(tmp_path / "nowhere", tmp_path / "index")


def _old_index(index: Path) -> None:
    """An index as another version of chronsearch would have left it."""
    index.mkdir(parents=True, exist_ok=True)
    old = create_in(str(index), Schema(body=TEXT(stored=True)), indexname="events_s0_a0_j040")
    with old.writer() as writer:
        writer.add_document(body="from an older version")


def test_an_index_of_another_version_is_refused_then_replaced(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    _old_index(index)
    with pytest.raises(IndexVersionError, match="built by another version of chronsearch; rebuild it with `chronsearch index`"):
        ChronicleIndex.open(index)
    build(seeds_copy, index)
    assert not [f for f in index.iterdir() if "events_s0" in f.name]
    with ChronicleIndex.open(index) as ix:
        assert ix.stats().events == 92


def test_a_locked_index_refuses_a_second_writer_and_keeps_answering(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    build(seeds_copy, index)
    from whoosh.filedb.filestore import FileStorage

    writer = FileStorage(str(index)).open_index(index_name()).writer()
    try:
        with pytest.raises(IndexLockedError, match="being written by another process"):
            build(seeds_copy, index)
        with ChronicleIndex.open(index) as ix:
            assert ix.search("Toshiba").total == 1
    finally:
        writer.cancel()
    assert build(seeds_copy, index).events == 92
