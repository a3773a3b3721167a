"""Parsing of the IMAP responses the watcher needs: SELECT, UID SEARCH, FETCH and BODYSTRUCTURE.

aioimaplib hands back a command's response as a list: text lines (``bytes``), each literal
that followed a line ending in ``{N}`` as a ``bytearray``, and last the text of the tagged
status line.  Servers differ in details, so everything here is lenient and raises
``ParseError`` rather than guessing when the structure is not understood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

Token: TypeAlias = str | bytes | list["Token"] | None
"""An atom (``str``), a quoted string or literal (``bytes``), NIL (``None``) or a list."""


class ParseError(ValueError):
    pass


_TOKEN_RE = re.compile(
    rb"""\s*(?:
        (?P<open>\()
      | (?P<close>\))
      | "(?P<quoted>(?:[^"\\]|\\.)*)"
      | \{(?P<literal>\d+)\+?\}$
      | (?P<atom>[^\s()"\[]+(?:\[[^\]]*\])?(?:<\d+>)?)
    )""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(chunks: Sequence[bytes | bytearray]) -> list[Token]:
    """Turn lines and literals into a flat token stream (parentheses kept as "(" / ")")."""
    tokens: list[Token] = []
    i = 0
    while i < len(chunks):
        chunk = chunks[i]
        i += 1
        if isinstance(chunk, bytearray):  # a literal with no announcing line: keep it whole
            tokens.append(bytes(chunk))
            continue
        pos = 0
        text = chunk.rstrip(b"\r\n")
        while pos < len(text):
            if text[pos:].strip() == b"":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise ParseError(f"unexpected data at offset {pos}")
            pos = m.end()
            if m.group("open"):
                tokens.append("(")
            elif m.group("close"):
                tokens.append(")")
            elif m.group("quoted") is not None:
                tokens.append(re.sub(rb"\\(.)", rb"\1", m.group("quoted")))
            elif m.group("literal") is not None:
                size = int(m.group("literal"))
                if i < len(chunks) and isinstance(chunks[i], bytearray):
                    tokens.append(bytes(chunks[i])[:size])
                    i += 1
                else:
                    raise ParseError("literal announced but missing")
            else:
                atom = m.group("atom").decode("ascii", "replace")
                tokens.append(None if atom.upper() == "NIL" else atom)
    return tokens


# Real messages nest a few levels (a forwarded bounce inside an alternative inside a mixed);
# a hostile server may send thousands, which recursion would not survive.
MAX_DEPTH = 64


def nest(tokens: list[Token], start: int = 0) -> tuple[list[Token], int]:
    """Build the list that opens at ``tokens[start]``; return it and the index after it."""
    if start >= len(tokens) or tokens[start] != "(":
        raise ParseError("expected a parenthesised list")
    stack: list[list[Token]] = [[]]
    i = start + 1
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == "(":
            if len(stack) >= MAX_DEPTH:
                raise ParseError(f"lists nested deeper than {MAX_DEPTH} levels")
            sub: list[Token] = []
            stack[-1].append(sub)
            stack.append(sub)
        elif tok == ")":
            done = stack.pop()
            if not stack:
                return done, i
        else:
            stack[-1].append(tok)
    raise ParseError("unbalanced parentheses")


_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)


def fetch_items(lines: Sequence[bytes | bytearray]) -> list[dict[str, Token]]:
    """The attribute lists of each ``n FETCH (...)`` in a FETCH response, keys upper-cased.

    Partial bodies are keyed as the server echoes them (``BODY[1]<0>``).
    """
    groups: list[list[bytes | bytearray]] = []
    for line in lines[:-1]:  # the last line is the tagged status text
        if isinstance(line, bytes) and _FETCH_START.match(line):
            groups.append([line[line.index(b"(") :]])
        elif groups:
            groups[-1].append(line)
    result = []
    for group in groups:
        tokens = tokenize(group)
        attrs, _ = nest(tokens)
        if len(attrs) % 2:
            raise ParseError("odd number of items in a FETCH response")
        items: dict[str, Token] = {}
        for key, value in zip(attrs[::2], attrs[1::2], strict=True):
            if not isinstance(key, str):
                raise ParseError("FETCH item name is not an atom")
            items[key.upper()] = value
        result.append(items)
    return result


