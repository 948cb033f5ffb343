"""Tests of searching the real seeds through a real index.

The expected events of each judged query were chosen by reading the seed
files (which events is the query about?), never by running the code, and are
named ``source:line``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chronsearch import ChronicleIndex, ChronsearchError, QuerySyntaxError, SearchResults, read_chronicle
from chronsearch.analysis import normalize
from chronsearch.chronicle import CJK_CHARS
from chronsearch.glossary import GLOSSARY_FILE, Glossary, parse_glossary
from chronsearch import searching, snippets
from chronsearch.schema import make_schema
from chronsearch.snippets import make_snippet

from .conftest import SEEDS

EN = "2014-industrial-development-events.en.txt"
JA = "2017-park-chronicle.ja.txt"

EVENTS = [event for path in sorted(SEEDS.glob("*.txt")) for event in read_chronicle(path, root=SEEDS)]
BY_REF = {f"{event.source}:{event.line}": event for event in EVENTS}
ALL = set(BY_REF)


def ids(results: SearchResults) -> set[str]:
    """The ``source:line`` of every hit on the page."""
    return {f"{hit.source}:{hit.line}" for hit in results.hits}


def refs(results: SearchResults) -> list[str]:
    """The ``source:line`` of the hits, in page order."""
    return [f"{hit.source}:{hit.line}" for hit in results.hits]


def en(*lines: int) -> set[str]:
    return {f"{EN}:{line}" for line in lines}


def ja(*lines: int) -> set[str]:
    return {f"{JA}:{line}" for line in lines}


def everything(ix: ChronicleIndex, query: str, **kwargs: object) -> SearchResults:
    """Every hit of ``query`` on one page (the seeds hold 92 events)."""
    return ix.search(query, limit=200, **kwargs)


# --- judged queries --------------------------------------------------------

HIGH_TECH_ZONE = en(3, 5, 9, 13, 17, 19, 21, 25, 27, 29, 37, 39, 41, 45, 47, 49, 53, 55, 57, 59, 61, 63)
INVESTIGATED = en(15, 17, 25, 27, 37, 39, 63)
SETSURITSU = ja(6, 10, 40, 80, 98, 152, 154)  # 設立
HIGH_TECH_PARK = ja(  # ハイテク産業区
    8, 10, 16, 18, 20, 26, 28, 32, 42, 50, 52, 56, 68, 70,
    102, 108, 110, 112, 114, 130, 132, 146, 148, 150, 154, 160,
)  # fmt: skip
IBM = ja(56, 102)
YEAR_2017_IN_TEXT = ja(16, 20, 66, 82, 84, 88, 96, 100, 120, 134, 136, 140, 160)

JUDGED = [
    # English: names, single words, stems, phrases, operators and fields.
    pytest.param("Toshiba", {}, en(7), id="en-toshiba"),
    pytest.param("Mercedes", {}, en(43), id="en-mercedes"),
    pytest.param("ZTE", {}, en(41), id="en-zte"),
    pytest.param("CISCO", {}, en(51), id="en-cisco"),
    pytest.param("cisco", {}, en(51), id="en-cisco-lower"),
    pytest.param("MOFCOM", {}, en(29), id="en-mofcom"),
    pytest.param("investigate", {}, INVESTIGATED, id="en-stem-investigate"),
    pytest.param("inspect", {}, en(29), id="en-stem-inspect"),
    pytest.param("establish", {}, en(11, 13, 19, 51, 67), id="en-stem-establish"),
    pytest.param("successful", {}, en(15, 31, 33, 35), id="en-stem-successful"),
    pytest.param("company", {}, en(23, 43), id="en-stem-company"),
    pytest.param('"high-tech zone"', {}, HIGH_TECH_ZONE, id="en-phrase-high-tech-zone"),
    pytest.param('"first batch"', {}, en(3, 5, 61), id="en-phrase-first-batch"),
    pytest.param("Tang Jun", {}, en(27, 63), id="en-two-words"),
    pytest.param("Start-up Workshop", {}, en(11, 65), id="en-start-up-workshop"),
    pytest.param("e-commerce", {}, en(55), id="en-e-commerce"),
    pytest.param("Dalian AND held", {}, en(7, 23, 33, 49, 55), id="en-and"),
    pytest.param("Toshiba OR Mercedes OR ZTE", {}, en(7, 41, 43), id="en-or"),
    pytest.param("Toshiba Mercedes", {}, set(), id="en-match-all"),
    pytest.param("Toshiba Mercedes", {"match": "any"}, en(7, 43), id="en-match-any"),
    pytest.param('investigated NOT "Tang Jun"', {}, en(15, 17, 25, 37, 39), id="en-not"),
    pytest.param("lang:en network", {}, en(51), id="en-lang-field"),
    pytest.param("network year:[2014 TO 2016]", {}, en(51), id="en-year-range"),
    pytest.param("2014", {}, en(31, 33, 35), id="en-digits"),
    # Japanese: kanji compounds, katakana, single kanji, base forms, operators.
    pytest.param("京都", {}, ja(16, 114), id="ja-kyoto"),
    pytest.param("text:京都", {}, ja(16, 114), id="ja-text-field"),
    pytest.param("設立", {}, SETSURITSU, id="ja-setsuritsu"),
    pytest.param("設立する", {}, SETSURITSU, id="ja-setsuritsu-suru"),
    pytest.param("開始する", {}, ja(32, 84, 86, 112, 150), id="ja-kaishi-suru"),
    pytest.param("結ぶ", {}, ja(8), id="ja-base-form-musubu"),
    pytest.param("受ける", {}, ja(68, 72, 160), id="ja-base-form-ukeru"),
    pytest.param("入る", {}, ja(20, 44, 134), id="ja-base-form-hairu"),
    pytest.param("ハイテク産業区", {}, HIGH_TECH_PARK, id="ja-high-tech-park"),
    pytest.param("産業区", {}, HIGH_TECH_PARK, id="ja-sangyouku"),
    pytest.param("高新区", {}, ja(6, 16, 40, 54, 96), id="ja-koushinku"),
    pytest.param("大連市", {}, ja(8, 72, 102, 114, 134), id="ja-dalian-city"),
    pytest.param("遼寧省", {}, ja(10, 60, 80, 122), id="ja-liaoning"),
    pytest.param("中国科学院", {}, ja(8), id="ja-cas"),
    # Janome reads the query as 中国/科学 but the text as one word 中国科学院.
    pytest.param("中国科学", {}, ja(8), id="ja-split-differently"),
    pytest.param("双創", {}, ja(6, 72), id="ja-souso"),
    pytest.param("燃料電池", {}, ja(138), id="ja-fuel-cell"),
    pytest.param("イノベーション", {}, ja(30, 38, 50, 52, 56, 122, 148, 156), id="ja-katakana-innovation"),
    pytest.param("クラウド", {}, ja(20, 38, 86), id="ja-katakana-cloud"),
    # Line 28 spells it ビックデータ: a different string, not found.
    pytest.param("ビッグデータ", {}, ja(26, 40), id="ja-katakana-big-data"),
    pytest.param("パイロット", {}, ja(130, 146, 148), id="ja-katakana-pilot"),
    pytest.param("靳", {}, ja(16), id="ja-single-kanji-rare"),
    pytest.param("府", {}, ja(8, 114), id="ja-single-kanji-in-words"),
    pytest.param("京都 上海", {"match": "any"}, ja(16, 110, 114), id="ja-match-any"),
    pytest.param("高新区 設立", {}, ja(6, 40), id="ja-and-by-space"),
    pytest.param("設立 NOT 遼寧省", {}, ja(6, 40, 98, 152, 154), id="ja-not"),
    pytest.param("month:5 ハイテク産業区", {}, ja(50, 52, 56), id="ja-month-field"),
    pytest.param("ハイテク産業区", {"month": 5}, ja(50, 52, 56), id="ja-month-filter"),
    # Mixed: Latin words inside Japanese events, full-width forms, digits.
    pytest.param("IBM", {}, IBM, id="mixed-ibm"),
    pytest.param("ＩＢＭ", {}, IBM, id="mixed-ibm-fullwidth"),
    pytest.param("ibm", {}, IBM, id="mixed-ibm-lower"),
    pytest.param("IBM", {"lang": "ja"}, IBM, id="mixed-ibm-lang-ja"),
    pytest.param("IBM", {"lang": "en"}, set(), id="mixed-ibm-lang-en"),
    pytest.param("NEC", {}, ja(38), id="mixed-nec"),
    pytest.param("SDN", {}, ja(38), id="mixed-sdn"),
    pytest.param("NEC SDN", {}, ja(38), id="mixed-nec-sdn"),
    pytest.param("COMAC", {}, ja(124), id="mixed-comac"),
    pytest.param("COMAC OR 中国商飛", {}, ja(124), id="mixed-comac-or-kanji"),
    pytest.param("OpenJaw", {}, ja(152), id="mixed-openjaw"),
    pytest.param("openjaw", {}, ja(152), id="mixed-openjaw-lower"),
    pytest.param("INTESIM", {}, ja(86, 120), id="mixed-intesim"),
    pytest.param("ＤＨＣ", {}, ja(38), id="mixed-dhc-fullwidth"),
    pytest.param("2017", {}, YEAR_2017_IN_TEXT, id="mixed-2017"),
    pytest.param("2017", {"year": 2014}, set(), id="mixed-2017-year-2014"),
    pytest.param("506", {}, ja(160), id="mixed-506"),
    pytest.param("network", {}, en(51) | ja(38), id="mixed-network-both-langs"),
    pytest.param("lang:ja network", {}, ja(38), id="mixed-network-lang-field"),
    pytest.param("network", {"lang": "ja"}, ja(38), id="mixed-network-lang-filter"),
    pytest.param("network year:[2015 TO 2020]", {}, ja(38), id="mixed-network-year-range"),
    pytest.param("IBM Toshiba", {"match": "any"}, IBM | en(7), id="mixed-match-any"),
    pytest.param("㎡", {}, ja(18), id="mixed-square-metre"),
    pytest.param("m2", {}, ja(18), id="mixed-m2-finds-square-metre"),
    # Words and phrases that mix scripts, or cross punctuation, must hold together.
    pytest.param("IBM社", {}, ja(56), id="mixed-word-ibm-sha"),
    pytest.param("1000万元", {}, ja(68), id="mixed-word-1000-man-gen"),
    pytest.param("5万㎡", {}, ja(18), id="mixed-word-5-man-m2"),
    pytest.param("双創業", {}, set(), id="bigram-phrase-across-punctuation"),
    pytest.param('"京都 府"', {}, ja(114), id="quoted-phrase-kyoto-fu"),
    pytest.param('"大連 市"', {}, ja(8, 72, 102, 114, 134), id="quoted-phrase-dalian-shi"),
    pytest.param('"Dalian 中国"', {}, set(), id="quoted-phrase-mixed-script"),
    pytest.param("㎢", {}, ja(162), id="square-km"),
]


@pytest.mark.parametrize(("query", "kwargs", "expected"), JUDGED)
def test_judged_query(ix: ChronicleIndex, query: str, kwargs: dict, expected: set[str]) -> None:
    assert expected <= ALL, "a judged event is not in the seeds"
    results = everything(ix, query, glossary=False, **kwargs)
    assert ids(results) == expected
    assert results.total == len(expected)
    # The glossary only adds events, and ranks them after the ones the typed words find.
    expanded = everything(ix, query, **kwargs)
    assert expected <= ids(expanded)
    if kwargs.get("sort") != "chronological":
        assert set(refs(expanded)[: len(expected)]) == expected
    assert all(not hit.expansions for hit in expanded.hits if f"{hit.source}:{hit.line}" in expected)
    assert all(hit.expansions for hit in expanded.hits if f"{hit.source}:{hit.line}" not in expected)


@pytest.mark.parametrize(
    "variants", [("IBM", "ＩＢＭ", "ibm", "Ibm", "text:IBM"), ("OpenJaw", "openjaw", "ＯｐｅｎＪａｗ")]
)
def test_width_and_case_variants_find_the_same_events(ix: ChronicleIndex, variants: tuple[str, ...]) -> None:
    found = [refs(everything(ix, query)) for query in variants]
    assert all(f == found[0] for f in found)
    assert found[0]


# --- CJK queries are phrases -----------------------------------------------


def test_cjk_query_is_a_phrase_not_an_and_of_its_words(ix: ChronicleIndex) -> None:
    # Line 6 holds both 高新区 and 設立, far apart; line 40 too.
    event = BY_REF[f"{JA}:6"]
    assert "高新区" in event.text and "設立" in event.text and "高新区設立" not in event.text
    assert f"{JA}:6" in ids(everything(ix, "高新区 設立"))
    assert ids(everything(ix, "高新区設立")) == set()


def test_cjk_phrase_needs_the_words_in_order(ix: ChronicleIndex) -> None:
    # 中国科学院 and 大連 are both on line 8, 中国科学院大連 once; 大連中国科学院 never.
    assert ids(everything(ix, "中国科学院大連")) == ja(8)
    assert ids(everything(ix, "大連中国科学院")) == set()
    assert ids(everything(ix, "大連 中国科学院")) == ja(8)


# --- ranking --------------------------------------------------------------

RANKED = [
    # English: the exact word outranks a word that only shares its stem.
    pytest.param("successful", en(15), en(31, 33, 35), id="en-successful-over-successfully"),
    pytest.param("company", en(23), en(43), id="en-company-over-companies"),
    # Japanese: a Janome word outranks the same characters inside a longer word.
    pytest.param("パイロット", ja(130, 146), ja(148), id="ja-pilot-over-pilot-area"),
    pytest.param("学院", ja(66), ja(8), id="ja-gakuin-over-kagakuin"),
    pytest.param("成功", ja(138, 162), ja(74, 88), id="ja-seikou-over-seikouri"),
    pytest.param("クラスタ", ja(130), ja(148), id="ja-cluster-over-clusterー"),
]


@pytest.mark.parametrize(("query", "better", "worse"), RANKED)
def test_ranking(ix: ChronicleIndex, query: str, better: set[str], worse: set[str]) -> None:
    results = everything(ix, query, glossary=False)
    order = refs(results)
    assert set(order) == better | worse
    assert set(order[: len(better)]) == better
    scores = {ref: hit.score for ref, hit in zip(order, results.hits)}
    assert min(scores[r] for r in better) > max(scores[r] for r in worse)


def test_scores_are_in_descending_order(ix: ChronicleIndex) -> None:
    """By score, except that events found through the glossary come after the others."""
    for query in ("ハイテク産業区", "Zone", "investigate", "大連 OR Dalian"):
        hits = everything(ix, query).hits
        assert all(hit.score is not None for hit in hits)
        keys = [(not hit.expansions, hit.score) for hit in hits]
        assert keys == sorted(keys, reverse=True)


# --- filters, facets, paging, sorting --------------------------------------


def test_blank_query_matches_every_event(ix: ChronicleIndex) -> None:
    for blank in ("", "   ", "*"):
        results = everything(ix, blank)
        assert results.total == len(EVENTS) == 92
        assert ids(results) == ALL


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"year": 2017}, {r for r, e in BY_REF.items() if e.year == 2017}),
        ({"year": 2014}, {r for r, e in BY_REF.items() if e.year == 2014}),
        ({"year": 2015}, set()),
        ({"lang": "en"}, {r for r, e in BY_REF.items() if e.source == EN}),
        ({"lang": "ja"}, {r for r, e in BY_REF.items() if e.source == JA}),
        ({"month": 5}, ja(50, 52, 54, 56, 58, 60)),  # the 5月 section of the file
        ({"month": 12}, ja(146, 148, 150, 152, 154, 156, 158, 160, 162)),
        ({"year": 2014, "lang": "ja"}, set()),
        ({"year": 2014, "month": 5}, set()),
    ],
)
def test_blank_query_with_filters(ix: ChronicleIndex, kwargs: dict, expected: set[str]) -> None:
    results = everything(ix, "", **kwargs)
    assert ids(results) == expected
    assert results.total == len(expected)


def test_blank_query_counts(ix: ChronicleIndex) -> None:
    assert everything(ix, "", year=2017).total == 57
    assert everything(ix, "", year=2014).total == 35
    assert everything(ix, "", month=5).total == 6


def test_filters_narrow_a_query(ix: ChronicleIndex) -> None:
    both = ids(everything(ix, "Dalian OR 大連"))
    for kwargs in ({"year": 2014}, {"year": 2017}, {"lang": "ja"}, {"month": 11}):
        narrowed = everything(ix, "Dalian OR 大連", **kwargs)
        assert ids(narrowed) < both
        for hit in narrowed.hits:
            assert all(getattr(hit, key) == value for key, value in kwargs.items())


@pytest.mark.parametrize(
    "query", ["", "ハイテク産業区", "Dalian OR 大連", "network", "2017 OR 2014", "investigate"]
)
def test_total_and_facets_count_every_match_not_the_page(ix: ChronicleIndex, query: str) -> None:
    page = ix.search(query, limit=1)
    full = everything(ix, query)
    assert len(page.hits) == 1
    assert page.total == full.total == len(full.hits) > 1
    assert page.facets == full.facets
    facets = page.facets
    assert sum(facets["year"].values()) == page.total
    assert sum(facets["lang"].values()) == page.total
    assert facets["year"] == dict(Counter(str(hit.year) for hit in full.hits))
    assert facets["lang"] == dict(Counter(hit.lang for hit in full.hits))
    # Only events under a month heading count, keyed "YYYY-MM".
    dated = [hit for hit in full.hits if hit.month is not None]
    assert facets["month"] == dict(Counter(f"{hit.year}-{hit.month:02d}" for hit in dated))
    assert sum(facets["month"].values()) == len(dated)
    assert all(re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", key) for key in facets["month"])


def test_facets_of_everything_agree_with_the_seed_files(ix: ChronicleIndex) -> None:
    facets = ix.search("", limit=0).facets
    assert facets["year"] == {"2014": 35, "2017": 57}
    assert facets["lang"] == {"en": 35, "ja": 57}
    months = Counter(f"{e.year}-{e.month:02d}" for e in EVENTS if e.month is not None)
    assert facets["month"] == dict(months)
    assert sum(facets["month"].values()) == 57  # the English seed has no month headings
    assert facets["month"]["2017-05"] == 6


def test_stats_agree_with_the_seed_files(ix: ChronicleIndex) -> None:
    stats = ix.stats()
    assert stats.events == 92
    assert stats.year == {"2014": 35, "2017": 57}
    assert stats.lang == {"en": 35, "ja": 57}
    assert stats.source == {EN: 35, JA: 57}
    assert stats.month == ix.search("", limit=0).facets["month"]


def test_limit_zero_still_counts(ix: ChronicleIndex) -> None:
    results = ix.search("ハイテク産業区", limit=0, glossary=False)
    assert results.hits == ()
    assert results.total == len(HIGH_TECH_PARK)
    assert results.facets["month"]["2017-05"] == 3


@pytest.mark.parametrize("sort", ["relevance", "chronological"])
@pytest.mark.parametrize("query", ["", "ハイテク産業区", '"high-tech zone" OR 大連'])
def test_offset_pages_are_disjoint_and_cover_the_results(ix: ChronicleIndex, query: str, sort: str) -> None:
    full = refs(everything(ix, query, sort=sort))
    offsets = range(0, len(full) + 7, 7)
    pages = [refs(ix.search(query, limit=7, offset=offset, sort=sort)) for offset in offsets]
    seen: set[str] = set()
    for page in pages:
        assert len(page) <= 7
        assert not seen & set(page)
        seen |= set(page)
    assert seen == set(full)
    assert [ref for page in pages for ref in page] == full
    assert pages[-1] == []  # past the end: an empty page, not an error


def test_offset_past_the_end_keeps_the_total(ix: ChronicleIndex) -> None:
    results = ix.search("IBM", offset=50)
    assert results.hits == ()
    assert results.total == 2


def chronological_key(ref: str) -> tuple[int, int, str, int]:
    event = BY_REF[ref]
    return (event.year, event.month or 0, event.source, event.line)


@pytest.mark.parametrize("query", ["", "ハイテク産業区 OR Zone", "Dalian OR 大連", "設立"])
def test_chronological_sort(ix: ChronicleIndex, query: str) -> None:
    results = everything(ix, query, sort="chronological")
    order = refs(results)
    assert order == sorted(order, key=chronological_key)
    assert set(order) == ids(everything(ix, query))
    assert all(hit.score is None for hit in results.hits)


def test_chronological_sort_puts_months_in_order(ix: ChronicleIndex) -> None:
    months = [hit.month for hit in everything(ix, "", lang="ja", sort="chronological").hits]
    assert months == sorted(months)
    assert months[0] == 1 and months[-1] == 12


def test_bad_arguments_raise_value_error(ix: ChronicleIndex) -> None:
    for kwargs in ({"limit": -1}, {"offset": -1}, {"sort": "date"}, {"match": "some"}):
        with pytest.raises(ValueError):
            ix.search("IBM", **kwargs)


def test_hits_carry_the_event(ix: ChronicleIndex) -> None:
    for hit in everything(ix, "").hits:
        event = BY_REF[f"{hit.source}:{hit.line}"]
        assert (hit.id, hit.year, hit.month, hit.lang, hit.text) == (
            event.id, event.year, event.month, event.lang, event.text,
        )  # fmt: skip


# --- duplicates ------------------------------------------------------------


def test_identical_events_are_both_found_with_different_ids(ix: ChronicleIndex) -> None:
    first, second = BY_REF[f"{EN}:27"], BY_REF[f"{EN}:63"]
    assert first.text == second.text
    results = everything(ix, '"Tang Jun"')
    assert ids(results) == en(27, 63)
    hit_ids = {hit.id for hit in results.hits}
    assert hit_ids == {first.id, second.id} and len(hit_ids) == 2
    assert len({hit.score for hit in results.hits}) == 1
    for hit in results.hits:
        assert ix.get(hit.id) == BY_REF[f"{hit.source}:{hit.line}"]
        assert ix.get(f"{hit.source}:{hit.line}").id == hit.id


def test_get_unknown_event(ix: ChronicleIndex) -> None:
    for ref in (f"{EN}:2", f"{EN}#36", "nope.txt#1"):
        with pytest.raises(ChronsearchError):
            ix.get(ref)


# --- snippets and highlights -----------------------------------------------

HIGHLIGHTED = [
    pytest.param("IBM", lambda s: s.lower() == "ibm", id="ibm"),
    pytest.param("ＩＢＭ", lambda s: s.lower() == "ibm", id="ibm-fullwidth"),
    pytest.param("ibm", lambda s: s.lower() == "ibm", id="ibm-lower"),
    pytest.param("investigate", lambda s: s.lower() == "investigated", id="investigate"),
    pytest.param("successful", lambda s: s.lower() in ("successful", "successfully"), id="successful"),
    pytest.param(
        '"high-tech zone"',
        lambda s: re.fullmatch(r"high-\s?tech zones?(['’]s)?", s.lower()),
        id="high-tech-zone",
    ),
    pytest.param("e-commerce", lambda s: s.lower() == "e-commerce", id="e-commerce"),
    pytest.param("京都", lambda s: s == "京都", id="kyoto"),
    pytest.param("設立する", lambda s: s == "設立", id="setsuritsu-suru"),
    pytest.param("受ける", lambda s: s == "受け", id="ukeru"),
    pytest.param("結ぶ", lambda s: s == "結び", id="musubu"),
    pytest.param("ハイテク産業区", lambda s: s == "ハイテク産業区", id="high-tech-park"),
    pytest.param("府", lambda s: s == "府", id="single-kanji"),
    pytest.param("㎡", lambda s: s == "㎡", id="square-metre"),
    pytest.param("m2", lambda s: s == "㎡", id="m2"),
    pytest.param('investigated NOT "Tang Jun"', lambda s: s.lower() == "investigated", id="not-unhighlighted"),
]


@pytest.mark.parametrize(("query", "matches"), HIGHLIGHTED)
def test_highlights_cover_matching_text(ix: ChronicleIndex, query: str, matches) -> None:
    results = everything(ix, query, glossary=False)
    assert results.hits
    for hit in results.hits:
        assert hit.highlights, f"{hit.source}:{hit.line} has no highlight"
        for start, end in hit.highlights:
            assert matches(hit.snippet[start:end]), (hit.snippet, hit.snippet[start:end])


def test_every_occurrence_is_highlighted(ix: ChronicleIndex) -> None:
    # Line 56 names IBM twice and line 160 has 補助 three times; both fit a snippet.
    (ibm,) = [hit for hit in everything(ix, "IBM").hits if hit.line == 56]
    assert [ibm.snippet[a:b] for a, b in ibm.highlights] == ["IBM", "IBM"]
    (hit,) = everything(ix, "補助").hits
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["補助"] * 3


def test_long_english_event_shows_the_matching_sentence(ix: ChronicleIndex) -> None:
    # Line 49 is two sentences; only the second mentions enterprises.
    (hit,) = [hit for hit in everything(ix, "enterprises").hits if hit.line == 49]
    second = hit.text[hit.text.index("A number of") :]
    assert hit.snippet == "…" + second
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["enterprises"]


def test_japanese_snippet_is_cut_after_a_sentence(ix: ChronicleIndex) -> None:
    # Line 56: two sentences, IBM in each; the first fits in 50 characters, both do not.
    (hit,) = [hit for hit in everything(ix, "IBM").hits if hit.line == 56]
    first = hit.text[: hit.text.index("。") + 1]
    snippet, spans = make_snippet(hit.text, list(hit.highlights), width=50)
    assert snippet == first + "…"
    assert [snippet[a:b] for a, b in spans] == ["IBM"]


def sentence_bounds(text: str) -> list[int]:
    return sorted({0, len(text)} | {m.end() for m in re.finditer(r"[。！？!?]+|\.(?=\s)", text)})


@pytest.mark.parametrize("width", [20, 30, 45, 60, 90])
def test_japanese_snippets_end_at_sentences_or_carry_an_ellipsis(ix: ChronicleIndex, width: int) -> None:
    hits = everything(ix, "ハイテク産業区 OR 大連 OR 設立", lang="ja").hits
    long = [hit for hit in hits if len(hit.text) > width]
    assert long
    for hit in long:
        text = hit.text
        # The seeds' Japanese events all fit the default snippet, which is the whole text.
        assert hit.snippet == text
        snippet, spans = make_snippet(text, list(hit.highlights), width=width)
        core = snippet.removeprefix("…").removesuffix("…")
        start = text.find(core)
        end = start + len(core)
        assert start >= 0 and 0 < len(core) <= width
        assert snippet.startswith("…") == (start > 0)
        assert snippet.endswith("…") == (end < len(text))
        bounds = sentence_bounds(text)
        if start not in bounds or end not in bounds:
            # Cut inside a sentence: only when that sentence alone is too long.
            (sentence,) = [(a, b) for a, b in zip(bounds, bounds[1:]) if a <= start and end <= b]
            assert sentence[1] - sentence[0] > width
        # The highlights are the original ones, clipped to what is shown.
        assert spans
        shown = [text[a:b] for a, b in hit.highlights]
        for a, b in spans:
            assert 0 <= a < b <= len(snippet)
            assert any(snippet[a:b] in original for original in shown)


def splits_a_character(snippet: str, cut: int) -> bool:
    """Whether normalizing the two sides of ``cut`` apart differs from normalizing it whole."""
    if cut in (0, len(snippet)):
        return False
    if unicodedata.combining(snippet[cut]):
        return True
    return normalize(snippet[:cut]).text + normalize(snippet[cut:]).text != normalize(snippet).text


@pytest.mark.parametrize("query", [p.values[0] for p in JUDGED if not p.marks] + ["zone", "hi*", "ハイテク*", "京*"])
def test_highlights_are_ordered_disjoint_and_whole_characters(ix: ChronicleIndex, query: str) -> None:
    for hit in everything(ix, query).hits:
        flat = hit.snippet.removeprefix("…").removesuffix("…")
        assert flat in hit.text.replace("\n", " ")
        previous_end = -1
        for start, end in hit.highlights:
            assert previous_end < start < end <= len(hit.snippet)
            previous_end = end
            assert "…" not in hit.snippet[start:end]
            assert not splits_a_character(hit.snippet, start)
            assert not splits_a_character(hit.snippet, end)
            assert hit.snippet[start:end].strip() == hit.snippet[start:end]


# --- properties ------------------------------------------------------------

_CJK_RUN = re.compile(CJK_CHARS + "+")
CJK_RUNS = {
    ref: runs
    for ref, event in BY_REF.items()
    if (runs := [m.group() for m in _CJK_RUN.finditer(normalize(event.text).text)])
}


@settings(max_examples=300, deadline=None)
@given(ref=st.sampled_from(sorted(CJK_RUNS)), data=st.data())
def test_any_cjk_substring_finds_its_event(ix: ChronicleIndex, ref: str, data: st.DataObject) -> None:
    run = data.draw(st.sampled_from(CJK_RUNS[ref]), label="run")
    length = data.draw(st.integers(1, min(8, len(run))), label="length")
    start = data.draw(st.integers(0, len(run) - length), label="start")
    substring = run[start : start + length]
    assert ref in ids(ix.search(substring, limit=200))


SYNTAX = [
    "AND", "OR", "NOT", "(", ")", '"', "*", "?", "~", "^", ":", "[", "]", "{", "}", "TO",
    "year:", "month:", "lang:", "text:", "source:", "id:", "line:", "<", ">=", "-", "+",
    "2014", "2017", "5", "ja", "en", "zone", "High-tech", "IBM", "ＩＢＭ", "the",
    "京都", "設立する", "ハイテク産業区", "の", "ー", "㎡", " ", "\u3000", "\n",
]  # fmt: skip
QUERIES = st.one_of(
    st.text(),
    st.lists(st.sampled_from(SYNTAX) | st.text(max_size=3), max_size=10).map("".join),
    st.lists(st.sampled_from(SYNTAX) | st.text(max_size=3), max_size=10).map(" ".join),
)

MATCHES = st.sampled_from(["all", "any"])
SORTS = st.sampled_from(["relevance", "chronological"])


def search_or_syntax_error(ix: ChronicleIndex, query: str, match: str, sort: str) -> None:
    try:
        results = ix.search(query, limit=5, match=match, sort=sort)
    except QuerySyntaxError:
        return
    assert 0 <= len(results.hits) <= min(5, results.total) <= 92
    assert sum(results.facets["year"].values()) == results.total


# A quoted phrase of single CJK characters once reached Whoosh as a phrase over a
# field without positions, and Whoosh raised its own QueryError while searching.
QUOTED_SINGLE_CHARACTERS = '"京 都"'


@settings(max_examples=300, deadline=None)
@example(query=QUOTED_SINGLE_CHARACTERS, match="all", sort="relevance")
@given(query=QUERIES, match=MATCHES, sort=SORTS)
def test_random_queries_raise_only_query_syntax_error(
    ix: ChronicleIndex, query: str, match: str, sort: str
) -> None:
    search_or_syntax_error(ix, query, match, sort)


@pytest.mark.parametrize("query", [QUOTED_SINGLE_CHARACTERS, '"大 連"', '"の の"', '"㏠㏠"'])
def test_quoted_single_cjk_characters(ix: ChronicleIndex, query: str) -> None:
    search_or_syntax_error(ix, query, "all", "relevance")


def _event_text(start: str) -> str:
    return next(e.text for e in EVENTS if e.text.startswith(start))


def _script(ch: str) -> str | None:
    for name, pattern in (("hiragana", "[\u3041-\u309f]"), ("katakana", "[\u30a1-\u30fa\u30fc-\u30ff]"), ("kanji", "[\u3400-\u9fff々]")):
        if re.match(pattern, ch):
            return name
    return None


@settings(max_examples=300, deadline=None)
@example(  # the snippet's text occurs twice; the first occurrence is cut inside a word
    parts=[_event_text("2014 “Chinese Overseas")] * 2 + [_event_text("東北アジア太平洋データセンターの")],
    width=11,
    at=0.8125,
)
@given(
    parts=st.lists(st.sampled_from([e.text for e in EVENTS]), min_size=1, max_size=3),
    width=st.integers(10, 120),
    at=st.floats(0, 1),
)
def test_snippets_never_cut_inside_a_word(parts: list[str], width: int, at: float) -> None:
    """A snippet cut inside a sentence falls between words: never inside a Latin word or a
    combined character, nor inside a run of one Japanese script that starts close by."""
    text = " ".join(parts)
    words = [m.span() for m in re.finditer(r"[A-Za-z]+|[\u3400-\u9fff]+|[\u30a1-\u30ff]+", text)]
    spans = [words[int(at * (len(words) - 1))]] if words else []
    snippet, shown = make_snippet(text, spans, width=width)
    core = snippet.removeprefix("…").removesuffix("…")
    lead = len(snippet) - len(snippet.removeprefix("…"))

    def highlights_if_from(i: int) -> tuple:
        return tuple((max(b, i) - i + lead, min(e, i + len(core)) - i + lead) for b, e in spans if b < i + len(core) and e > i)

    # The core may occur more than once ("…データセンター、…データ研究院"): the
    # snippet is the occurrence whose highlights are the ones shown.
    occurrences = [i for i in range(lead, len(text)) if text.startswith(core, i)]
    start = next(i for i in occurrences if highlights_if_from(i) == shown)
    for cut in (start, start + len(core)):
        if cut in (0, len(text)):
            continue
        before, after = text[cut - 1], text[cut]
        if after == " " or before == " ":
            continue
        assert not (before.isascii() and before.isalnum() and after.isascii() and after.isalnum()), (snippet, cut)
        assert not unicodedata.combining(after)
        if _script(before) and _script(before) == _script(after):
            # Only a long run (a compound) is cut inside, or one that holds the match.
            run_start, run_end = cut, cut
            while run_start > 0 and _script(text[run_start - 1]) == _script(before):
                run_start -= 1
            while run_end < len(text) and _script(text[run_end]) == _script(before):
                run_end += 1
            highlight_near = any(b <= cut <= e + 8 for b, e in spans)
            assert run_end - run_start > 8 or highlight_near, (snippet, text[run_start:run_end])
    if spans and spans[0][1] - spans[0][0] <= width:
        assert shown, "the match is in view"


# Text where normalization moves offsets (half-width kana, ㎡, ＡＢ), runs of CJK
# split by Latin and punctuation, and repeats that make overlapping matches.
_NGRAM_TEXT = st.text(alphabet="高新区区産業ﾊｲﾃｸｶﾞ㎡ＡＢa 。・(", max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    text=_NGRAM_TEXT,
    query=st.text(alphabet="高新区産業ﾊｲﾃｸｶﾞ㎡", min_size=1, max_size=4),
    field=st.sampled_from(["bigram", "unigram"]),
)
@example(text="区区区 ﾊｲﾃｸ区", query="区区", field="bigram")
@example(text="ﾊｲﾃｸ・ｶﾞ", query="ﾃｸ", field="bigram")
def test_ngram_highlights_found_by_string_are_those_of_the_tokens(text: str, query: str, field: str) -> None:
    """Highlighting an n-gram phrase looks for its string; that must find exactly
    where the field's tokens hold the phrase at adjacent positions."""
    analyzer = make_schema()[field].analyzer
    grams = tuple(t.text for t in analyzer(query, mode="index"))
    string = analyzer.joined(grams)
    if string is None:
        return
    found = list(snippets._string_spans(text, string))
    assert found == sorted(snippets._token_spans(text, [grams], analyzer))


