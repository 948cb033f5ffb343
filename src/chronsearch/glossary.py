"""The bilingual glossary: rows of names that mean the same thing.

``glossary.tsv`` at the top of the seeds folder holds one row per name, its
equivalents separated by tabs; ``#`` starts a comment::

    High-tech Zone	高新区	ハイテク産業区
    Kyoto	京都

A query word or phrase that is one of the names also searches for the others
(:mod:`chronsearch.searching` does that), so an English query finds Japanese
events and the other way round. Names compare by their words, ignoring case,
width and punctuation: ``high-tech zone``, ``"High-tech Zone"`` and
``ＨＩＧＨ－ＴＥＣＨ　ＺＯＮＥ`` are the same name.

    >>> g = Glossary(parse_glossary("Kyoto\\t京都\\n", source="glossary.tsv"))
    >>> g.equivalents(["kyoto"])
    ('京都',)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from chronsearch.chronicle import decode_chronicle
from chronsearch.errors import ChronicleFormatError

__all__ = ["GLOSSARY_FILE", "Glossary", "name_key", "parse_glossary"]

GLOSSARY_FILE = "glossary.tsv"

_WORD = re.compile(r"[^\W_]+")


def name_key(text: str) -> str:
    """The form names compare in: NFKC, lowercase, words joined by one space."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def parse_glossary(text: str | bytes, *, source: str) -> list[tuple[str, ...]]:
    """The rows of a glossary file; raises :class:`ChronicleFormatError` on a bad row."""
    if isinstance(text, bytes):
        text = decode_chronicle(text, source=source)
    rows: list[tuple[str, ...]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        names = tuple(name.strip() for name in line.split("\t") if name.strip())
        if len(names) < 2:
            raise ChronicleFormatError(source, "a glossary row needs two or more names separated by tabs", line=number)
        if any(not name_key(name) for name in names):
            raise ChronicleFormatError(source, "a glossary name needs a letter or a digit", line=number)
        rows.append(names)
    return rows


class Glossary:
    """Lookup of a name's equivalents; a name in several rows gets all their names."""

    def __init__(self, rows: Iterable[Sequence[str]] = ()) -> None:
        self._equivalents: dict[str, list[str]] = {}
        self._spellings: dict[str, str] = {}
        for row in rows:
            for name in row:
                self._spellings.setdefault(name_key(name), name)
                others = self._equivalents.setdefault(name_key(name), [])
                others += [other for other in row if name_key(other) != name_key(name) and other not in others]
        self.max_words = max((len(key.split()) for key in self._equivalents), default=0)

    def __bool__(self) -> bool:
        return bool(self._equivalents)

    def equivalents(self, words: Sequence[str]) -> tuple[str, ...]:
        """The other names of the name spelled by ``words``, or ``()``."""
        return tuple(self._equivalents.get(name_key(" ".join(words)), ()))

    def names_in(self, text: str) -> list[str]:
        """The glossary names that occur in ``text`` as whole words, longest first."""
        key = f" {name_key(text)} "
        found = [name for name in self._equivalents if f" {name} " in key or _cjk_only(name) and name in key]
        return [self._spellings[name] for name in sorted(found, key=len, reverse=True)]


def _cjk_only(key: str) -> bool:
    """Whether a name key has no Latin letters or digits: CJK words have no spaces around them."""
    return not re.search(r"[0-9a-z]", key)