def search_uids(lines: Sequence[bytes | bytearray]) -> list[int]:
    """UIDs from a UID SEARCH response (aioimaplib strips the ``SEARCH`` keyword)."""
    uids: set[int] = set()
    for line in lines[:-1]:
        if not isinstance(line, bytes):
            continue
        words = line.split()
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        uids.update(int(w) for w in words if w.isdigit())
    return sorted(uids)


def response_code(lines: Sequence[bytes | bytearray], name: str) -> int | None:
    """A numeric response code such as ``[UIDVALIDITY 123]`` anywhere in a response."""
    m = _first_match(lines, re.compile(rb"\[" + name.encode() + rb" (\d+)\]", re.IGNORECASE))
    return int(m.group(1)) if m else None


def permanent_flags(lines: Sequence[bytes | bytearray]) -> frozenset[str] | None:
    """The ``[PERMANENTFLAGS (...)]`` of a SELECT response, lower-cased; None if absent."""
    m = _first_match(lines, re.compile(rb"\[PERMANENTFLAGS \(([^)]*)\)\]", re.IGNORECASE))
    return frozenset(m.group(1).decode("ascii", "replace").lower().split()) if m else None


def status_value(lines: Sequence[bytes | bytearray], name: str) -> int | None:
    """A value from a STATUS response: ``STATUS "INBOX" (UIDVALIDITY 123)``."""
    m = _first_match(lines, re.compile(rb"\b" + name.encode() + rb" (\d+)", re.IGNORECASE))
    return int(m.group(1)) if m else None


def _first_match(lines: Sequence[bytes | bytearray], pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """The first match of ``pattern`` in the response's text lines (literals are skipped)."""
    for line in lines:
        if isinstance(line, bytes):
            m = pattern.search(line)
            if m:
                return m
    return None


# --- BODYSTRUCTURE -------------------------------------------------------------------------


@dataclass
class BodyPart:
    section: str  # "1", "2.1"...; "" for the top of a multipart message
    maintype: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)
    encoding: str = "7bit"
    size: int = 0
    children: list[BodyPart] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return f"{self.maintype}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    def walk(self) -> list[BodyPart]:
        """Leaves and message/rfc822 parts in order; an attached message is not descended into."""
        if not self.is_multipart:
            return [self]
        out: list[BodyPart] = []
        for child in self.children:
            out.extend(child.walk())
        return out


def parse_bodystructure(value: Token) -> BodyPart:
    if not isinstance(value, list):
        raise ParseError("BODYSTRUCTURE is not a list")
    return _body(value, "")


def _text(tok: Token) -> str:
    if isinstance(tok, bytes):
        return tok.decode("utf-8", "replace")
    if isinstance(tok, str):
        return tok
    return ""


def _params(tok: Token) -> dict[str, str]:
    if not isinstance(tok, list):
        return {}
    pairs = tok[: len(tok) - len(tok) % 2]
    return {_text(k).lower(): _text(v) for k, v in zip(pairs[::2], pairs[1::2], strict=True)}


def _body(node: list[Token], section: str) -> BodyPart:
    if not node:
        raise ParseError("empty body structure")
    if isinstance(node[0], list):
        # multipart: the children come first, then the subtype and optional extension data
        children: list[BodyPart] = []
        i = 0
        while i < len(node) and isinstance(node[i], list):
            sub = node[i]
            assert isinstance(sub, list)
            child_section = f"{section}.{i + 1}" if section else str(i + 1)
            children.append(_body(sub, child_section))
            i += 1
        subtype = _text(node[i]).lower() if i < len(node) else "mixed"
        params = _params(node[i + 1]) if i + 1 < len(node) else {}
        return BodyPart(section, "multipart", subtype or "mixed", params, children=children)
    if len(node) < 2:
        raise ParseError("body part without a type")
    maintype = _text(node[0]).lower() or "application"
    subtype = _text(node[1]).lower() or "octet-stream"
    params = _params(node[2]) if len(node) > 2 else {}
    encoding = _text(node[5]).lower() if len(node) > 5 and node[5] is not None else "7bit"
    size = 0
    if len(node) > 6 and isinstance(node[6], str) and node[6].isdigit():
        size = int(node[6])
    # a single-part message still has part number 1 (RFC 3501, 6.4.5)
    return BodyPart(section or "1", maintype, subtype, params, encoding, size)
