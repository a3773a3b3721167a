"""Tokenising just enough HTML to edit it surgically.

Mail HTML is often malformed and Outlook wraps parts of it in conditional comments
(``<!--[if mso]>``), which Outlook renders; so tags are found everywhere, attributes are
read with every quoting style, and nothing outside an edited range is rewritten.
"""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TAG_CLOSE = re.compile(r"\s*>")
_NAME_END = re.compile(r"[\s/>]")
_SEP = re.compile(r"[\s/]*")
_ATTR = re.compile(r"""([^\s"'<>/=][^\s"'<>/=]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")


# Fast path for well-formed tags: the rest of a start tag, quoted values skipped whole
# (possessive, so a tag that never closes costs no backtracking).
_TAG_REST = re.compile(r"""(?:[^>"'<]++|"[^"]*+"|'[^']*+')*+>""")
_ATTRS = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>][^\s>]*)))?""")


def find_tags(
    text: str, start_pattern: re.Pattern[str], lowered: str | None = None
) -> list[tuple[int, int, dict[str, str]]]:
    """(start, end, attributes) of every start tag found by start_pattern (which matches
    "<name"); attribute names lower-cased, values with entities decoded.

    ``lowered`` is ``text.lower()`` when the caller has it: a case-insensitive search has no
    literal to skip ahead by and is many times slower, so the lower-cased copy is searched
    with a case-sensitive pattern instead, as long as lowering kept every offset.
    """
    tags: list[tuple[int, int, dict[str, str]]] = []
    pos = 0
    if lowered is not None and len(lowered) == len(text):
        search, haystack = _case_sensitive(start_pattern).search, lowered
    else:
        search, haystack = start_pattern.search, text
    while m := search(haystack, pos):
        pos = m.end()
        rest = _TAG_REST.match(text, pos)
        if rest is not None and text.find("<", pos, rest.end()) < 0:
            attrs: dict[str, str] = {}
            for name, dq, sq, uq in _ATTRS.findall(text, pos, rest.end() - 1):
                value = dq or sq or uq
                attrs.setdefault(name.lower(), html.unescape(value) if "&" in value else value)
            tags.append((m.start(), rest.end(), attrs))
            pos = rest.end()
            continue
        # A "<" inside the tag or odd quoting: read it attribute by attribute as browsers do.
        tag = parse_tag(text, m.start(), m.end())
        if tag is not None:
            tags.append((tag.start, tag.end, {k: a.value for k, a in tag.attrs.items()}))
            pos = tag.end
    return tags


_CASE_SENSITIVE: dict[re.Pattern[str], re.Pattern[str]] = {}


def _case_sensitive(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern without IGNORECASE, for searching lower-cased text (its literals are lower case)."""
    found = _CASE_SENSITIVE.get(pattern)
    if found is None:
        found = _CASE_SENSITIVE[pattern] = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
    return found


@dataclass(frozen=True, slots=True)
class Attr:
    name: str  # lower-case
    value: str  # entities decoded
    value_start: int  # raw value span without its quotes; -1 for a bare attribute
    value_end: int
    quote: str  # '"', "'" or "" (unquoted or bare)
    start: int = -1  # where the attribute's name starts
    end: int = -1  # just after its value (and closing quote)


@dataclass(frozen=True, slots=True)
class Tag:
    start: int
    end: int
    attrs: dict[str, Attr]  # the first of repeated attributes wins, as in browsers


def parse_tag(text: str, start: int, name_end: int) -> Tag | None:
    """The start tag at text[start:] whose name ends at name_end; None if it never closes."""
    attrs: dict[str, Attr] = {}
    pos = name_end
    n = len(text)
    while True:
        pos = _SEP.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        if pos >= n:
            return None
        if text[pos] == ">":
            return Tag(start, pos + 1, attrs)
        m = _ATTR.match(text, pos)
        if m is None:
            pos += 1  # a stray quote or "<" inside the tag: skip it as browsers do
            continue
        name = m.group(1).lower()
        raw_value = m.group(2)
        if raw_value is None:
            attr = Attr(name, "", -1, -1, "", m.start(), m.end())
        elif raw_value[:1] in ('"', "'"):
            if len(raw_value) < 2:
                return None
            value = html.unescape(raw_value[1:-1])
            attr = Attr(name, value, m.start(2) + 1, m.end(2) - 1, raw_value[0], m.start(), m.end())
        else:
            attr = Attr(name, html.unescape(raw_value), m.start(2), m.end(2), "", m.start(), m.end())
        attrs.setdefault(name, attr)
        pos = m.end()


class Comments:
    """Spans of HTML comments, for telling whether an offset lies inside one."""

    def __init__(self, text: str):
        self.starts: list[int] = []
        self.ends: list[int] = []
        pos = 0
        while (i := text.find("<!--", pos)) >= 0:
            m = _COMMENT.match(text, i)
            assert m is not None
            self.starts.append(m.start())
            self.ends.append(m.end())
            pos = m.end()

    def contains(self, offset: int) -> bool:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i >= 0 and offset < self.ends[i]


def footer_insertion_point(text: str) -> tuple[int, int]:
    """Where a footer goes: before the last </body> (else </html>, else the end of the text),
    and how many <blockquote> elements are still open there (the footer must not be quoted)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # lower() changed offsets (rare non-Latin-1 text)
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    comments = Comments(text) if "<!--" in text else None
    index = -1
    for closing in ("</body", "</html"):
        pos = len(lowered)
        # Case-insensitive regex searches have no literal to skip by; str.rfind on the
        # lower-cased copy is many times faster on a long body.
        while (i := lowered.rfind(closing, 0, pos)) >= 0:
            pos = i
            if _TAG_CLOSE.match(lowered, i + len(closing)) and not (comments and comments.contains(i)):
                index = i
                break
        if index >= 0:
            break
    if index < 0:
        index = len(text.rstrip())
    depth = 0
    pos = 0
    while (i := lowered.find("blockquote", pos, index)) >= 0:
        pos = i + 10
        is_end = lowered[i - 2 : i] == "</"
        is_tag = (is_end or lowered[i - 1 : i] == "<") and _NAME_END.match(lowered, pos)
        if is_tag and not (comments and comments.contains(i)):
            depth = max(0, depth - 1) if is_end else depth + 1
    return index, depth
