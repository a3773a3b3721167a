"""Bare CR and bare LF: refused in headers, normalised in the body; NUL bytes refused anywhere.

aiosmtpd hands over bare CR/LF unchanged.  In a header a bare LF becomes a second header
once a parser reads it (``Subject: hi<LF>Bcc: victim@...``), so a header block that holds
one is refused.  In the body they are turned into CRLF before anything else reads the
message, so that no smuggled end-of-data (``<LF>.<LF>``) survives to the upstream server.
"""

from __future__ import annotations

import re

from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, Reject

_ANY_EOL = re.compile(rb"\r\n|\r|\n")


def _has_bare_eol(data: bytes) -> bool:
    crlf = data.count(b"\r\n")
    return data.count(b"\n") != crlf or data.count(b"\r") != crlf


def normalise_line_endings(raw: bytes) -> bytes:
    """Return ``raw`` with CRLF line endings; raises Reject for a bare CR/LF in the header block."""
    end = raw.find(b"\r\n\r\n")
    header = raw if end < 0 else raw[:end]
    if _has_bare_eol(header):
        raise Reject(replies.BARE_EOL_IN_HEADER)
    if b"\x00" in header:
        raise Reject(replies.NUL_IN_HEADER)
    if b"\x00" in raw:
        # RFC 5322 allows no NUL anywhere; servers truncate or reject it: refused, never passed on.
        raise Reject(replies.NUL_IN_BODY)
    if _has_bare_eol(raw):
        raw = raw[: end + 4] + _ANY_EOL.sub(b"\r\n", raw[end + 4 :])
    if raw and not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


async def check_line_endings(ctx: MessageContext) -> None:
    if ctx.clean_lines and ctx.raw.endswith(b"\r\n"):
        # The SMTP edge looked at every piece while reading (line endings, NUL): nothing to fix.
        ctx.unmodified = ctx.raw
        return
    fixed = normalise_line_endings(ctx.raw)
    if fixed is not ctx.raw:
        ctx.raw = fixed
        ctx.mark_applied()
    ctx.unmodified = ctx.raw  # what "sent unchanged" means from here on
