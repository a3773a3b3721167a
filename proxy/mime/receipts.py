"""Removal of read-receipt requests, which let the sender learn when a message was opened."""

from __future__ import annotations

from .headers import remove_headers
from .splice import apply_edits
from .structure import parse_headers

READ_RECEIPT_HEADERS = frozenset(
    {
        "disposition-notification-to",
        "disposition-notification-options",
        "return-receipt-to",
        "x-confirm-reading-to",
    }
)


def remove_read_receipt_requests(raw: bytes) -> tuple[bytes, list[str]]:
    """The message without read-receipt request headers, and the names removed (as written)."""
    headers = parse_headers(raw, 0, len(raw))[0]
    edits, removed = remove_headers(headers, READ_RECEIPT_HEADERS)
    return (apply_edits(raw, edits), removed) if edits else (raw, [])
