"""Fetch only what classifying a reply needs, and rebuild it as one small MIME message.

The classifier needs the top-level header, the readable text, delivery-status reports and
the header of the message a bounce returns.  Attachments are never downloaded: the
BODYSTRUCTURE tells which parts to fetch, each part is fetched with BODY.PEEK (so nothing
gets \\Seen) and capped with a partial fetch.  The pieces are then put back together as
the original header followed by a flat multipart/mixed (multipart/report when the original
was a report) holding the fetched parts with their own MIME headers.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxy.watcher.imap.parse import BodyPart, ParseError, Token

# Parts whose content is fetched (capped).
CONTENT_TYPES = frozenset(
    {
        "text/plain",
        "text/html",
        "message/delivery-status",
        "message/global-delivery-status",
        "text/rfc822-headers",
        "message/disposition-notification",
        "message/feedback-report",  # spam complaints (ARF): who complained
    }
)
# Attached messages: only their header is fetched (enough to match a bounce to what we sent).
HEADER_ONLY_TYPES = frozenset({"message/rfc822", "message/global", "message/global-headers"})
# A message with hundreds of small text parts must not turn into hundreds of fetches.
MAX_PARTS = 16

_DROPPED_TOP_FIELDS = (b"content-type", b"content-transfer-encoding", b"mime-version")


@dataclass(frozen=True)
class _Piece:
    part: BodyPart
    body_item: str  # what the server echoes back, e.g. "BODY[2.HEADER]"


@dataclass(frozen=True)
class FetchPlan:
    """The FETCH items to request for one message and how to rebuild it from the answer."""

    items: str
    assemble: Callable[[Mapping[str, Token]], bytes]


def plan_for(structure: BodyPart, cap: int) -> FetchPlan:
    if not structure.is_multipart:
        return _single_part_plan(structure, cap)
    pieces: list[_Piece] = []
    for part in structure.walk():
        if len(pieces) >= MAX_PARTS:
            break
        if part.content_type in CONTENT_TYPES:
            pieces.append(_Piece(part, f"BODY[{part.section}]"))
        elif part.content_type in HEADER_ONLY_TYPES:
            pieces.append(_Piece(part, f"BODY[{part.section}.HEADER]"))
    requested = [f"BODY.PEEK[HEADER]<0.{cap}>"]
    for piece in pieces:
        requested.append(f"BODY.PEEK[{piece.part.section}.MIME]<0.{cap}>")
        requested.append(piece.body_item.replace("BODY[", "BODY.PEEK[", 1) + f"<0.{cap}>")

    def assemble(data: Mapping[str, Token]) -> bytes:
        header = _trim(_get(data, "BODY[HEADER]"), cap, header=True)
        nl = b"\r\n" if b"\r\n" in header else b"\n"
        chunks: list[tuple[bytes, bytes]] = []
        for piece in pieces:
            mime = _get_optional(data, f"BODY[{piece.part.section}.MIME]")
            mime = _trim(mime, cap, header=True) if mime else _synth_mime(piece.part, nl)
            body = _trim(_get_optional(data, piece.body_item) or b"", cap, header=False)
            if piece.part.content_type in HEADER_ONLY_TYPES:
                body = _end_header(body, nl)
            chunks.append((mime, body))
        return _rebuild(header, structure, chunks, nl)

    return FetchPlan(" ".join(["UID", *requested]), assemble)


def fallback_plan(cap: int) -> FetchPlan:
    """For a BODYSTRUCTURE we cannot read: the header and the start of the body as it is."""
    items = f"UID BODY.PEEK[HEADER]<0.{cap}> BODY.PEEK[TEXT]<0.{cap}>"

    def assemble(data: Mapping[str, Token]) -> bytes:
        header = _trim(_get(data, "BODY[HEADER]"), cap, header=True)
        return header + _trim(_get_optional(data, "BODY[TEXT]") or b"", cap, header=False)

    return FetchPlan(items, assemble)


def _single_part_plan(part: BodyPart, cap: int) -> FetchPlan:
    # A one-part message is kept as it is, its body capped; nothing to restructure.
    wanted = part.content_type in CONTENT_TYPES or part.content_type in HEADER_ONLY_TYPES
    if not wanted:
        items = f"UID BODY.PEEK[HEADER]<0.{cap}>"
    else:
        items = f"UID BODY.PEEK[HEADER]<0.{cap}> BODY.PEEK[TEXT]<0.{cap}>"

    def assemble(data: Mapping[str, Token]) -> bytes:
        header = _trim(_get(data, "BODY[HEADER]"), cap, header=True)
        if not wanted:
            return header
        return header + _trim(_get_optional(data, "BODY[TEXT]") or b"", cap, header=False)

    return FetchPlan(items, assemble)


def _get_optional(data: Mapping[str, Token], item: str) -> bytes | None:
    # Partial fetches come back as "BODY[1]<0>"; some servers drop the origin.
    for key in (f"{item}<0>", item):
        value = data.get(key.upper())
        if isinstance(value, bytes):
            return value
    return None


def _get(data: Mapping[str, Token], item: str) -> bytes:
    value = _get_optional(data, item)
    if value is None:
        raise ParseError(f"server did not return {item}")
    return value


def _trim(value: bytes, cap: int, *, header: bool) -> bytes:
    """Cut a capped piece back to its last complete line (a cut base64 quad or QP escape breaks
    decoding); a header block always ends with its blank line.  A server that ignored the partial
    fetch sent more than ``cap``: only the first ``cap`` bytes count."""
    if len(value) >= cap:
        value = value[:cap]
        cut = value.rfind(b"\n")
        value = value[: cut + 1] if cut > 0 else value
    if header:
        nl = b"\r\n" if b"\r\n" in value else b"\n"
        return _end_header(value, nl)
    return value


def _end_header(value: bytes, nl: bytes) -> bytes:
    value = value.rstrip(b"\r\n")
    return value + nl + nl if value else nl


def _synth_mime(part: BodyPart, nl: bytes) -> bytes:
    params = "".join(f'; {k}="{v}"' for k, v in part.params.items() if '"' not in v and "\n" not in v)
    lines = [f"Content-Type: {part.content_type}{params}", f"Content-Transfer-Encoding: {part.encoding}"]
    return nl.join(line.encode("utf-8") for line in lines) + nl + nl


def _header_fields(header: bytes) -> list[bytes]:
    """Split a header block into fields, each with its continuation lines."""
    fields: list[bytes] = []
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _rebuild(header: bytes, top: BodyPart, chunks: list[tuple[bytes, bytes]], nl: bytes) -> bytes:
    fields = _header_fields(header)
    kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in _DROPPED_TOP_FIELDS]
    boundary = _boundary([header, *(m + b for m, b in chunks)])
    subtype = "report" if top.subtype == "report" else "mixed"
    content_type = f'multipart/{subtype}; boundary="{boundary}"'
    report_type = top.params.get("report-type")
    if subtype == "report" and report_type and re.fullmatch(r"[\w.+-]+", report_type):
        content_type += f"; report-type={report_type}"
    out = [b"".join(f if f.endswith(b"\n") else f + nl for f in kept)]
    out.append(b"MIME-Version: 1.0" + nl + b"Content-Type: " + content_type.encode() + nl + nl)
    delimiter = b"--" + boundary.encode()
    for mime, body in chunks:
        out.append(delimiter + nl + mime + body)
        if not body.endswith(b"\n"):
            out.append(nl)
    out.append(delimiter + b"--" + nl)
    return b"".join(out)


def _boundary(pieces: list[bytes]) -> str:
    while True:
        boundary = "=_reply_" + secrets.token_hex(12)
        if not any(boundary.encode() in p for p in pieces):
            return boundary
