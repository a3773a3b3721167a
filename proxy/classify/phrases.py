"""Whole-word phrase matching over normalised text.

Phrases are normalised like the text (textnorm.normalize) and matched on word
boundaries only, so "stop" never matches "non-stop" or "stopped".  "..." inside a phrase
allows up to three words in between ("löschen Sie ... meine Daten" also matches "löschen
Sie bitte sofort meine Daten").  Candidates are looked up by their first word, which
keeps matching linear in the length of the text however many phrases there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.classify.textnorm import normalize

GAP_WORDS = 3
_GAP = re.compile(r"\.\.\.|…")
_TOKEN = re.compile(r"\S+")


def phrase_parts(phrase: str) -> list[str]:
    """The normalised pieces of a phrase between "..." gaps (empty pieces dropped)."""
    return [p for p in (normalize(piece) for piece in _GAP.split(phrase)) if p]


def phrase_regex(phrase: str) -> str:
    gap = rf"(?: \S+){{0,{GAP_WORDS}}} "
    # A hyphen in a phrase also matches a space: "désinscrivez-moi", "désinscrivez moi".
    pieces = (re.escape(p).replace(r"\-", "[- ]") for p in phrase_parts(phrase))
    return gap.join(pieces) + r"(?!\S)"


def _key(word: str) -> str:
    return word.split("-", 1)[0]


@dataclass(frozen=True)
class Hit:
    phrase: str  # as written in the rules file (its first listing)
    languages: tuple[str, ...]  # every language that lists the phrase, in file order
    start: int  # offsets in the normalised text
    end: int
    first_token: int  # token indices, inclusive
    last_token: int


@dataclass(frozen=True)
class Tokens:
    """Normalised text with word positions, built once per message and shared by sets."""

    text: str
    starts: tuple[int, ...]
    words: tuple[str, ...]

    @classmethod
    def of(cls, normalised: str) -> Tokens:
        found = [(m.start(), m.group()) for m in _TOKEN.finditer(normalised)]
        return cls(normalised, tuple(s for s, _ in found), tuple(w for _, w in found))

    def index_at(self, offset: int) -> int:
        """Index of the token starting at or before ``offset``."""
        lo, hi = 0, len(self.starts)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1


class PhraseSet:
    def __init__(self, entries: Iterable[tuple[str, str]]):
        """``entries`` are (phrase, language) pairs; the first language listing a phrase wins."""
        self._by_first: dict[str, list[tuple[re.Pattern[str], str, tuple[str, ...]]]] = {}
        found: dict[str, tuple[str, list[str]]] = {}
        for phrase, language in entries:
            if not phrase_parts(phrase):
                continue
            regex = phrase_regex(phrase)
            langs = found.setdefault(regex, (phrase, []))[1]
            if language not in langs:
                langs.append(language)
        for regex, (phrase, langs) in found.items():
            first = _key(phrase_parts(phrase)[0].split(" ")[0])
            self._by_first.setdefault(first, []).append((re.compile(regex), phrase, tuple(langs)))

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def find(self, tokens: Tokens) -> list[Hit]:
        """Non-overlapping hits, left to right, the longest at each position."""
        hits: list[Hit] = []
        free_from = 0
        for index, (start, word) in enumerate(zip(tokens.starts, tokens.words, strict=True)):
            if start < free_from:
                continue
            candidates = self._by_first.get(_key(word))
            if not candidates:
                continue
            best: tuple[int, str, tuple[str, ...]] | None = None
            for pattern, phrase, languages in candidates:
                m = pattern.match(tokens.text, start)
                if m and (best is None or m.end() > best[0]):
                    best = (m.end(), phrase, languages)
            if best is None:
                continue
            end, phrase, languages = best
            last = tokens.index_at(end - 1)
            hits.append(Hit(phrase, languages, start, end, index, last))
            free_from = end
        return hits

    def whole(self, normalised: str) -> Hit | None:
        """A phrase that makes up the entire text, if any."""
        first = _key(normalised.split(" ", 1)[0])
        for pattern, phrase, languages in self._by_first.get(first, ()):
            if pattern.fullmatch(normalised):
                return Hit(phrase, languages, 0, len(normalised), 0, normalised.count(" "))
        return None
