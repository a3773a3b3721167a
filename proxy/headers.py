"""Byte-level header access for the relay's hot path.

Reading a Message-ID or adding one header must not cost a full MIME parse (see the
performance notes in the README); these functions touch only the header block.
"""

from __future__ import annotations

import re

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def header_block_end(raw: bytes) -> int:
    """Offset where the header block ends (the blank line starts); len(raw) when there is no body."""
    match = _HEADER_END.search(raw)
    return match.start() if match else len(raw)


def header_values(raw: bytes, name: str) -> list[str]:
    """Unfolded values of every ``name`` header of the top-level header block."""
    block = raw[: header_block_end(raw)]
    pattern = re.compile(rb"(?im)^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)")
    values = []
    for match in pattern.finditer(block):
        value = re.sub(rb"\r?\n[ \t]", b" ", match.group(1)).strip()
        values.append(value.decode("utf-8", "replace"))
    return values


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
    """Append one header at the end of the top-level header block."""
    line = f"{name}: {safe_header_value(value)}\r\n".encode()
    end = header_block_end(raw)
    if end == len(raw):
        return raw.rstrip(b"\r\n") + b"\r\n" + line
    # end points at the line break that ends the last header: insert after it.
    cut = end + (2 if raw[end : end + 2] == b"\r\n" else 1)
    return raw[:cut] + line + raw[cut:]


def remove_headers(raw: bytes, names: set[str]) -> tuple[bytes, list[str]]:
    """Remove every header named in ``names`` (case-insensitive); returns the names removed."""
    end = header_block_end(raw)
    block = raw[:end]
    wanted = {n.lower() for n in names}
    removed: list[str] = []
    kept: list[bytes] = []
    for field in re.split(rb"\r?\n(?![ \t])", block):
        name = field.split(b":", 1)[0].strip().decode("latin-1").lower()
        if name in wanted and b":" in field:
            removed.append(name)
        else:
            kept.append(field)
    if not removed:
        return raw, []
    return b"\r\n".join(kept) + raw[end:], removed