@pytest.mark.parametrize("query", ["zone OR 大連 OR investigated OR 設立", "the OR of OR high", "ハイテク OR 中国 OR 2017"])
@pytest.mark.parametrize("kwargs", [{}, {"year": 2017}, {"lang": "en"}, {"match": "any"}])
def test_the_total_does_not_depend_on_the_page_size(ix: ChronicleIndex, query: str, kwargs: dict) -> None:
    # The page and the total come from one pass that must not skip weak matches.
    whole = everything(ix, query, glossary=False, **kwargs)
    assert whole.total == len(whole.hits)
    for limit in (1, 3):
        page = ix.search(query, limit=limit, glossary=False, **kwargs)
        assert page.total == whole.total
        assert [hit.id for hit in page.hits] == [hit.id for hit in whole.hits[:limit]]


@pytest.mark.parametrize("query", ["zone", "ハイテク産業区 OR 大連", '"high-tech zone" OR investigated', "設立 AND 大連"])
def test_bulk_field_lengths_give_the_same_scores(ix: ChronicleIndex, query: str) -> None:
    # Field lengths are read in bulk for speed; the scores must be those of
    # reading each document's length as Whoosh does.
    from whoosh.scoring import BM25FScorer

    from chronsearch.searching import FIELD_K1, RankingBM25, parse_query

    class OneAtATime(RankingBM25):
        def scorer(self, searcher, fieldname, text, qf=1):
            k1 = self.field_K1.get(fieldname, self.K1)
            return BM25FScorer(searcher, fieldname, text, self.B, k1, qf=qf)

    ours = ix.search(query, limit=100, glossary=False)
    with ix._ix.searcher(weighting=OneAtATime(field_K1=FIELD_K1)) as plain:
        theirs = plain.search(parse_query(query, plain.schema), limit=100)
        expected = [(plain.stored_fields(hit.docnum)["id"], round(hit.score, 4)) for hit in theirs]
    assert [(hit.id, hit.score) for hit in ours.hits] == expected


