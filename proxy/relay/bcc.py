"""Bcc: never leaves the relay in a header; the envelope alone carries its recipients."""

from __future__ import annotations

import re

from proxy.relay.headers import header_block_end

_BCC = re.compile(rb"(?:resent-)?bcc[ \t]*:", re.IGNORECASE)


def without_bcc(raw: bytes) -> bytes:
    """``raw`` without its Bcc (and Resent-Bcc) header fields, continuation lines included."""
    end = header_block_end(raw)
    head = raw[:end]
    if b"bcc" not in head.lower():
        return raw  # the common case: the exact bytes, untouched
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(_BCC.match(line))
        if not dropping:
            kept.append(line)
    return b"".join(kept) + raw[end:]
