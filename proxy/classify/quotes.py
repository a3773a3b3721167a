"""Cut a plain-text reply down to what the person wrote.

Removes ">" quoting, the attribution line or header block a client writes above the
quoted original (from that point on everything is the original), the "-- " signature
(our own plain-text footer sits behind one) and any line carrying a phrase of our footer.
Quoted text must never be read as the person's words: it contains our "reply No thanks"
footer.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.classify.textnorm import fold, normalize

try:
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the parser's home in another Python
    _sre = None

# "-----Original Message-----", "-------- Message d'origine --------", "---- Forwarded ----":
# any language, recognised by shape.
GENERIC_SEPARATOR = r"^[-_=*]{3,}\s*[^-_=*\s][^-_=*]{2,60}?\s*[-_=*]{3,}$"
_KEY = re.compile(r"^[\s*>]*([^:：<>@]{1,30}?)\s*\**\s*[:：]")
_RULE_LINE = re.compile(r"^[\s_\-=*]*$")
_MAX_ATTRIBUTION_LINE = 400
_ENDS_SENTENCE = re.compile(r"[.!?]\s*$")
# Structure that needs no words: an address, a time of day, a year, a numeric date.
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+\.[a-z]{2,}", re.IGNORECASE)
_TIME = re.compile(r"(?<!\d)(?:[01]?\d|2[0-3])[:.h][0-5]\d(?!\d)")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<!\d)\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?!\d)")
_ENDS_COLON = re.compile(r"[:：][\s\u200e\u200f]*$")
_LABEL_LINE = re.compile(r"^[\s*>]*([^\W\d_][^:：<>@]{0,30}?)\s*\**\s*[:：]\s*(\S.*)$")


def _combine(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _caseless(item: tuple[Any, Any]) -> list[str] | None:
    """The characters of a parsed literal or class of literals, if none has another case
    (a letter meets its other cases) and none is a space (a line break may stand before "$")."""
    op, arg = item
    if op is _sre.LITERAL:
        codes = [arg]
    elif op is _sre.IN and all(o is _sre.LITERAL for o, _ in arg):
        codes = [a for _, a in arg]
    else:
        return None
    chars = [chr(c) for c in codes]
    return None if any(c.lower() != c or c.upper() != c or c.isspace() for c in chars) else chars


def _line_ends(patterns: Iterable[str]) -> tuple[frozenset[str], str] | None:
    """(last characters, trailing characters) when each pattern ends in "$" after a caseless
    character or class of them, itself perhaps followed by optional repeats of others:
    "wrote:$" needs a line ending in ":", Arabic "كتب:[<direction marks>]*$" one ending in
    ":" once those marks are stripped.  None when a pattern could end otherwise.

    An unanchored alternation of a few dozen such patterns is tried at every position of
    every line; a line that does not end right is ruled out with one comparison."""
    if _sre is None:  # pragma: no cover - another Python's internals
        return None
    last: set[str] = set()
    trailing: set[str] = set()
    for pattern in patterns:
        try:
            items = list(_sre.parse(pattern, re.IGNORECASE))
        except Exception:  # compiled elsewhere, where its error is told
            return None
        if len(items) < 2 or items[-1] != (_sre.AT, _sre.AT_END):
            return None
        k = len(items) - 2
        while k > 0 and items[k][0] in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, _, body = items[k][1]
            repeated = _caseless(body[0]) if low == 0 and len(body) == 1 else None
            if repeated is None:
                return None
            trailing.update(repeated)
            k -= 1
        found = _caseless(items[k])
        if found is None:
            return None
        last.update(found)
    if last & trailing:
        return None
    return frozenset(last), "".join(sorted(trailing))


def _anchored(patterns: Sequence[str]) -> bool:
    """Whether each pattern can only match at the start of a text ("^On ... wrote:$"), so
    that their alternation need not be tried at every position of every line."""
    if _sre is None or not patterns:  # pragma: no cover - another Python's internals
        return False
    for pattern in patterns:
        try:
            items = list(_sre.parse(pattern, re.IGNORECASE))
        except Exception:  # compiled elsewhere, where its error is told
            return False
        if not items or items[0] != (_sre.AT, _sre.AT_BEGINNING):
            return False
    return True


def _may_end_line(line: str, ends: tuple[frozenset[str], str] | None) -> bool:
    if ends is None:
        return True
    last, trailing = ends
    return (line.rstrip(trailing) if trailing else line)[-1:] in last  # rstrip("") would strip spaces


@dataclass(frozen=True)
class QuoteRules:
    """Compiled markers of where a quoted original starts."""

    attribution: re.Pattern[str] | None = None  # the whole attribution, from its first word
    attribution_line: re.Pattern[str] | None = None  # a line that ends an attribution
    separators: re.Pattern[str] | None = field(default_factory=lambda: _combine([GENERIC_SEPARATOR]))
    header_from: frozenset[str] = frozenset({"from"})
    header_sent: frozenset[str] = frozenset({"sent", "date"})
    attribution_line_ends: tuple[frozenset[str], str] | None = None  # see _line_ends
    attribution_anchored: bool = False  # every attribution pattern starts with "^": match, not search

    @classmethod
    def build(
        cls,
        attribution: Iterable[str],
        attribution_line: Iterable[str],
        separators: Iterable[str],
        header_from: Iterable[str],
        header_sent: Iterable[str],
    ) -> QuoteRules:
        attribution = list(attribution)
        attribution_line = list(attribution_line)
        return cls(
            attribution=_combine(attribution),
            attribution_anchored=_anchored(attribution),
            attribution_line=_combine(attribution_line),
            attribution_line_ends=_line_ends(attribution_line),
            separators=_combine([GENERIC_SEPARATOR, *separators]),
            header_from=frozenset(fold(k).strip() for k in header_from),
            header_sent=frozenset(fold(k).strip() for k in header_sent),
        )


GENERIC = QuoteRules()


def _quote_prefix(depth: int) -> str:
    return ">" * depth + (" " if depth else "")


def unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed soft line breaks (Thunderbird, Apple Mail)."""
    out: list[str] = []
    pending: str | None = None  # a flowed line waiting for its continuation
    pending_depth = -1
    for line in text.split("\n"):
        line = line.rstrip("\r")
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):
            body = body[1:]  # space-stuffing
        if pending is not None and (depth != pending_depth or body == "-- "):
            out.append(_quote_prefix(pending_depth) + pending)  # a signature line never joins
            pending = None
        if pending is not None:
            body = pending + body
            pending = None
        if body.endswith(" ") and body != "-- ":
            pending, pending_depth = (body[:-1] if delsp else body), depth
            continue
        out.append(_quote_prefix(depth) + body)
    if pending is not None:
        out.append(_quote_prefix(pending_depth) + pending)
    return "\n".join(out)


