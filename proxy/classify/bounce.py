"""Recognise delivery failures and say which addresses failed, permanently or not.

RFC 3464 reports (multipart/report; report-type=delivery-status) are read field by field.
Servers that send plain-text notices (Exim, qmail, Postfix without DSN, Exchange NDRs,
Gmail) are recognised by their sender and wording; the failed addresses are taken from the
explanatory text only, never from the returned copy of our message, which carries the
prospect's address in To: and our footer with "No thanks" in its body.
"""

from __future__ import annotations

import binascii
import quopri
import re
from dataclasses import dataclass
from email.message import Message

from proxy.classify import mimeparse
from proxy.classify.htmltext import html_to_text

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.\w])([45])\d\d(?=[ -])")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MESSAGE_ID_LINE = re.compile(r"^\s*(message-id|in-reply-to|references)\s*:", re.IGNORECASE | re.MULTILINE)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_DAEMON_NAMES = ("mail delivery subsystem", "mail delivery system", "mail delivery service")
_SUBJECTS = (
    "undelivered mail",
    "undeliverable",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "failure notice",
    "returned mail",
    "delivery has failed",
    "nicht zustellbar",
    "non remis",
    "unzustellbar",
    "no se puede entregar",
)
# Wording of the servers that do not send RFC 3464 reports.
_TEXT_MARKERS = (
    "this message was created automatically by mail delivery software",
    "this is the qmail-send program",
    "delivery has failed to these recipients",
    "your message couldn't be delivered",
    "your message wasn't delivered",
    "address not found",
    "i'm sorry to have to inform you that your message could not",
    "the following addresses had permanent fatal errors",
    "could not be delivered to one or more recipients",
    "delivery to the following recipient",
    "die zustellung an folgende empfänger oder gruppen ist fehlgeschlagen",
    "la remise a échoué pour ces destinataires",
    "undelivered mail returned to sender",
)
# Where the explanation ends and the returned copy of our message begins.
_COPY_START = re.compile(
    r"^.*(this is a copy of the message|below this line is a copy of the message|"
    r"original message headers|original message follows|-+ ?original message ?-+|"
    r"-+ ?returned message ?-+|the original message was included as attachment)"
    r"|^(received|return-path|dkim-signature|x-[\w-]+): ",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT_WORDS = ("permanent error", "given up", "giving up", "retry timeout exceeded", "permanent failure")
_TEMPORARY_WORDS = (
    "has not yet been delivered",
    "not been delivered yet",
    "delayed",
    "will be retried",
    "will retry",
    "temporary failure",
    "temporary error",
    "delivery status notification (delay)",
)


@dataclass(frozen=True)
class Bounce:
    permanent: tuple[str, ...]
    temporary: tuple[str, ...]
    evidence: str  # e.g. "Status: 5.1.1" or the recognised wording
    where: str  # "delivery-status" or "bounce text"
    original_message_ids: tuple[str, ...]  # Message-ID of our returned message, if included


def parse_bounce(msg: Message) -> Bounce | None:
    """The failures a delivery notice reports, or None if the message is not one."""
    try:
        return _dsn(msg) or _text_bounce(msg)
    except Exception:  # a damaged notice is still better ignored than fatal
        return None


def _walk(msg: Message) -> list[Message]:
    try:
        return list(msg.walk())
    except Exception:
        return [msg]


def _original_ids(msg: Message) -> tuple[str, ...]:
    ids: list[str] = []
    for part in _walk(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids.extend(mimeparse.message_ids(mimeparse.header(inner, "Message-ID")))
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            inner = mimeparse.parse(mimeparse.part_text(part).encode("utf-8", "replace"))
            ids.extend(mimeparse.message_ids(mimeparse.header(inner, "Message-ID")))
    return tuple(dict.fromkeys(ids))


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if isinstance(payload, list) and encoding not in ("base64", "quoted-printable"):
        return [b for b in payload if isinstance(b, Message)]
    # Some servers encode the report; the parser then sees one block of encoded text.
    if isinstance(payload, list):
        encoded = "".join(str(b.get_payload()) for b in payload if isinstance(b, Message))
    else:
        encoded = str(payload)
    try:
        if encoding == "base64":
            data = binascii.a2b_base64(encoded.encode("ascii", "ignore"))
        else:
            data = quopri.decodestring(encoded.encode("ascii", "ignore"))
    except (binascii.Error, ValueError):
        return []
    text = mimeparse.decode_bytes(data, "utf-8")
    return [mimeparse.parse(block.encode("utf-8")) for block in re.split(r"\r?\n\s*\r?\n", text)]


def _recipient(block: Message) -> str:
    for name in ("Final-Recipient", "Original-Recipient"):
        value = mimeparse.header(block, name)
        if value:
            addr = value.split(";", 1)[-1].strip().strip("<>").lower()
            if "@" in addr:
                return addr
    return ""


def _dsn(msg: Message) -> Bounce | None:
    report = next((p for p in _walk(msg) if p.get_content_type() in _DSN_TYPES), None)
    if report is None:
        return None
    permanent: list[str] = []
    temporary: list[str] = []
    evidence = ""
    for block in _status_blocks(report):
        addr = _recipient(block)
        if not addr:
            continue
        action = mimeparse.header(block, "Action").lower()
        status = mimeparse.header(block, "Status")
        m = _STATUS.search(status)
        if action == "failed" or (not action and m and m.group(1) == "5"):
            permanent.append(addr)
        elif action == "delayed" or (not action and m and m.group(1) == "4"):
            temporary.append(addr)
        else:
            continue  # delivered, relayed, expanded: not a failure
        evidence = evidence or f"Action: {action or '-'}; Status: {status or '-'}"
    return Bounce(
        tuple(dict.fromkeys(permanent)),
        tuple(a for a in dict.fromkeys(temporary) if a not in permanent),
        evidence or "delivery-status report",
        "delivery-status",
        _original_ids(msg),
    )


_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _explanation(msg: Message) -> str:
    plain, html = mimeparse.body_parts(msg)
    text = mimeparse.part_text(plain) if plain is not None else ""
    if not text.strip() and html is not None:
        text = html_to_text(mimeparse.part_text(html))
    cut = _COPY_START.search(text)
    return text[: cut.start()] if cut else text


def _text_bounce(msg: Message) -> Bounce | None:
    sender = mimeparse.address(msg, "From")
    name = mimeparse.display_name(msg, "From").lower()
    subject = mimeparse.header(msg, "Subject").lower()
    from_daemon = sender.split("@")[0] in _DAEMONS or any(n in name for n in _DAEMON_NAMES)
    subject_hit = any(s in subject for s in _SUBJECTS)
    null_sender = mimeparse.header(msg, "Return-Path").strip() == "<>"
    if not (from_daemon or subject_hit or null_sender or "exchange" in sender):
        return None  # every server's notice shows one of these; replies are spared the body scan
    text = _explanation(msg)
    lowered = text.lower().replace("’", "'")
    marker = next((m for m in _TEXT_MARKERS if m in lowered), None)
    if marker is None and not (from_daemon and (subject_hit or _STATUS.search(text))):
        return None
    ignore = {sender, mimeparse.address(msg, "To")}
    found: list[tuple[str, int]] = []
    for m in _ADDRESS.finditer(text):
        addr = m.group().lower().rstrip(".")
        line_start = text.rfind("\n", 0, m.start()) + 1
        if _MESSAGE_ID_LINE.match(text, line_start):
            continue
        if addr in ignore or addr.split("@")[0] in _DAEMONS:
            continue
        found.append((addr, m.end()))
    globally_permanent = any(w in lowered for w in _PERMANENT_WORDS)
    globally_temporary = any(w in lowered for w in _TEMPORARY_WORDS) or "(delay)" in subject
    permanent: list[str] = []
    temporary: list[str] = []
    for i, (addr, end) in enumerate(found):
        following = [e for a, e in found[i + 1 :] if a != addr]
        segment = text[end : following[0] if following else end + 600]
        code = _STATUS.search(segment) or _SMTP_CODE.search(segment)
        if globally_permanent:
            is_temporary = False
        elif code:
            is_temporary = code.group(1) == "4"
        else:
            is_temporary = globally_temporary
        (temporary if is_temporary else permanent).append(addr)
    permanent = list(dict.fromkeys(permanent))
    return Bounce(
        tuple(permanent),
        tuple(a for a in dict.fromkeys(temporary) if a not in permanent),
        marker or subject or sender,
        "bounce text",
        _original_ids(msg),
    )
