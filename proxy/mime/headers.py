"""Surgical edits of a part's header fields."""

from __future__ import annotations

import re

from .splice import Edit
from .structure import Header, Part

_CHARSET_PARAM = re.compile(rb'(;\s*charset\s*=\s*)("[^"]*"|[^;\s]*)', re.IGNORECASE)


def newline_of(raw: bytes, part: Part) -> bytes:
    """The line ending the part's headers use (CRLF unless the part clearly uses LF)."""
    if part.headers:
        h = part.headers[0]
        return b"\n" if raw[h.end - 2 : h.end] != b"\r\n" and raw[h.end - 1 : h.end] == b"\n" else b"\r\n"
    return b"\r\n"


def set_header(raw: bytes, part: Part, name: str, value: str) -> list[Edit]:
    """Replace the first field called name (dropping repeats), or add it at the header end."""
    nl = newline_of(raw, part)
    line = f"{name}: {value}".encode("ascii") + nl
    existing = [h for h in part.headers if h.name.lower() == name.lower()]
    if not existing:
        return [Edit(part.header_end, part.header_end, line)]
    edits = [Edit(existing[0].start, existing[0].end, line)]
    edits.extend(Edit(h.start, h.end, b"") for h in existing[1:])
    return edits


def set_charset(raw: bytes, part: Part, charset: str) -> list[Edit]:
    """Point the part's Content-Type at charset, keeping the rest of the field as written."""
    h = part.header("content-type")
    if h is None:
        edits = set_header(raw, part, "Content-Type", f"text/plain; charset={charset}")
        if part.depth == 0 and part.header("mime-version") is None:
            edits += set_header(raw, part, "MIME-Version", "1.0")
        return edits
    field = raw[h.start : h.end]
    body = field.rstrip(b"\r\n")
    ending = field[len(body) :]
    new, count = _CHARSET_PARAM.subn(lambda m: m.group(1) + charset.encode("ascii"), body, count=1)
    if not count:
        new = body + b"; charset=" + charset.encode("ascii")
    return [Edit(h.start, h.end, new + ending)]


def remove_headers(headers: list[Header], names: frozenset[str]) -> tuple[list[Edit], list[str]]:
    edits: list[Edit] = []
    removed: list[str] = []
    for h in headers:
        if h.name.lower() in names:
            edits.append(Edit(h.start, h.end, b""))
            removed.append(h.name)
    return edits, removed
