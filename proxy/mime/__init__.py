"""MIME editing for the relay: bytes in, bytes out, no I/O.

Each function returns the very same bytes object when it changes nothing, and raises only
MimeError, meaning the message cannot be modified safely.
"""

from .errors import MimeError
from .footer import MARKER_HEADER, FooterOutcome, insert_footer
from .receipts import READ_RECEIPT_HEADERS, remove_read_receipt_requests
from .strip import Removal, TrackerOutcome, strip_trackers
from .structure import is_signed_or_encrypted
from .trackers import ShapeRules, TrackerRules, TrackerVendor, UrlRule

__all__ = [
    "MARKER_HEADER",
    "READ_RECEIPT_HEADERS",
    "FooterOutcome",
    "MimeError",
    "Removal",
    "ShapeRules",
    "TrackerOutcome",
    "TrackerRules",
    "TrackerVendor",
    "UrlRule",
    "insert_footer",
    "is_signed_or_encrypted",
    "remove_read_receipt_requests",
    "strip_trackers",
]
