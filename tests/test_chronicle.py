"""Tests of reading chronicle files into events."""

from __future__ import annotations

import doctest
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronsearch import chronicle
from chronsearch.chronicle import (
    CJK_CHARS,
    Event,
    decode_chronicle,
    detect_lang,
    find_chronicles,
    parse_chronicle,
    read_chronicle,
)
from chronsearch.errors import ChronicleFormatError

SEEDS = Path(__file__).parent.parent / "seeds"
DATA = Path(__file__).parent / "data" / "chronicles"
EN_SEED = "2014-industrial-development-events.en.txt"
JA_SEED = "2017-park-chronicle.ja.txt"
DECODE_ERROR = "cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS"

SAMPLE = (
    "2017 園区年表\n\n1月\n\n工場が開業した。\n\n"
    "March\n\nA plant opened\nin the zone.\n\n新工場竣工\n"
)


def seed_events(name: str) -> list[Event]:
    return read_chronicle(SEEDS / name, root=SEEDS)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_module_docstring_example_is_real() -> None:
    assert doctest.testmod(chronicle).failed == 0


# --- the seeds ------------------------------------------------------------


def test_english_seed() -> None:
    events = seed_events(EN_SEED)
    assert len(events) == 35
    assert Counter(e.year for e in events) == {2014: 35}
    assert Counter(e.month for e in events) == {None: 35}
    assert Counter(e.lang for e in events) == {"en": 35}
    assert events[0].text.startswith("10 organizations of High-tech Zone")
    assert (events[0].line, events[-1].line) == (3, 71)


def test_japanese_seed() -> None:
    events = seed_events(JA_SEED)
    assert len(events) == 57
    assert Counter(e.year for e in events) == {2017: 57}
    assert Counter(e.lang for e in events) == {"ja": 57}
    per_month = {
        1: 3,
        2: 3,
        3: 4,
        4: 4,
        5: 6,
        6: 5,
        7: 6,
        8: 4,
        9: 4,
        10: 3,
        11: 6,
        12: 9,
    }
    assert Counter(e.month for e in events) == per_month
    # The title block is two lines; the event under "1月" starts on line 6.
    assert events[0].line == 6 and events[0].text.startswith("高新区管理委員会")


def test_japanese_seed_months_match_its_headings() -> None:
    lines = (SEEDS / JA_SEED).read_text(encoding="utf-8").split("\n")
    for event in seed_events(JA_SEED):
        heading = next(
            line
            for line in reversed(lines[: event.line - 1])
            if re.fullmatch(r"\d+月", line)
        )
        assert heading == f"{event.month}月"


def test_seeds_together() -> None:
    events = [
        e for path in find_chronicles(SEEDS) for e in read_chronicle(path, root=SEEDS)
    ]
    assert len(events) == 92
    assert Counter(e.year for e in events) == {2014: 35, 2017: 57}
    assert Counter(e.lang for e in events) == {"en": 35, "ja": 57}
    assert Counter(e.source for e in events) == {EN_SEED: 35, JA_SEED: 57}
    assert len({e.id for e in events}) == 92
    assert all(
        e.id == f"{e.source}#{n}" for n, e in enumerate(seed_events(JA_SEED), start=1)
    )


def test_identical_texts_in_the_english_seed_stay_two_events() -> None:
    twins = [e for e in seed_events(EN_SEED) if e.text.startswith("Tang Jun, member")]
    assert [(e.id, e.line) for e in twins] == [
        (f"{EN_SEED}#13", 27),
        (f"{EN_SEED}#31", 63),
    ]
    assert twins[0].text == twins[1].text
    assert twins[0] != twins[1]


def test_to_dict_is_plain_json() -> None:
    event = seed_events(JA_SEED)[0]
    data = event.to_dict()
    assert set(data) == {"id", "year", "month", "lang", "text", "source", "line"}
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert Event(**data) == event


# --- structure ------------------------------------------------------------


def test_month_headings_of_every_kind() -> None:
    events = read_chronicle(DATA / "headings.txt", root=DATA)
    assert [(e.month, e.year) for e in events] == [
        (None, 2016),  # before any heading: the title's year
        (1, 2016),  # 1月
        (1, 2016),  # １月
        (3, 2017),  # 2017年3月
        (4, 2018),  # 2018年 4月
        (5, 2018),  # 5月 keeps the last heading's year
        (1, 2018),  # January
        (1, 2018),  # jan
        (1, 2018),  # Jan.
        (9, 2018),  # SEPT
        (9, 2018),  # sep
        (3, 2017),  # March 2017
        (3, 2019),  # 2019 March
    ]
    # A heading ends the paragraph before it and is never part of an event.
    assert (events[1].line, events[1].text) == (
        7,
        "Right under its heading, with no blank line.",
    )
    assert all("\n" not in e.text and e.text.endswith(".") for e in events)


