"""Top-level header access for the relay's steps, without a full MIME parse.

Built on the MIME module's header scanner so that every step agrees with mail readers on
where the header ends (the first line that is not a header field, blank or not).
"""

from __future__ import annotations

import re

from proxy.mime.headers import remove_headers as _removal_edits
from proxy.mime.splice import Edit, apply_edits
from proxy.mime.structure import Header, parse_headers


def without_mbox_from_line(raw: bytes) -> bytes:
    """A first line ``From sender date`` (an mbox separator, not a header) removed, as MTAs do.

    Left in, it would end the header block at once: every header would be read as body text.
    """
    if not raw.startswith(b"From "):
        return raw
    end = raw.find(b"\n")
    return b"" if end < 0 else raw[end + 1 :]


def _fields(raw: bytes) -> tuple[list[Header], int]:
    headers, header_end, _ = parse_headers(raw, 0, len(raw))
    return headers, header_end


def header_block_end(raw: bytes) -> int:
    """Offset just past the last header field, its line break included."""
    return _fields(raw)[1]


def header_values(raw: bytes, name: str) -> list[str]:
    """Unfolded values of every ``name`` field of the top-level header (8-bit text as UTF-8)."""
    wanted = name.lower()
    return [h.value.encode("latin-1").decode("utf-8", "replace") for h in _fields(raw)[0] if h.name.lower() == wanted]


def header_value(raw: bytes, name: str) -> str | None:
    values = header_values(raw, name)
    return values[0] if values else None


def message_id(raw: bytes) -> str | None:
    value = header_value(raw, "Message-ID")
    if not value:
        return None
    match = re.search(r"<([^<>\s]+)>", value)
    return match.group(1) if match else value.strip() or None


def safe_header_value(value: str) -> str:
    """Collapse anything that could end a header line: generated headers never carry CR/LF."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()


def add_header(raw: bytes, name: str, value: str) -> bytes:
    """Append one field at the end of the top-level header."""
    line = f"{name}: {safe_header_value(value)}\r\n".encode()
    end = header_block_end(raw)
    return apply_edits(raw, [Edit(end, end, line)])


def remove_headers(raw: bytes, names: set[str]) -> tuple[bytes, list[str]]:
    """Remove every top-level field named in ``names`` (case-insensitive); returns the names removed."""
    edits, removed = _removal_edits(_fields(raw)[0], frozenset(n.lower() for n in names))
    return apply_edits(raw, edits), [n.lower() for n in removed]