def test_every_month_filter_counts_what_stats_count(ix: ChronicleIndex):
    # More months than a reader keeps filters for: older ones are made again.
    stats = ix.stats()
    assert len(stats.month) > 8
    for _ in range(2):
        for key, count in stats.month.items():
            year, month = map(int, key.split("-"))
            assert ix.search("", year=year, month=month, limit=0).total == count
            assert ix.search("", year=year, month=month, lang="ja", limit=0).total <= count


# --- the parser's shortcut for plain words ----------------------------------------

_GLOSSARY = Glossary(parse_glossary((SEEDS / GLOSSARY_FILE).read_bytes(), source=GLOSSARY_FILE))
_SCHEMA = make_schema()
_plain_pieces = st.sampled_from(
    ["zone", "Zone's", "'s", "the", "what", "e-commerce", "U.S.", "3.6", "1,000", "IBM社", "ＩＢＭ", "㎡", "-", "…", "&",
     "遼寧省", "ハイテク産業区", "設立した", "の", "何", "Kyoto", "High-tech", "京都", "高新区", "ｶﾞｲﾄﾞ", "café"]
)
_syntax_pieces = st.sampled_from(['"', "'", "(", ")", "*", "?", ":", "^2", "~", "<", ">=", "[", "]", "{", "}", "AND", "OR", "NOT"])
_spaces = st.sampled_from([" ", "  ", "\u3000", "\t"])


