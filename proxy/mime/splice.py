"""Assemble a new message from the original bytes and a few replacements."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MimeError


@dataclass(frozen=True, slots=True)
class Edit:
    start: int
    end: int
    data: bytes


def apply_edits(raw: bytes, edits: list[Edit]) -> bytes:
    """raw with each [start, end) replaced; untouched ranges are sliced without copying twice."""
    if not edits:
        return raw
    # Insertions (empty ranges) sort before a replacement starting at the same offset.
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    view = memoryview(raw)
    chunks: list[bytes | memoryview] = []
    pos = 0
    for e in ordered:
        if e.start < pos or e.end < e.start or e.end > len(raw):
            raise MimeError("overlapping edits")
        chunks.append(view[pos : e.start])
        chunks.append(e.data)
        pos = e.end
    chunks.append(view[pos:])
    return b"".join(chunks)
