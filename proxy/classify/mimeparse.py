"""Tolerant MIME access: parse bytes, decode headers and text parts without raising.

Replies arrive from every client and server on earth, with wrong charsets, 8-bit headers
and broken structure; every helper here degrades to best-effort text instead of failing.
The compat32 parser is used because it is several times faster than the modern policy
and never rejects a header.
"""

from __future__ import annotations

import email
import email.header
import re
from email.message import Message

MAX_PART_CHARS = 200_000  # beyond this a part is not a reply a person typed
_ID = re.compile(r"<([^<>\s]+)>")


def parse(raw: bytes) -> Message:
    try:
        return email.message_from_bytes(raw)
    except Exception:  # the parser is lenient, but a reply must never stop the watcher
        return email.message_from_string("")


def _unescape(value: str, hint: str | None) -> str:
    """Undo the surrogate escapes the parser leaves for raw 8-bit header bytes.

    Clients that send unencoded 8-bit headers write them in the charset of the body, so
    that is tried after UTF-8.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeError:
        return decode_bytes(data, hint)


def decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeError):
            continue
    # windows-1252 is what mislabelled Western mail almost always is; replace the rest.
    return data.decode("cp1252", "replace")


def _raw_header(msg: Message, name: str) -> str | None:
    # raw_items() keeps 8-bit bytes as surrogate escapes; get() would turn them into "?".
    wanted = name.lower()
    try:
        for key, value in msg.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return None
    return None


def header(msg: Message, name: str) -> str:
    """A header's decoded text ('' if missing or unreadable)."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    if not raw.isascii():
        try:
            hint = msg.get_content_charset()
        except Exception:
            hint = None
        raw = _unescape(raw, hint)
    if "=?" not in raw:
        return " ".join(raw.split())
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return " ".join(raw.split())
    text = "".join(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk for chunk, charset in parts)
    return " ".join(text.split())


_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+?)\s*>")
_BARE_ADDR = re.compile(r"[^\s<>\"(),;:]+@[^\s<>\"(),;:]+")


def address(msg: Message, name: str) -> str:
    """The lower-cased address of a single-address header such as From ('' if none)."""
    value = header(msg, name)
    # A regex instead of email.utils.parseaddr, which costs more than the rest of a verdict.
    m = _ANGLE_ADDR.search(value) or _BARE_ADDR.search(value)
    return m.group(1 if m.re is _ANGLE_ADDR else 0).strip().lower() if m else ""


def display_name(msg: Message, name: str) -> str:
    value = header(msg, name)
    if "<" in value:
        return value.split("<", 1)[0].strip().strip('"').strip()
    m = re.search(r"\(([^()]*)\)", value)  # old style: addr@example (Name)
    return m.group(1).strip() if m else ""


def message_ids(value: str) -> tuple[str, ...]:
    """Message-IDs in a header value, in order, without angle brackets or repeats."""
    ids = _ID.findall(value) or value.split()
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return tuple(seen)


def part_text(part: Message) -> str:
    """The decoded text of a non-multipart part (transfer encoding and charset undone)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload[:MAX_PART_CHARS] if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data[: MAX_PART_CHARS * 4], charset)[:MAX_PART_CHARS]


def is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    except Exception:
        return False
    return disposition == "attachment"


def body_parts(msg: Message) -> tuple[Message | None, Message | None]:
    """The first inline text/plain and text/html parts, not looking inside attached messages."""
    plain: Message | None = None
    html: Message | None = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype.startswith("message/"):
                continue  # an attached or returned message was not written by the sender
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[0:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if is_attachment(part):
            continue
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
    return plain, html


def is_flowed(part: Message) -> tuple[bool, bool]:
    """RFC 3676 format=flowed and DelSp=yes flags of a text part."""
    try:
        fmt = (part.get_param("format") or "").__str__().lower()
        delsp = (part.get_param("delsp") or "").__str__().lower()
    except Exception:
        return False, False
    return fmt == "flowed", delsp == "yes"