@pytest.mark.parametrize(
    ("heading", "month", "year"),
    [
        ("1月", 1, 2020),
        ("12月", 12, 2020),
        ("１２月", 12, 2020),
        ("　３月　", 3, 2020),
        ("03月", 3, 2020),
        ("2017年3月", 3, 2017),
        ("2017年 3月", 3, 2017),
        ("２０１７年３月", 3, 2017),
        ("January", 1, 2020),
        ("jan", 1, 2020),
        ("Jan.", 1, 2020),
        ("SEPT", 9, 2020),
        ("Sept.", 9, 2020),
        ("sep", 9, 2020),
        ("may", 5, 2020),
        ("March 2017", 3, 2017),
        ("March, 2017", 3, 2017),
        ("2017 March", 3, 2017),
        ("  December  ", 12, 2020),
    ],
)
def test_heading(heading: str, month: int, year: int) -> None:
    (event,) = parse_chronicle(
        f"2020 Events\n\n{heading}\n\nSomething happened.\n", source="x.txt"
    )
    assert (event.month, event.year, event.text, event.line) == (
        month,
        year,
        "Something happened.",
        5,
    )


@pytest.mark.parametrize(
    "line",
    [
        "13月",
        "0月",
        "月",
        "3月1日",
        "Marching",
        "May the zone grow",
        "2017",
        "March 1700",
    ],
)
def test_heading_look_alikes_are_events(line: str) -> None:
    (event,) = parse_chronicle(f"2020 Events\n\n{line}\n", source="x.txt")
    assert (event.text, event.month) == (line, None)


def test_file_without_headings_has_no_months() -> None:
    events = parse_chronicle("2020 Events\n\nOne.\n\nTwo.\n", source="x.txt")
    assert [(e.text, e.month, e.year) for e in events] == [
        ("One.", None, 2020),
        ("Two.", None, 2020),
    ]


def test_heading_first_means_no_title(tmp_path: Path) -> None:
    events = read_chronicle(DATA / "2013-no-title.txt", root=DATA)
    assert [(e.text, e.month, e.year, e.line) for e in events] == [
        ("An event in March of the year in the file name.", 3, 2013, 3),
        ("An event in April 2014.", 4, 2014, 7),
    ]


def test_paragraphs_file() -> None:
    events = read_chronicle(DATA / "paragraphs.txt", root=DATA)
    assert [(e.line, e.text) for e in events] == [
        (3, "First event, line one,\ncontinued on line two."),
        (6, "After a line holding only a no-break space."),
        (8, "全角スペースだけの行の後。"),
        (10, "An event\nover three\nlines."),
    ]
    assert [e.lang for e in events] == ["en", "en", "ja", "en"]


@pytest.mark.parametrize("blank", ["\xa0", "\u3000", " \t", "\xa0\u3000 ", ""])
def test_whitespace_only_lines_separate_paragraphs(blank: str) -> None:
    events = parse_chronicle(
        f"2020 Events\n{blank}\nOne\n{blank}\nTwo\n", source="x.txt"
    )
    assert [(e.text, e.line) for e in events] == [("One", 3), ("Two", 5)]


def test_title_is_not_an_event() -> None:
    assert parse_chronicle("2020 Events\nsecond title line\n", source="x.txt") == []
    assert parse_chronicle("", source="2020.txt") == []


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_numbers_with_any_line_end(newline: str) -> None:
    text = newline.join(
        ["2020 Events", "", "One", "", "", "Two", "two b", "", "Three", ""]
    )
    events = parse_chronicle(text, source="x.txt")
    assert [(e.line, e.text) for e in events] == [
        (3, "One"),
        (6, "Two\ntwo b"),
        (9, "Three"),
    ]


@pytest.mark.parametrize("char", ["\x0c", "\u2028", "\u2029", "\x85", "\x1c", "\v"])
def test_only_cr_and_lf_end_lines(char: str) -> None:
    text = f"2020 Events\r\n\r\nBefore{char}after\r\n\r\nNext\r\n"
    events = parse_chronicle(text, source="x.txt")
    assert [(e.line, e.text) for e in events] == [
        (3, f"Before{char}after"),
        (5, "Next"),
    ]


# --- year -----------------------------------------------------------------


def test_year_from_the_file_name() -> None:
    events = parse_chronicle("Park events\n\nOne.\n", source="sub/park-2019.txt")
    assert [e.year for e in events] == [2019]


def test_title_year_wins_over_file_name() -> None:
    events = parse_chronicle("２０１５年 園区年表\n\n開業した。\n", source="2019.txt")
    assert [e.year for e in events] == [2015]


