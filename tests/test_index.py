"""Keeping the index in step with the files: incremental updates, bad files, versions, locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from whoosh.fields import TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import create_in

from chronsearch import (
    ChronicleIndex,
    ChronsearchError,
    IndexDamagedError,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
    build,
    is_fresh,
    update,
)
from chronsearch.analysis import ANALYSIS_VERSION
from chronsearch.chronicle import read_chronicle
from chronsearch.indexing import index_events
from chronsearch.schema import SCHEMA_VERSION, index_name

from .conftest import SEEDS

EN = "2014-industrial-development-events.en.txt"
JA = "2017-park-chronicle.ja.txt"


def counts(stats) -> tuple[int, int, int, int, int, int, int]:
    """(added, changed, removed, unchanged files, events added, removed, total)."""
    return (
        stats.added_files,
        stats.changed_files,
        stats.removed_files,
        stats.unchanged_files,
        stats.events_added,
        stats.events_removed,
        stats.events_total,
    )


def total(index: Path, query: str) -> int:
    with ChronicleIndex.open(index) as ix:
        return ix.search(query).total


def test_first_update_adds_every_file(tmp_path: Path, seeds_copy: Path):
    stats = update(seeds_copy, tmp_path / "index")
    assert counts(stats) == (3, 0, 0, 0, 92, 0, 92)
    assert (stats.errors, stats.rebuilt) == ((), None)
    assert set(stats.to_dict()) == {
        "added_files",
        "changed_files",
        "removed_files",
        "unchanged_files",
        "events_added",
        "events_removed",
        "events_total",
        "took_ms",
        "errors",
        "rebuilt",
    }


def test_nothing_changed_commits_nothing(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    files_before = sorted(os.listdir(index))
    stats = update(seeds_copy, index)
    assert counts(stats) == (0, 0, 0, 3, 0, 0, 92)
    assert not stats.changed
    assert sorted(os.listdir(index)) == files_before


def test_a_touched_file_is_checked_by_hash_and_not_reindexed(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    os.utime(seeds_copy / EN, ns=(1, 1))
    assert not is_fresh(seeds_copy, index)
    assert counts(update(seeds_copy, index)) == (0, 0, 0, 3, 0, 0, 92)
    assert is_fresh(seeds_copy, index)


def test_an_edited_file_is_reindexed_alone(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    path = seeds_copy / EN
    path.write_text(path.read_text().replace("Toshiba", "Hitachi"))
    assert not is_fresh(seeds_copy, index)
    assert counts(update(seeds_copy, index)) == (0, 1, 0, 2, 35, 35, 92)
    assert (total(index, "Hitachi"), total(index, "Toshiba"), total(index, "京都")) == (1, 0, 2)


def test_added_and_removed_files(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    (seeds_copy / "more").mkdir()
    (seeds_copy / "more" / "2018.txt").write_text("2018 Events\n\nA delegation from Nagoya visited.\n")
    (seeds_copy / JA).unlink()
    assert counts(update(seeds_copy, index)) == (1, 0, 1, 2, 1, 57, 36)
    assert (total(index, "Nagoya"), total(index, "京都")) == (1, 0)
    with ChronicleIndex.open(index) as ix:
        assert ix.stats().source == {EN: 35, "more/2018.txt": 1}


def test_full_reindexes_every_file(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    stats = build(seeds_copy, index)
    assert counts(stats) == (0, 3, 0, 0, 92, 92, 92)
    assert stats.rebuilt == "asked for (--full)"


def test_bad_files_are_reported_and_the_others_indexed(tmp_path: Path, seeds_copy: Path):
    (seeds_copy / "latin1.txt").write_bytes("2015 Events\n\nCafé opened.\n".encode("latin-1"))
    (seeds_copy / "undated.txt").write_text("Events\n\nA plant opened.\n")
    (seeds_copy / "binary.txt").write_bytes(b"2015\n\n\x00\x01\x02")
    index = tmp_path / "index"
    stats = update(seeds_copy, index)
    assert counts(stats) == (3, 0, 0, 0, 92, 0, 92)
    expected_errors = [
        f"{seeds_copy / 'binary.txt'}:3: binary file",
        f"{seeds_copy / 'latin1.txt'}:3: cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS",
        f"{seeds_copy / 'undated.txt'}:1: no year in the title or the file name",
    ]
    assert sorted(stats.errors) == expected_errors
    assert (total(index, "Toshiba"), total(index, "京都")) == (1, 2)
    # Unchanged bad files are not read again, but still reported; the index stays fresh.
    again = update(seeds_copy, index)
    assert counts(again) == (0, 0, 0, 6, 0, 0, 92)
    assert sorted(again.errors) == expected_errors
    assert is_fresh(seeds_copy, index)


def test_a_broken_edit_keeps_the_last_good_events(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    path = seeds_copy / JA
    good = path.read_bytes()
    path.write_bytes(good + b"\n\n\xff\xfe broken")
    broken = update(seeds_copy, index)
    assert broken.errors == (f"{path}:164: cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS",)
    assert total(index, "京都") == 2
    assert build(seeds_copy, index).errors == broken.errors  # even a full rebuild keeps them
    assert total(index, "京都") == 2
    path.write_bytes(good.replace("京都".encode(), "大阪".encode()))
    fixed = update(seeds_copy, index)
    assert (fixed.changed_files, fixed.errors) == (1, ())
    assert (total(index, "京都"), total(index, "大阪")) == (0, 2)


@pytest.mark.parametrize("keep", [0, 100, -20], ids=["emptied", "truncated", "cut short"])
def test_a_damaged_index_is_an_error_then_rebuilt(tmp_path: Path, seeds_copy: Path, keep: int):
    index = tmp_path / "index"
    update(seeds_copy, index)
    (toc,) = index.glob("*.toc")
    toc.write_bytes(toc.read_bytes()[:keep])
    with pytest.raises(IndexDamagedError, match=r"the index is damaged \(.+\); rebuild it with `chronsearch index --full`"):
        ChronicleIndex.open(index)
    stats = update(seeds_copy, index)  # nothing changed in the chronicles, but the index must be made anew
    assert stats.rebuilt is not None and stats.rebuilt.startswith("the index was damaged (")
    assert (stats.events_added, stats.events_total, total(index, "")) == (92, 92, 92)
    assert update(seeds_copy, index).rebuilt is None


@pytest.mark.parametrize(
    "files",
    [None, [], {"x.txt": 3}, {"2014-industrial-development-events.en.txt": {"size": 1}}],
    ids=["null", "a list", "a number", "a record without events"],
)
def test_a_manifest_of_another_shape_is_no_record(tmp_path: Path, seeds_copy: Path, files: object):
    index = tmp_path / "index"
    update(seeds_copy, index)
    (manifest,) = index.glob("*.files.json")
    manifest.write_text(json.dumps({"format": 1, "files": files}), encoding="utf-8")
    assert not is_fresh(seeds_copy, index)
    stats = update(seeds_copy, index)
    assert stats.rebuilt == "the index had no record of its files"
    assert stats.events_total == 92
    assert total(index, "") == 92


def test_a_lost_manifest_is_repaired_without_duplicates(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    for manifest in index.glob("*.files.json"):
        manifest.unlink()
    (seeds_copy / EN).unlink()
    stats = update(seeds_copy, index)
    assert stats.rebuilt == "the index had no record of its files"
    assert counts(stats) == (1, 1, 1, 0, 57, 92, 57)  # the glossary is "added" again
    assert counts(update(seeds_copy, index)) == (0, 0, 0, 2, 0, 0, 57)


def test_missing_index_and_missing_seeds(tmp_path: Path):
    with pytest.raises(IndexMissingError, match="no index here; build it with `chronsearch index`"):
        ChronicleIndex.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissingError):
        ChronicleIndex.open(tmp_path / "empty")
    with pytest.raises(ChronsearchError, match="no such seeds directory"):
        update(tmp_path / "nowhere", tmp_path / "index")


def old_index(index: Path) -> None:
    """An index as chronsearch 0.0 with Janome 0.4.0 would have left it."""
    index.mkdir(parents=True, exist_ok=True)
    old = create_in(str(index), Schema(body=TEXT(stored=True)), indexname="events_s0_a0_j0-4-0")
    with old.writer() as writer:
        writer.add_document(body="from an older version")


def test_an_index_of_another_version_is_refused_then_replaced(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    old_index(index)
    with pytest.raises(
        IndexVersionError, match="built by another version of chronsearch; rebuild it with `chronsearch index`"
    ):
        ChronicleIndex.open(index)
    stats = update(seeds_copy, index)
    assert stats.rebuilt == (
        "changed since the index was made: "
        f"the schema (0 → {SCHEMA_VERSION}), the analyzers (0 → {ANALYSIS_VERSION}), Janome (0.4.0 → 0.5.0)"
    )
    assert not [f for f in index.iterdir() if "events_s0" in f.name]
    assert total(index, "Toshiba") == 1


def test_a_locked_index_refuses_a_second_writer_and_keeps_answering(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    (seeds_copy / "2018.txt").write_text("2018 Events\n\nA delegation from Nagoya visited.\n")
    writer = FileStorage(str(index)).open_index(index_name()).writer()
    try:
        with pytest.raises(IndexLockedError, match="another process is writing the index"):
            update(seeds_copy, index)
        assert total(index, "Toshiba") == 1
    finally:
        writer.cancel()
    assert update(seeds_copy, index).added_files == 1


def test_an_open_index_sees_later_commits(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    with ChronicleIndex.open(index) as ix:
        assert ix.search("Nagoya").total == 0
        (seeds_copy / "2018.txt").write_text("2018 Events\n\nA delegation from Nagoya visited.\n")
        update(seeds_copy, index)
        assert ix.search("Nagoya").total == 1


def test_an_open_index_sees_deletions_in_segments_it_already_read(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    with ChronicleIndex.open(index) as ix:
        before = ix.search("zone", limit=1).total
        assert before > 0
        # Every event of the first segment is deleted, and written again in a second one.
        rebuilt = update(seeds_copy, index, full=True)
        assert ix.search("zone", limit=1).total == before
        assert ix.stats().events == rebuilt.events_total


def test_kanji_only_events_are_searchable_through_ngrams(tmp_path: Path, seeds_copy: Path):
    (seeds_copy / "2016.txt").write_text("2016年表\n\n大連高新区管委会成立\n", encoding="utf-8")
    index = tmp_path / "index"
    update(seeds_copy, index)
    with ChronicleIndex.open(index) as ix:
        hits = ix.search("管委会成立", lang="cjk").hits
        assert [(h.source, h.lang, h.text) for h in hits] == [("2016.txt", "cjk", "大連高新区管委会成立")]
        assert ix.search("委", lang="cjk").total == 1


def test_a_full_rebuild_with_a_warm_cache_never_runs_janome(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    code = (
        "import sys\n"
        "from chronsearch import build\n"
        f"stats = build({str(seeds_copy)!r}, {str(index)!r})\n"
        "print(stats.events_added, 'janome.tokenizer' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["92", "False"]
    assert total(index, "京都") == 2


def test_cached_analysis_equals_fresh_analysis(tmp_path: Path):
    from chronsearch.analysis import JAPANESE, janome_cache
    from chronsearch.chronicle import read_chronicle

    from .conftest import SEEDS

    texts = [e.text for e in read_chronicle(SEEDS / JA, root=SEEDS)] * 2

    def analyse() -> list[list[tuple[str, int, int, int]]]:
        return [
            [(t.text, t.pos, t.startchar, t.endchar) for t in JAPANESE(x, positions=True, chars=True, mode="index")]
            for x in texts
        ]

    fresh = analyse()
    for _ in range(2):  # the first pass fills the cache, the second reads it
        with janome_cache(tmp_path / "cache.sqlite"):
            assert analyse() == fresh
    with janome_cache(tmp_path / "cache.sqlite", readonly=True) as cache:
        cache.preload(texts[5:20])  # as a search reads a page of hits: some in one query
        assert analyse() == fresh


def test_a_lost_manifest_and_a_broken_file_lose_nothing(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    update(seeds_copy, index)
    for manifest in index.glob("*.files.json"):
        manifest.unlink()
    ja = seeds_copy / JA
    ja.write_bytes(ja.read_bytes() + b"\n\n\xff broken")
    stats = update(seeds_copy, index)
    assert (stats.errors[0].split(": ", 1)[1], stats.events_total) == ("cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS", 92)
    assert total(index, "京都") == 2
    ja.unlink()
    assert counts(update(seeds_copy, index)) == (0, 0, 1, 2, 0, 57, 35)
    assert total(index, "京都") == 0


def test_highlights_are_the_same_without_an_analysis_cache(tmp_path: Path, seeds_copy: Path, ix: ChronicleIndex):
    update(seeds_copy, tmp_path / "plain", cache=False)
    assert not list((tmp_path / "plain").glob("janome-cache-*"))
    with ChronicleIndex.open(tmp_path / "plain") as plain:
        for query in ("受ける", "ハイテク産業区", "設立する"):
            assert [h.highlights for h in plain.search(query).hits] == [h.highlights for h in ix.search(query).hits]


@pytest.mark.parametrize("japanese", [True, False], ids=["processes", "no processes"])
def test_analysing_ahead_reads_events_only_as_needed(tmp_path: Path, monkeypatch, japanese: bool):
    """A large build holds a few chunks of events at a time, not the corpus."""
    import chronsearch.analysis as analysis

    monkeypatch.setattr(analysis, "PARALLEL_MIN", 10)
    texts = ["京都を訪問した。", "大連に設立された。"] if japanese else ["Police probe the fire."]
    read = 0

    def events():
        nonlocal read
        for i in range(20_000):
            read += 1
            yield texts[i % len(texts)]

    with analysis.janome_cache(tmp_path / "cache.sqlite") as cache:
        for text in texts:  # analysed once, so the processes have nothing to do
            list(analysis.JAPANESE(text, mode="index"))
        cache.flush()
        ahead = analysis.analysed_ahead(events(), str, jobs=2)
        first = next(ahead)
        held = read
        assert [first, *ahead] == [texts[i % len(texts)] for i in range(20_000)]
    if japanese:
        assert held <= analysis._CHUNK * (analysis._AHEAD * 2 + 2)


@pytest.mark.parametrize("cache", [True, False])
def test_analysing_in_processes_indexes_the_same_terms(tmp_path: Path, monkeypatch, cache: bool):
    import chronsearch.analysis

    monkeypatch.setattr(chronsearch.analysis, "PARALLEL_MIN", 1)  # the seeds are small
    events = [e for path in sorted(SEEDS.glob("*.txt")) for e in read_chronicle(path, root=SEEDS)]
    index_events(events, tmp_path / "one", jobs=1, cache=cache)
    index_events(events, tmp_path / "two", jobs=2, cache=cache)

    def postings(index: Path) -> list:
        """Every term's postings: documents, weights and positions."""
        found = []
        with ChronicleIndex.open(index) as ix:
            reader = ix._current_searcher().reader()
            for field, term in reader.all_terms():
                matcher, items = reader.postings(field, term), []
                while matcher.is_active():
                    items.append((matcher.id(), matcher.weight(), matcher.value()))
                    matcher.next()
                found.append((field, term, items))
        return found

    assert postings(tmp_path / "one") == postings(tmp_path / "two")
    if cache:  # the workers' analysis went into the cache file
        assert list((tmp_path / "two").glob("janome-cache-*"))