def _header_block_at(lines: Sequence[str], i: int, rules: QuoteRules) -> bool:
    m = _KEY.match(lines[i])
    if not m or fold(m.group(1)).strip(" *") not in rules.header_from:
        return False
    for nxt in lines[i + 1 : i + 6]:
        k = _KEY.match(nxt)
        if k and fold(k.group(1)).strip(" *") in rules.header_sent:
            return True
    return False


def _looks_like_attribution(text: str, quoted_next: bool) -> bool:
    """A client's line above a quote, by shape alone: it ends in ":" and carries an address
    with a date or time ("Jane <jane@x> escreveu no dia 12/11/2026 à(s) 10:42:"), or, right
    above ">" quoting, a date with a time ("Le 12/11/2026 à 10:42, Jane a écrit :")."""
    if len(text) > _MAX_ATTRIBUTION_LINE or (":" not in text and "：" not in text) or not _ENDS_COLON.search(text):
        return False
    dated = bool(_YEAR.search(text) or _NUMERIC_DATE.search(text))
    if _ADDRESS.search(text):
        return dated or bool(_TIME.search(text))
    return quoted_next and dated and bool(_TIME.search(text))


def _generic_header_block_at(lines: Sequence[str], i: int) -> bool:
    """Three or more "Label: value" lines in a row, one value an address and one a date:
    a quoted header block in any language, whatever the labels say."""
    if not _LABEL_LINE.match(lines[i]):
        return False
    labels = 0
    address = dated = False
    for line in lines[i : i + 6]:
        m = _LABEL_LINE.match(line)
        if not m:
            if line.strip():
                break
            continue
        labels += 1
        value = m.group(2)
        address = address or bool(_ADDRESS.search(value))
        dated = dated or bool(_YEAR.search(value) and (_TIME.search(value) or _NUMERIC_DATE.search(value)))
    return labels >= 3 and address and dated