def test_year_must_stand_alone() -> None:
    events = parse_chronicle(
        "Report 12019 and 1799, then 2100\n\nOne.\n", source="x.txt"
    )
    assert [e.year for e in events] == [2100]


def test_no_year_anywhere(tmp_path: Path) -> None:
    path = write(tmp_path / "notes" / "park.txt", b"Park events\n\nOne.\n")
    with pytest.raises(ChronicleFormatError) as caught:
        read_chronicle(path, root=tmp_path)
    assert (
        str(caught.value) == "notes/park.txt:1: no year in the title or the file name"
    )
    assert (caught.value.path, caught.value.line) == ("notes/park.txt", 1)


# --- language -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("ひらがな", "ja"),
        ("カタカナ", "ja"),
        ("ｶﾀｶﾅ", "ja"),
        ("IBM中国エリア", "ja"),
        ("ー", "ja"),
        ("新工場竣工", "cjk"),
        ("大連 ABC", "en"),
        ("大連市 AB", "cjk"),
        ("A plant opened.", "en"),
        ("ＡＢＣ", "en"),
        ("Café", "en"),
        ("2017", None),
        ("3.6 — 100%", None),
        ("3.6㎢", "en"),  # NFKC spells ㎢ "km2"
        ("", None),
    ],
)
def test_detect_lang(text: str, lang: str | None) -> None:
    assert detect_lang(text) == lang


def test_event_without_letters_takes_the_files_common_language() -> None:
    ja = parse_chronicle("2017年\n\n開業した。\n\n2017\n\n竣工した。\n", source="x.txt")
    assert [e.lang for e in ja] == ["ja", "ja", "ja"]
    alone = parse_chronicle("2017\n\n100%\n", source="x.txt")
    assert [e.lang for e in alone] == ["en"]


def test_cjk_chars() -> None:
    cjk = re.compile(CJK_CHARS)
    for char in "あゝゞゟアヺーヽヾヿㇰ々〆〇㐀一鿿豈𠀋𪚲":
        assert cjk.fullmatch(char), f"U+{ord(char):04X}"
    for char in "・゠Aａ1、。「ｱ가":
        assert not cjk.fullmatch(char), f"U+{ord(char):04X}"
    assert cjk.findall(unicodedata.normalize("NFKC", "ｶﾀｶﾅ")) == list("カタカナ")


# --- decoding -------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: t.encode("utf-8-sig"),
        lambda t: t.encode("utf-16"),
        lambda t: b"\xff\xfe" + t.encode("utf-16-le"),
        lambda t: b"\xfe\xff" + t.encode("utf-16-be"),
        lambda t: t.encode("cp932"),
        lambda t: t.replace("\n", "\r\n").encode("cp932"),
        lambda t: t.replace("\n", "\r\n").encode("utf-16"),
        lambda t: t.replace("\n", "\r").encode("utf-8-sig"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "utf-16-le", "utf-16-be", "cp932",
         "cp932-crlf", "utf-16-crlf", "utf-8-bom-cr"],
)  # fmt: skip
def test_encodings_give_identical_events(tmp_path: Path, encode) -> None:
    expected = parse_chronicle(SAMPLE, source="2017.txt")
    path = write(tmp_path / "2017.txt", encode(SAMPLE))
    assert read_chronicle(path, root=tmp_path) == expected
    assert [(e.month, e.lang, e.line) for e in expected] == [
        (1, "ja", 5),
        (3, "en", 9),
        (3, "cjk", 12),
    ]


def test_japanese_seed_in_shift_jis(tmp_path: Path) -> None:
    # The seed is not pure Japanese: 份 and 靳 (and ·, —, the NBSP lines) have
    # no cp932 code, so the copy swaps them for "?" and the NBSPs for spaces.
    text = (SEEDS / JA_SEED).read_text(encoding="utf-8").replace("\xa0", " ")
    path = write(tmp_path / JA_SEED, text.encode("cp932", errors="replace"))
    expected = [(e.id, e.line, e.month, e.lang) for e in seed_events(JA_SEED)]
    events = read_chronicle(path, root=tmp_path)
    assert [(e.id, e.line, e.month, e.lang) for e in events] == expected
    assert "股?有限公司" in events[-3].text


def test_undecodable_file(tmp_path: Path) -> None:
    data = "2020 Events\r\n\r\nA café opened.\r\n".encode("latin-1")
    path = write(tmp_path / "sub" / "cafe.txt", data)
    with pytest.raises(ChronicleFormatError) as caught:
        read_chronicle(path, root=tmp_path)
    assert str(caught.value) == f"sub/cafe.txt:3: {DECODE_ERROR}"
    assert caught.value.line == 3


