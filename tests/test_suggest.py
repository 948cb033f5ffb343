""""Did you mean", on the real seeds index."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from whoosh.support.levenshtein import damerau_levenshtein

from chronsearch import ChronicleIndex
from chronsearch.analysis import ENGLISH_STOP_WORDS
from chronsearch.cli import cli
from chronsearch.suggest import correctable_words

from .conftest import SEEDS
from .test_search import EVENTS


@pytest.mark.parametrize(
    ("query", "suggestion"),
    [
        ("Toshbia", "toshiba"),  # a transposition
        ("Mercedez", "mercedes"),
        ("Mercedez Benz", "mercedes Benz"),  # the known word stays as typed
        ("toshiba medicl", "toshiba medical"),
        ("High-tech Zoen", "High-tech zone"),
        ("year:2014 Toshbia", "year:2014 toshiba"),  # field names and values stay
        ("Liaonig OR ZTE", "liaoning OR ZTE"),  # few hits: ZTE has one
        ("アクセンチャ", "アクセンチュア"),  # katakana
        ("イノベーシヨン", "イノベーション"),
        ("大蓮", "大連"),  # kanji
        ("共都", "京都"),  # the kanji that reads the same (きょうと) wins
    ],
)
def test_did_you_mean(ix: ChronicleIndex, query: str, suggestion: str) -> None:
    results = ix.search(query)
    assert results.suggestion == suggestion
    assert ix.search(suggestion).total > results.total


@pytest.mark.parametrize("query", ["Toshiba", "京都", "High-tech Zone", "Zone AND NOT investigated", "", "Nagoya"])
def test_no_suggestion_for_words_the_index_knows_or_cannot_correct(ix: ChronicleIndex, query: str) -> None:
    assert ix.search(query).suggestion is None


def test_the_cli_prints_the_suggestion_and_json_carries_it(seeds_index) -> None:
    loc = ["--seeds", str(SEEDS), "--index", str(seeds_index), "--no-refresh"]
    text = CliRunner().invoke(cli, ["search", "Toshbia", *loc])
    assert (text.exit_code, text.output.splitlines()[-1]) == (1, "Did you mean: toshiba")
    data = json.loads(CliRunner().invoke(cli, ["search", "Toshbia", "--json", *loc]).output)
    assert data["suggestion"] == "toshiba"


def test_correctable_words_skip_operators_fields_and_wildcards() -> None:
    query = 'Toshbia AND year:2014 NOT lang:ja "high tech" innov* Mercedez~ zone~x parck^2 a REQUIRE b 京都'
    words = [m.group() for m in correctable_words(query)]
    assert words == ["Toshbia", "high", "tech", "parck", "a", "b", "京都"]


SEED_WORDS = sorted({w for e in EVENTS if e.lang == "en" for w in re.findall(r"[a-z]{5,}", e.text.lower())})


@st.composite
def typos(draw: st.DrawFn) -> str:
    """A seed word with one deletion, substitution or transposition after its first letter
    (corrections keep the first letter, as Elasticsearch's suggester does by default)."""
    word = draw(st.sampled_from(SEED_WORDS))
    i = draw(st.integers(1, len(word) - 2))
    kind = draw(st.sampled_from(["delete", "substitute", "transpose"]))
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "substitute":
        return word[:i] + draw(st.sampled_from("aeiouxz")) + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


@settings(max_examples=150, deadline=None)
@given(typo=typos().filter(lambda typo: typo not in ENGLISH_STOP_WORDS))
def test_a_suggestion_is_close_and_finds_more(ix: ChronicleIndex, typo: str) -> None:
    # A typo that makes a stop word ("three" → "there") searches for nothing, and is no typo to correct.
    results = ix.search(typo)
    if results.total:
        assert results.suggestion is None  # the typo is a word of the index after all
        return
    assert results.suggestion is not None, typo  # a seed word is one edit away
    assert damerau_levenshtein(typo, results.suggestion) <= 2
    assert ix.search(results.suggestion).total > 0


@settings(max_examples=100, deadline=None)
@given(event=st.sampled_from(EVENTS), data=st.data())
def test_a_query_that_found_all_its_words_has_none_to_correct(ix: ChronicleIndex, event, data) -> None:
    """Why a plain query that found something is given no suggestion: checked
    word by word, every one of its words is known."""
    words = [m.group() for m in correctable_words(event.text)]
    assume(words)
    query = " ".join(data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=3)))
    total = ix.search(query).total
    assume(total > 0)  # not only stop words
    assert ix._suggestion(query, "all", {}, total) is None