@st.composite
def _queries(draw, pieces):
    words = draw(st.lists(st.lists(pieces, min_size=1, max_size=3).map("".join), min_size=1, max_size=5))
    return "".join(word + draw(_spaces) for word in words).strip()


@settings(max_examples=400, deadline=None)
@given(text=_queries(_plain_pieces | _syntax_pieces), glossary=st.sampled_from([None, _GLOSSARY]))
@example(text="the Kyoto zone", glossary=_GLOSSARY)  # a name: the glossary adds 京都
@example(text="ｶﾞｲﾄﾞ遼寧省", glossary=None)  # half-width kana are CJK only once normalized
@example(text="zone's zone~", glossary=None)
def test_plain_words_parse_as_whoosh_parses_them(text, glossary):
    """The shortcut gives Whoosh's query exactly, or declines and leaves it to Whoosh."""
    shortcut = searching._plain_words(text, _SCHEMA, glossary)
    try:
        whoosh, names = searching._run_parser(text, _SCHEMA, "all", glossary, drop_question_words=True)
    except QuerySyntaxError:
        assert shortcut is None
        return
    if shortcut is not None:
        assert shortcut == whoosh
        assert not (names and names.applied)


@settings(max_examples=100, deadline=None)
@given(text=_queries(_plain_pieces.filter(lambda word: word != "'s")))
def test_plain_words_take_the_shortcut(text):
    assert searching._plain_words(text, _SCHEMA, None) is not None
