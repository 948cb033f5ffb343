"""Reading chronicle files into events.

A chronicle is a plain-text file: a title block naming the year, then one
paragraph per event, with optional month headings (``3月``, ``2017年3月``,
``March``, ``Sept. 2017``) between them. Blank lines separate paragraphs::

    >>> text = "2020 Events\\n\\nMarch\\n\\nA plant opened.\\n\\n4月\\n工場が開業した。"
    >>> for event in parse_chronicle(text, source="2020.txt"):
    ...     print(event.id, event.year, event.month, event.lang, event.line, event.text)
    2020.txt#1 2020 3 en 5 A plant opened.
    2020.txt#2 2020 4 ja 8 工場が開業した。

:func:`read_chronicle` does the same for a file, decoding its bytes first with
:func:`decode_chronicle`; :func:`find_chronicles` lists the files of a folder.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chronsearch.errors import ChronicleFormatError

__all__ = [
    "CJK_CHARS",
    "Event",
    "decode_chronicle",
    "detect_lang",
    "chronicle_sources",
    "find_chronicles",
    "parse_chronicle",
    "read_chronicle",
]

_KANA = r"\u3041-\u3096\u309D-\u309F\u30A1-\u30FA\u30FC-\u30FF\u31F0-\u31FF"
# The middle dot U+30FB is left out: it separates words, so it must not glue
# the katakana on both sides into one run of n-grams.
CJK_CHARS = (
    rf"[{_KANA}\u3005-\u3007\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"
    r"\U00020000-\U0002FFFF]"
)
_KANA_RE = re.compile(f"[{_KANA}]")
_CJK_RE = re.compile(CJK_CHARS)
_LATIN_RE = re.compile(r"[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u1E00-\u1EFF]")

# Only these three: str.splitlines() also splits on \x0c, \x1c, \u2028 and
# others, which editors do not show as line ends, so line numbers would drift.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")

_YEAR = r"(?<!\d)(1[89]\d\d|2[01]\d\d)(?!\d)"
_YEAR_RE = re.compile(_YEAR)
_MONTH_NAMES = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3,
    "apr": 4, "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7,
    "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_NAME = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
_JA_HEADING = re.compile(rf"(?:{_YEAR}\s*年\s*)?(0?[1-9]|1[0-2])\s*月")
_EN_HEADING = re.compile(
    rf"{_YEAR}\s+(?P<a>{_NAME})\.?|(?P<b>{_NAME})\.?(?:,?\s+{_YEAR})?", re.IGNORECASE
)

_DECODE_ERROR = "cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a chronicle: a paragraph with the year and month it falls in."""

    id: str  # f"{source}#{ordinal}", so identical texts still get distinct ids
    year: int
    month: int | None
    lang: str  # "en", "ja" or "cjk"
    text: str
    source: str
    line: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _line_of(data: bytes, offset: int) -> int:
    # Counting on bytes is safe for UTF-8 and Shift_JIS alike: neither uses
    # the bytes of \r or \n inside a multi-byte character.
    return len(_LINE_BREAK_BYTES.split(data[:offset]))


def decode_chronicle(data: bytes, *, source: str) -> str:
    """Decode a chronicle: UTF-8 (BOM or not), UTF-16 with a BOM, or Shift_JIS."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            prefix = data[: err.start - err.start % 2].decode("utf-16")
            raise ChronicleFormatError(
                source, _DECODE_ERROR, line=len(_LINE_BREAK.split(prefix))
            ) from None
    if b"\x00" in data:
        raise ChronicleFormatError(
            source, "binary file", line=_line_of(data, data.index(b"\x00"))
        )
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = err.start
    try:
        text = body.decode("cp932")
    except UnicodeDecodeError:
        text = ""
    # Most Latin-1 bytes also decode as cp932 kanji or half-width katakana;
    # real Japanese text is never without full-width kana.
    if _KANA_RE.search(text):
        return text
    raise ChronicleFormatError(source, _DECODE_ERROR, line=_line_of(body, bad))


def detect_lang(text: str) -> str | None:
    """The language of a text from its script: "ja", "cjk", "en", or None."""
    # NFKC turns half-width katakana and full-width Latin into their usual forms.
    text = unicodedata.normalize("NFKC", text)
    if _KANA_RE.search(text):
        return "ja"
    latin = len(_LATIN_RE.findall(text))
    if len(_CJK_RE.findall(text)) > latin:
        return "cjk"
    return "en" if latin else None


def _heading(line: str) -> tuple[int, int | None] | None:
    """The (month, year or None) of a month heading, or None if the line is not one."""
    line = unicodedata.normalize("NFKC", line).strip()
    if m := _JA_HEADING.fullmatch(line):
        return int(m[2]), int(m[1]) if m[1] else None
    if m := _EN_HEADING.fullmatch(line):
        year = m[1] or m[4]
        return _MONTH_NAMES[(m["a"] or m["b"]).lower()], int(year) if year else None
    return None


def parse_chronicle(text: str, *, source: str) -> list[Event]:
    """Split a decoded chronicle into events; ``source`` names it in ids and errors."""
    # (first line, text, month, year from a heading or None)
    paragraphs: list[tuple[int, str, int | None, int | None]] = []
    title: str | None = None
    month: int | None = None
    year: int | None = None
    block: list[str] = []
    start = 0
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        stripped = line.strip()
        heading = _heading(stripped) if stripped else None
        if block and (heading or not stripped):
            paragraphs.append((start, "\n".join(block), month, year))
            block = []
        if heading:
            if title is None and not paragraphs:
                title = ""  # a heading first: the file has no title block
            month, year = heading[0], heading[1] or year
        elif stripped:
            if not block:
                start = number
            block.append(stripped)
    if block:
        paragraphs.append((start, "\n".join(block), month, year))
    if title is None and paragraphs:
        title = paragraphs.pop(0)[1]

    found = _YEAR_RE.search(unicodedata.normalize("NFKC", title or ""))
    found = found or _YEAR_RE.search(Path(source).name)
    if not found:
        raise ChronicleFormatError(
            source, "no year in the title or the file name", line=1
        )
    file_year = int(found[1])

    langs = [detect_lang(body) for _, body, _, _ in paragraphs]
    common = Counter(lang for lang in langs if lang).most_common(1)
    fallback = common[0][0] if common else "en"
    return [
        Event(
            id=f"{source}#{ordinal}",
            year=heading_year or file_year,
            month=event_month,
            lang=lang or fallback,
            text=body,
            source=source,
            line=first,
        )
        for ordinal, ((first, body, event_month, heading_year), lang) in enumerate(
            zip(paragraphs, langs, strict=True), start=1
        )
    ]


def read_chronicle(path: Path, *, root: Path, data: bytes | None = None) -> list[Event]:
    """Read, decode and parse one file; its source is its path relative to ``root``.

    ``data`` is the file's content when the caller has already read it.
    """
    source = path.relative_to(root).as_posix()
    if data is None:
        data = path.read_bytes()
    return parse_chronicle(decode_chronicle(data, source=source), source=source)


def chronicle_sources(root: str | os.PathLike[str]) -> list[str]:
    """The ``*.txt`` files under ``root`` as sorted paths relative to it, with ``/``.

    Hidden files and folders are skipped. Plain strings, not ``Path`` objects:
    checking a thousand files for changes must take milliseconds.
    """
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [prefix + f for f in files if f.endswith(".txt") and not f.startswith(".")]
    return sorted(found)


def find_chronicles(root: Path) -> list[Path]:
    """Every ``*.txt`` file under ``root``, sorted, but for hidden files and folders."""
    return [root / source for source in chronicle_sources(root)]
