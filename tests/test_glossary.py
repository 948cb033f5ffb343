"""The bilingual glossary: its file, query expansion, and the index following its edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chronsearch import ChronicleIndex, ChronsearchError, update
from chronsearch.cli import cli
from chronsearch.glossary import GLOSSARY_FILE, Glossary, name_key, parse_glossary

from .conftest import SEEDS
from .test_search import EVENTS, everything, ids, ja

KYOTO = ja(16, 114)


def test_parse_rows_comments_and_blank_lines() -> None:
    text = "# names\nKyoto\t京都\n\n  \nHigh-tech Zone\t高新区\tハイテク産業区  # the park\n"
    assert parse_glossary(text, source="g.tsv") == [("Kyoto", "京都"), ("High-tech Zone", "高新区", "ハイテク産業区")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Kyoto\t京都\nOsaka 大阪\n", 2, "a glossary row needs two or more names separated by tabs"),
        ("Kyoto\t京都\n\nIBM\t…\n", 3, "a glossary name needs a letter or a digit"),
    ],
)
def test_a_bad_row_names_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ChronsearchError) as err:
        parse_glossary(text, source="g.tsv")
    assert str(err.value) == f"g.tsv:{line}: {message}"


def test_names_compare_by_their_words() -> None:
    glossary = Glossary([("High-tech Zone", "高新区")])
    for spelling in (["high-tech", "zone"], ["High", "tech", "Zone"], ["ＨＩＧＨ－ＴＥＣＨ　ＺＯＮＥ"]):
        assert glossary.equivalents(spelling) == ("高新区",)
    assert glossary.equivalents(["高新区"]) == ("High-tech Zone",)
    assert glossary.equivalents(["zone"]) == ()
    assert name_key("IBM") == name_key("ＩＢＭ") == "ibm"


def test_the_seed_glossary_holds_thirty_real_pairs() -> None:
    rows = parse_glossary((SEEDS / GLOSSARY_FILE).read_bytes(), source=GLOSSARY_FILE)
    assert sum(len(row) - 1 for row in rows) >= 30
    seeds_text = name_key(" ".join(event.text for event in EVENTS))
    for row in rows:
        found = [name for name in row if name_key(name) in seeds_text]
        assert found, f"no name of {row} occurs in the chronicles"


def test_an_english_query_finds_japanese_events_and_says_how(ix: ChronicleIndex) -> None:
    results = everything(ix, "Kyoto")
    assert ids(results) == KYOTO
    assert results.expansions == (("Kyoto", "京都"),)
    assert {hit.expansions for hit in results.hits} == {(("Kyoto", "京都"),)}
    # The equivalent is highlighted, since it is what matched.
    assert all("京都" in [hit.snippet[a:b] for a, b in hit.highlights] for hit in results.hits)


def test_a_japanese_query_finds_english_events(ix: ChronicleIndex) -> None:
    expanded = everything(ix, "高新区")
    by_hand = '高新区 OR "high-tech zone" OR "hi-tech zone" OR ハイテク産業区'
    assert ids(expanded) == ids(everything(ix, by_hand, glossary=False))
    english = [hit for hit in expanded.hits if hit.lang == "en"]
    assert len(english) == 23
    assert all({pair[1] for pair in hit.expansions} & {"High-tech Zone", "Hi-tech Zone"} for hit in english)


def test_multi_word_names_and_phrases_expand(ix: ChronicleIndex) -> None:
    for query in ("Li Keqiang", '"li keqiang"', "Kyoto Prefecture"):
        results = everything(ix, query)
        assert results.hits, query
        assert all(hit.expansions for hit in results.hits)
    # The longest name wins: "Kyoto Prefecture" is 京都府, not 京都 and a prefecture.
    assert ids(everything(ix, "Kyoto Prefecture")) == ja(114)


def test_expansions_respect_filters_and_operators(ix: ChronicleIndex) -> None:
    assert everything(ix, "Kyoto", lang="en").total == 0
    assert everything(ix, "Kyoto", month=2).total == 1
    assert ids(everything(ix, "訪問 AND NOT Kyoto")) == ids(everything(ix, "訪問", glossary=False)) - KYOTO


@pytest.mark.parametrize(
    "query",
    [
        "NOT High-tech Zone",  # (NOT high-tech) AND zone
        "NOT Kyoto Prefecture",
        "Kyoto Prefecture OR investigated",  # kyoto AND (prefecture OR investigated)
        "Dalian OR High-tech Zone",
        "High-tech Zone ANDNOT investigated",
    ],
)
def test_a_name_never_regroups_the_words_around_an_operator(ix: ChronicleIndex, query: str) -> None:
    # Operators bind single words, so a name of several words next to one is not a name
    # there; each word keeps the meaning it has without the glossary.
    with_names = everything(ix, query)
    assert ids(with_names) == ids(everything(ix, query, glossary=False)), query
    assert not any(hit.expansions and " " in typed for hit in with_names.hits for typed, _ in hit.expansions)


def test_a_boosted_word_is_not_part_of_a_name(ix: ChronicleIndex) -> None:
    typed = ids(everything(ix, "Dalian", glossary=False))
    assert typed and ids(everything(ix, "Dalian")) > typed
    assert ids(everything(ix, "Dalian^2")) == typed
    assert ids(everything(ix, "Kyoto Prefecture^2")) != ids(everything(ix, "Kyoto Prefecture"))


def test_a_name_next_to_the_implicit_operator_still_expands(ix: ChronicleIndex) -> None:
    # "a b AND c" is "a AND b AND c" either way: the name keeps its equivalents.
    found = everything(ix, "High-tech Zone AND NOT investigated")
    assert found.total > everything(ix, "High-tech Zone AND NOT investigated", glossary=False).total
    assert {typed for hit in found.hits for typed, _ in hit.expansions} == {"High-tech Zone"}
    assert everything(ix, "Kyoto Prefecture OR Dalian", match="any").total == everything(
        ix, "Kyoto Prefecture Dalian", match="any"
    ).total


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_index_follows_glossary_edits(tmp_path: Path, seeds_copy: Path) -> None:
    loc = ["--seeds", str(seeds_copy), "--index", str(tmp_path / "index")]
    glossary = seeds_copy / GLOSSARY_FILE
    assert run("index", *loc).exit_code == 0
    assert run("search", "Toshiba", "--lang", "ja", *loc).exit_code == 1

    with ChronicleIndex.open(tmp_path / "index") as ix:
        assert ix.search("東芝").total == 0
        glossary.write_text(glossary.read_text(encoding="utf-8") + "東芝\tToshiba\n", encoding="utf-8")
        edited = run("search", "東芝", "--json", *loc)  # refreshes the index first
        assert "1 changed" in edited.stderr
        data = json.loads(edited.stdout)
        assert [hit["expansions"] for hit in data["hits"]] == [[["東芝", "Toshiba"]]]
        # An index already open sees the edit too.
        assert ix.search("東芝").total == 1

        # A broken glossary is reported, and the last good one keeps working.
        glossary.write_text(glossary.read_text(encoding="utf-8") + "Osaka 大阪\n", encoding="utf-8")
        broken = run("search", "東芝", *loc)
        assert broken.exit_code == 2
        lines = len(glossary.read_text(encoding="utf-8").splitlines())
        assert f"{glossary}:{lines}: a glossary row needs two or more names separated by tabs" in broken.stderr
        assert "Toshiba" in broken.stdout

        glossary.unlink()
        assert run("search", "東芝", *loc).exit_code == 1
        assert ix.search("Kyoto").total == 0


def test_an_update_counts_the_glossary_as_a_file(tmp_path: Path, seeds_copy: Path) -> None:
    stats = update(seeds_copy, tmp_path / "index")
    assert (stats.added_files, stats.events_total) == (3, 92)
    (seeds_copy / GLOSSARY_FILE).write_text("Toshiba\t東芝\n", encoding="utf-8")
    stats = update(seeds_copy, tmp_path / "index")
    assert (stats.changed_files, stats.unchanged_files, stats.events_added) == (1, 2, 0)
