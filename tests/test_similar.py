"""Similar events, within a language and across languages through the glossary."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chronsearch import ChronicleIndex, ChronsearchError
from chronsearch.cli import cli

from .conftest import SEEDS
from .test_search import EN, EVENTS, JA, refs


def test_the_same_text_is_the_most_similar(ix: ChronicleIndex) -> None:
    # Lines 27 and 63 of the 2014 chronicle are the same visit, word for word.
    assert refs(ix.similar(f"{EN}:27"))[0] == f"{EN}:63"
    assert refs(ix.similar(ix.get(f"{EN}:63").id))[0] == f"{EN}:27"


def test_events_sharing_telling_words_come_first(ix: ChronicleIndex) -> None:
    # Both are "The opening ceremony of … was held."
    assert f"{EN}:23" in refs(ix.similar(f"{EN}:7", limit=3))
    # Both are Start-up Workshop.
    assert refs(ix.similar(f"{EN}:11", limit=1)) == [f"{EN}:65"]
    # Latin names in Japanese text count: both of these name IBM (twice in 56,
    # so it weighs most in its query).
    assert refs(ix.similar(f"{JA}:56", limit=1)) == [f"{JA}:102"]


def test_across_languages_through_the_glossary(ix: ChronicleIndex) -> None:
    # ZTE's smart-city agreement (2014) and Kyoto's smart-city agreement (2017).
    results = ix.similar(f"{EN}:41", lang="ja", limit=100)
    assert {hit.lang for hit in results.hits} == {"ja"}
    (kyoto,) = [hit for hit in results.hits if hit.line == 114]
    assert ("Smart city", "スマートシティ") in kyoto.expansions
    assert all(hit.expansions for hit in results.hits)  # Japanese events share no English words
    back = ix.similar(f"{JA}:114", lang="en", limit=100)
    assert f"{EN}:41" in refs(back)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.id)
def test_never_itself_best_first_and_pages_agree(ix: ChronicleIndex, event) -> None:
    results = ix.similar(event.id, limit=200)
    assert event.id not in [hit.id for hit in results.hits]
    assert results.total == len(results.hits)
    scores = [hit.score for hit in results.hits]
    assert scores == sorted(scores, reverse=True)
    assert [hit.id for hit in ix.similar(event.id, limit=3, offset=2).hits] == [hit.id for hit in results.hits[2:5]]


@pytest.mark.parametrize("ref", ["nope.txt#1", f"{EN}:4294967296", f"{EN}:99999999999999999999", f"{EN}:²", f"{EN}:-3"])
def test_an_unknown_event_is_an_error(ix: ChronicleIndex, ref: str) -> None:
    with pytest.raises(ChronsearchError, match=f"no event {ref!r}"):
        ix.similar(ref)
    with pytest.raises(ChronsearchError, match=f"no event {ref!r}"):
        ix.get(ref)


def test_the_cli_command(seeds_index) -> None:
    loc = ["--seeds", str(SEEDS), "--index", str(seeds_index)]
    runner = CliRunner()
    text = runner.invoke(cli, ["similar", f"{EN}:41", "--limit", "2", *loc])
    assert text.exit_code == 0
    assert text.output.startswith("Events like 2014     en  2014-industrial-development-events.en.txt:41\n  ZTE Corporation")
    assert "1-2 of" in text.output
    data = json.loads(runner.invoke(cli, ["similar", f"{JA}:114", "--lang", "en", "--json", *loc]).output)
    assert data["query"] == f"{JA}#39"  # the event's id
    assert {hit["lang"] for hit in data["hits"]} == {"en"}
    assert all(hit["expansions"] for hit in data["hits"])
    missing = runner.invoke(cli, ["similar", "nope.txt:3", *loc])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("chronsearch: error: no event 'nope.txt:3'")


def test_words_in_every_event_make_no_event_alike(tmp_path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    chronicle = seeds / "2019 events.en.txt"
    chronicle.write_text("2019\n\nThe zone grew fast.\n\nThe zone grew slowly.\n", encoding="utf-8")
    loc = ["--seeds", str(seeds), "--index", str(tmp_path / "index")]
    alike = CliRunner().invoke(cli, ["similar", f"{chronicle.name}:3", "--json", *loc], catch_exceptions=False)
    assert alike.exit_code == 1, alike.output  # "zone" and "grew" are in both events: nothing tells them apart
    assert json.loads(alike.stdout)["total"] == 0
    chronicle.write_text(chronicle.read_text(encoding="utf-8") + "\nA park opened.\n", encoding="utf-8")
    alike = CliRunner().invoke(cli, ["similar", f"{chronicle.name}:3", "--json", *loc], catch_exceptions=False)
    assert [hit["line"] for hit in json.loads(alike.stdout)["hits"]] == [5]
