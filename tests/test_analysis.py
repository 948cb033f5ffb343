"""The analyzers: normalization, offsets into the original text, base forms, laziness."""

from __future__ import annotations

import pickle
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.formats import Positions

from chronsearch.analysis import (
    CJK_BIGRAMS,
    CJK_UNIGRAMS,
    ENGLISH,
    ENGLISH_STEMS,
    JAPANESE,
    indexed_spans,
    indexed_terms,
    normalize,
)
from chronsearch.schema import make_schema


def tokens(analyzer, text, **kwargs):
    return [(t.text, t.startchar, t.endchar) for t in analyzer(text, chars=True, positions=True, **kwargs)]


def texts(analyzer, text, **kwargs):
    return [t.text for t in analyzer(text, **kwargs)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＩＢＭ", "ibm"),
        ("ｶﾞｲﾄﾞ", "ガイド"),  # half-width katakana with voiced marks compose
        ("５万㎡", "5万m2"),
        ("Ｄａｌｉａｎ\u3000高新区", "dalian 高新区"),
        ("か\u3099", "が"),  # a combining mark composes with its base
    ],
)
def test_normalize_is_nfkc_lowercase(text, expected):
    assert normalize(text).text == expected == unicodedata.normalize("NFKC", text).lower()


def test_normalize_maps_every_character_back_to_its_origin():
    norm = normalize("5万㎡")
    assert norm.text == "5万m2"
    # Both characters of "m2" come from the one character "㎡".
    assert [norm.span(i, i + 1) for i in range(len(norm.text))] == [(0, 1), (1, 2), (2, 3), (2, 3)]


def _normalized_one_by_one(text: str) -> tuple[str, list[int], list[int]]:
    """Each character with the combining marks after it normalized on its own."""
    out, starts, ends, i = "", [], [], 0
    while i < len(text):
        j = i + 1
        while j < len(text) and (unicodedata.combining(text[j]) or text[j] in "\uff9e\uff9f"):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j]).lower()
        out, starts, ends, i = out + piece, starts + [i] * len(piece), ends + [j] * len(piece), j
    return out, starts, ends


# Mostly text that needs only lowercasing (some of it with a combining mark
# that composes with nothing, or a Σ), and now and then a character that changes.
_MOSTLY_NORMAL = st.lists(
    st.sampled_from(["abc ", "漢字カタ", "Σ", "ΟΣ ", "Ο\u3099", "\u1100", "\u1161"] * 4 + ["㎡", "ｶﾞ", "Ａ", "（", "İ", "e\u0301"]),
    max_size=40,
).map("".join)


@settings(max_examples=500)
@given(_MOSTLY_NORMAL)
def test_normalize_maps_as_character_by_character(text):
    """Long texts are normalized a half at a time where that changes nothing; the map
    back to the original must be the one of normalizing each character by itself."""
    norm = normalize(text)
    if unicodedata.is_normalized("NFKC", text) and len(text.lower()) == len(text):
        return  # the whole text maps to itself
    assert (norm.text, list(norm.starts), list(norm.ends)) == _normalized_one_by_one(text)


def test_english_offsets_point_into_the_original_text():
    text = "ＩＢＭ and U.S. Concentrix investigated the zone’s Dalian's firms"
    found = tokens(ENGLISH, text)
    assert [t for t, _, _ in found] == ["ibm", "u.s", "concentrix", "investigated", "zone", "dalian", "firms"]
    assert [text[s:e] for _, s, e in found] == [
        "ＩＢＭ", "U.S", "Concentrix", "investigated", "zone’s", "Dalian's", "firms"
    ]


def test_english_keeps_words_that_other_stop_lists_drop():
    assert texts(ENGLISH, "The May meeting of the US office") == ["may", "meeting", "us", "office"]


def test_english_takes_latin_words_out_of_japanese_text():
    text = "IBM中国エリアにSDN拠点、2017年"
    assert [(t, text[s:e]) for t, s, e in tokens(ENGLISH, text)] == [
        ("ibm", "IBM"),
        ("sdn", "SDN"),
        ("2017", "2017"),
    ]


@pytest.mark.parametrize("word", ["investigate", "investigated", "investigates", "investigating"])
def test_stems_of_one_word_agree(word):
    assert texts(ENGLISH_STEMS, word) == texts(ENGLISH_STEMS, "investigation")


def test_japanese_base_forms_and_dropped_particles():
    text = "京都を訪問し、拠点が設立された。"
    found = tokens(JAPANESE, text)
    assert [t for t, _, _ in found] == ["京都", "訪問", "拠点", "設立"]
    assert [text[s:e] for _, s, e in found] == ["京都", "訪問", "拠点", "設立"]


def test_japanese_verbs_are_indexed_by_dictionary_form():
    assert texts(JAPANESE, "扉を開いた") == ["扉", "開く"]
    assert texts(JAPANESE, "扉を開く") == ["扉", "開く"]


def test_japanese_offsets_survive_normalization():
    text = "ＩＢＭ中国ｴﾘｱ最大の拠点"
    found = tokens(JAPANESE, text)
    assert [(t, text[s:e]) for t, s, e in found] == [
        ("中国", "中国"),
        ("エリア", "ｴﾘｱ"),
        ("最大", "最大"),
        ("拠点", "拠点"),
    ]