def test_latin1_that_is_valid_cp932_is_still_rejected() -> None:
    # "Ä" is 0xC4 and "és" 0xE9 0x73: valid cp932 (half-width katakana, a kanji).
    data = "2020\n\nÄrger\n\nOK\n\nCafés opened\n".encode("latin-1")
    assert data.decode("cp932")
    with pytest.raises(ChronicleFormatError) as caught:
        decode_chronicle(data, source="x.txt")
    assert str(caught.value) == f"x.txt:3: {DECODE_ERROR}"


def test_invalid_utf_8_after_a_bom() -> None:
    with pytest.raises(ChronicleFormatError, match=r"^x\.txt:2: cannot decode"):
        decode_chronicle(b"\xef\xbb\xbf2020\n\xff\n", source="x.txt")


def test_broken_utf_16() -> None:
    data = "2020\nok\n".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")
    with pytest.raises(ChronicleFormatError, match=r"^x\.txt:3: cannot decode"):
        decode_chronicle(b"\xff\xfe" + data, source="x.txt")


def test_nul_byte_is_a_binary_file() -> None:
    with pytest.raises(ChronicleFormatError) as caught:
        decode_chronicle(b"2020\r\n\r\nab\x00cd\n", source="x.bin.txt")
    assert str(caught.value) == "x.bin.txt:3: binary file"


def test_utf_16_without_a_bom_is_binary() -> None:
    with pytest.raises(ChronicleFormatError, match="binary file"):
        decode_chronicle("2020 Events\n".encode("utf-16-le"), source="x.txt")


@given(st.text())
def test_utf_8_and_utf_16_decode_back(text: str) -> None:
    text = text.lstrip("\ufeff")
    assert decode_chronicle(text.encode("utf-16"), source="x.txt") == text
    if "\x00" not in text:
        assert decode_chronicle(text.encode("utf-8"), source="x.txt") == text
        assert decode_chronicle(text.encode("utf-8-sig"), source="x.txt") == text


# --- files ----------------------------------------------------------------


def test_find_chronicles(tmp_path: Path) -> None:
    root = tmp_path / ".hidden-parent" / "seeds"  # a hidden root itself is fine
    names = ["b.txt", "a.txt", "sub/deeper/c.txt", "sub/d.txt", "notes.md", "e.txt.bak",
             ".hidden.txt", ".git/f.txt", "sub/.cache/g.txt"]  # fmt: skip
    for name in names:
        write(root / name, b"2020\n")
    (root / "folder.txt").mkdir()
    found = find_chronicles(root)
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a.txt",
        "b.txt",
        "sub/d.txt",
        "sub/deeper/c.txt",
    ]
    assert find_chronicles(tmp_path / "empty") == []


def test_read_chronicle_source_is_relative_posix(tmp_path: Path) -> None:
    # The year comes from the file's own name, never from a folder's.
    path = write(tmp_path / "y" / "2020" / "park-2021.txt", b"Events\n\nOne.\n")
    (event,) = read_chronicle(path, root=tmp_path)
    assert (event.source, event.id, event.year) == (
        "y/2020/park-2021.txt",
        "y/2020/park-2021.txt#1",
        2021,
    )


def test_fixed_data_files_all_parse() -> None:
    found = find_chronicles(DATA)
    assert {p.name for p in found} >= {
        "headings.txt",
        "paragraphs.txt",
        "2013-no-title.txt",
    }
    for path in found:
        assert read_chronicle(path, root=DATA)


# --- property -------------------------------------------------------------

_MONTH_WORDS = re.compile(
    r"[\d\s.,]*(jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august"
    r"|sep|sept|september|oct|october|nov|november|dec|december)[\d\s.,]*",
    re.IGNORECASE,
)


def _looks_like_heading(text: str) -> bool:
    text = unicodedata.normalize("NFKC", text).strip()
    return text.endswith("月") or bool(_MONTH_WORDS.fullmatch(text))


event_texts = st.text(
    alphabet=st.sampled_from(
        "abcxyzJMSADmayjunsepMarchJan. 0123456789,-()!「」、。ー・月年あいアイ漢字中国"
        "ＡＢ１２ｶﾅ\t\xa0\u3000\x0c\u2028\x85"
    ),
    min_size=1,
    max_size=30,
).filter(lambda t: t.strip() and not _looks_like_heading(t))


@given(st.lists(event_texts, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_texts_come_back_in_order(texts: list[str], newline: str) -> None:
    text = newline.join(["2020 Events", ""] + [part for t in texts for part in (t, "")])
    events = parse_chronicle(text, source="p.txt")
    assert [e.text for e in events] == [t.strip() for t in texts]
    assert [e.line for e in events] == [3 + 2 * i for i in range(len(texts))]
    assert [e.id for e in events] == [f"p.txt#{i}" for i in range(1, len(texts) + 1)]
    assert all(e.year == 2020 and e.month is None for e in events)
    assert all(e.lang in {"en", "ja", "cjk"} for e in events)