class _QuotedFrom:
    """For a line index (up to one past the end): is the first non-blank line from there on
    ">" quoting?  Worked out when asked: a reply ends long before its quoted original does."""

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = lines

    def __getitem__(self, i: int) -> bool:
        for line in itertools.islice(self._lines, i, None):
            stripped = line.strip()
            if stripped:
                return stripped.startswith(">")
        return False


def _attribution_at(lines: Sequence[str], i: int, rules: QuoteRules, quoted_from: _QuotedFrom) -> int:
    """How many lines an attribution starting at line i spans (0 if none).

    Gmail wraps long attributions ("On Tue, ... Jane <" / "jane@example.com> wrote:"), so
    patterns for the whole attribution are also tried on up to three adjacent lines joined;
    a join is refused when its later lines are an attribution on their own, so that the
    person's last line above an unwrapped attribution is kept.
    """
    line = lines[i].strip()
    if len(line) > _MAX_ATTRIBUTION_LINE:
        return 0
    whole = rules.attribution
    find = None if whole is None else whole.match if rules.attribution_anchored else whole.search
    if find is not None and find(line):
        return 1
    pattern = rules.attribution_line
    if pattern is not None and _may_end_line(line, rules.attribution_line_ends) and pattern.search(line):
        return 1
    if _looks_like_attribution(line, quoted_from[i + 1]):
        return 1
    parts = [line]
    for k, nxt in enumerate(lines[i + 1 : i + 3], start=2):
        stripped = nxt.strip()
        if not stripped or len(stripped) > _MAX_ATTRIBUTION_LINE:
            break
        parts.append(stripped)
        joined = " ".join(parts)
        if find is not None and find(joined):
            return 0 if any(find(t) for t in _later_joins(parts)) else len(parts)
        quoted = quoted_from[i + k]
        if _looks_like_attribution(joined, quoted) and not _ENDS_SENTENCE.search(parts[0]):
            return 0 if any(_looks_like_attribution(t, quoted) for t in _later_joins(parts)) else len(parts)
    return 0


def _later_joins(parts: Sequence[str]) -> Iterable[str]:
    """The joins of a wrapped attribution without its first line(s)."""
    return (" ".join(parts[j:]) for j in range(1, len(parts)))


@functools.lru_cache(maxsize=8)
def _fingerprint_pattern(footer_fingerprints: tuple[str, ...]) -> re.Pattern[str] | None:
    """The same few dozen phrases arrive with every reply: normalise them once per rule set,
    into one pattern that finds any of them as whole words of a normalised line."""
    phrases = [f for f in (normalize(p) for p in footer_fingerprints) if f]
    if not phrases:
        return None
    return re.compile("(?<![^ ])(?:" + "|".join(re.escape(f) for f in phrases) + ")(?![^ ])")


@functools.lru_cache(maxsize=8192)
def _normalized(line: str) -> str:
    """A line as the footer phrases are searched in: our footer and the clients' attribution
    lines come back with reply after reply."""
    return normalize(line)


def strip_quoted(text: str, rules: QuoteRules = GENERIC, footer_fingerprints: Sequence[str] = ()) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fingerprints = _fingerprint_pattern(tuple(footer_fingerprints))
    quoted_from = _QuotedFrom(lines)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            out.append("")
            i += 1
            continue
        if stripped.startswith(">"):
            i += 1
            continue
        if line.rstrip() == "--" or line == "-- ":
            break
        if fingerprints is not None and fingerprints.search(_normalized(stripped)):
            break
        if rules.separators is not None and rules.separators.match(stripped):
            break
        if _header_block_at(lines, i, rules) or _generic_header_block_at(lines, i):
            break
        span = _attribution_at(lines, i, rules, quoted_from)
        if span:
            # An attribution above ">" quoting may be followed by inline answers, which are
            # the person's words; above an unquoted original it ends the reply.
            if quoted_from[i + span]:
                i += span
                continue
            break
        out.append(line.rstrip())
        i += 1
    while out and _RULE_LINE.match(out[-1]):
        out.pop()
    while out and not out[0].strip():
        out.pop(0)
    return "\n".join(out)