def test_japanese_leaves_latin_words_to_the_english_fields():
    assert texts(JAPANESE, "IBM社のSDN事業") == ["社", "事業"]
    assert texts(JAPANESE, "only English here") == []


def test_bigrams_and_unigrams_of_cjk_runs():
    text = "高新区のIBM・ハイテク"
    assert [(t, text[s:e]) for t, s, e in tokens(CJK_BIGRAMS, text)] == [
        (bg, bg) for bg in ["高新", "新区", "区の", "ハイ", "イテ", "テク"]
    ]
    assert texts(CJK_UNIGRAMS, "高新区") == ["高", "新", "区"]


def test_query_mode_gives_unigrams_only_for_single_characters():
    # A one-character query has no bigram, so the unigram field answers it;
    # longer strings are matched as phrases of bigrams.
    assert texts(CJK_UNIGRAMS, "区 高新区", mode="query") == ["区"]
    assert texts(CJK_BIGRAMS, "区 高新区", mode="query") == ["高新", "新区"]


def test_analyzers_pickle_without_janome_state():
    texts(JAPANESE, "大連")  # make sure Janome is loaded in this process
    data = pickle.dumps(make_schema())
    assert b"janome" not in data
    schema = pickle.loads(data)
    assert texts(schema["morph"].analyzer, "大連に設立") == ["大連", "設立"]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_importing_chronsearch_does_not_import_janome():
    # Only its version module, which names the index; not the tokenizer and its dictionary.
    assert "janome.tokenizer" not in _modules_after("import chronsearch")


def test_english_queries_never_load_janome():
    code = (
        "import chronsearch\n"
        "from chronsearch.schema import make_schema\n"
        "from chronsearch.searching import parse_query\n"
        "parse_query('IBM AND \"high-tech zone\" OR investigate', make_schema())"
    )
    assert "janome.tokenizer" not in _modules_after(code)


analyzers = st.sampled_from([ENGLISH, ENGLISH_STEMS, JAPANESE, CJK_BIGRAMS, CJK_UNIGRAMS])
mixed_text = st.text(
    alphabet=st.sampled_from(
        list("abcXYZ019 .'’-、。・ー々") + list("ＩＢＭ１２ｶﾞﾟｱ㎡㍻") + list("高新区大連京都ハイテクのがはを設立した") + ["\u3099", "\u3000"]
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(analyzer=analyzers, text=mixed_text)
def test_every_token_spans_the_original_text_it_came_from(analyzer, text):
    for term, start, end in tokens(analyzer, text):
        assert 0 <= start < end <= len(text)
        if analyzer in (ENGLISH, CJK_BIGRAMS, CJK_UNIGRAMS):
            # Words and n-grams are substrings of their normalized span; not
            # always all of it: "㎡" normalizes to "m2", which is two words.
            assert term in normalize(text[start:end]).text


def test_english_phrases_do_not_match_across_stop_words(tmp_path):
    from chronsearch import ChronicleIndex, build

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "2020.txt").write_text("2020 Events\n\nPolice to probe the fire.\n\nPolice probe the fire.\n")
    build(seeds, tmp_path / "index")
    with ChronicleIndex.open(tmp_path / "index") as ix:
        assert [hit.line for hit in ix.search('"police probe"').hits] == [5]


_schema_as_indexed = pickle.loads(pickle.dumps(make_schema()))  # as a writer reads it from the index


_english_words = st.lists(
    st.sampled_from(["The", "police", "investigated", "zone's", "U.S.", "probes", "3.6", "running", "to", "a", "ＩＢＭ"]),
    max_size=12,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["word", "stem", "morph", "bigram", "unigram"]), text=mixed_text | _english_words)
def test_indexing_shortcut_gives_what_the_analyzer_chain_gives(field, text):
    fieldobj = _schema_as_indexed[field]
    assert indexed_terms(fieldobj.analyzer, text) is not None  # the shortcut is taken
    shortcut = list(fieldobj.format.word_values(text, fieldobj.analyzer, mode="index"))
    chain = list(Positions.word_values(fieldobj.format, text, fieldobj.analyzer, mode="index"))
    assert sorted(shortcut) == sorted(chain)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["word", "stem", "morph", "bigram", "unigram"]), text=mixed_text | _english_words)
def test_spans_of_the_shortcut_are_the_analyzer_chains(field, text):
    """Highlighting finds terms by the shortcut: each at the chain's position and characters."""
    analyzer = _schema_as_indexed[field].analyzer
    norm = normalize(text)
    shortcut = [(pos, term, *norm.span(start, end)) for pos, term, start, end in indexed_spans(analyzer, text)]
    chain = [(t.pos, t.text, t.startchar, t.endchar) for t in analyzer(text, positions=True, chars=True, mode="index")]
    assert shortcut == chain


def test_indexing_shortcut_declines_analyzers_it_does_not_know():
    from whoosh.analysis import LowercaseFilter, StemFilter

    assert indexed_terms(ENGLISH | LowercaseFilter(), "Police") is None
    assert indexed_terms(ENGLISH | StemFilter(ignore=["police"]), "Police") is None
