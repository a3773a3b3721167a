"""Spam complaints from feedback loops: ARF reports (RFC 5965) and providers' JSON notices."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

from proxy.classify import mimeparse

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Placeholders that feedback loops write instead of the complainer's address.
_HIDDEN = re.compile(r"^(redacted|hashed|undisclosed|removed|xxx+|\*+)|@(redacted|example\.invalid)", re.IGNORECASE)
# Feedback types that are not a person complaining: about our authentication, or the opposite.
NOT_COMPLAINTS = ("not-spam", "auth-failure", "dkim", "delivered")
_JSON_START = re.compile(r"\{\s*\"")
_MAX_JSON = 200_000


@dataclass(frozen=True)
class Complaint:
    recipients: tuple[str, ...]  # the people who complained, as the report names them
    feedback_type: str  # abuse, fraud, opt-out, auth-failure, not-spam ...
    evidence: str
    where: str  # "feedback report", "provider notice"
    original_message_ids: tuple[str, ...]

    @property
    def suppresses(self) -> bool:
        """auth-failure reports are about the sender's own DKIM/SPF, not-spam is the opposite."""
        return self.feedback_type not in NOT_COMPLAINTS


def _walk(msg: Message) -> list[Message]:
    try:
        return list(msg.walk())
    except Exception:
        return [msg]


def _fields(text: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append((name.strip().lower(), value.strip()))
    return fields


def _report_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser read the fields as a header block
        return "\n\n".join(str(p) for p in payload if isinstance(p, Message))
    return mimeparse.part_text(part)


def _visible(addresses: list[str]) -> list[str]:
    return [a for a in dict.fromkeys(a.lower().strip("<>.") for a in addresses) if not _HIDDEN.search(a)]


def _enclosed(msg: Message) -> tuple[Message | None, tuple[str, ...]]:
    """The complained-about message (or its headers) and its Message-IDs."""
    for part in _walk(msg):
        ctype = part.get_content_type()
        inner: Message | None = None
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            inner = mimeparse.parse(mimeparse.part_text(part).encode("utf-8", "replace"))
        if inner is not None:
            return inner, mimeparse.message_ids(mimeparse.header(inner, "Message-ID"))
    return None, ()


def parse_arf(msg: Message) -> Complaint | None:
    """An ARF report, or a Microsoft-style feedback message that encloses the original with its recipient."""
    report = next((p for p in _walk(msg) if p.get_content_type() == "message/feedback-report"), None)
    inner, ids = _enclosed(msg)
    if report is None:
        # Feedback loops that forward the complained-about message with the recipient in a header
        hidden = mimeparse.header(inner, "X-HmXmrOriginalRecipient") if inner is not None else ""
        if not hidden:
            return None
        return Complaint(
            tuple(_visible(_ADDRESS.findall(hidden))), "abuse", "X-HmXmrOriginalRecipient", "feedback report", ids
        )
    fields = _fields(_report_text(report))
    kind = next((v.lower() for n, v in fields if n == "feedback-type"), "") or "abuse"
    recipients = _visible(
        [a for n, v in fields if n in ("original-rcpt-to", "removal-recipient") for a in _ADDRESS.findall(v)]
    )
    if not recipients and inner is not None:
        # The complainer received our message: its To/Cc (or the provider's own header) name them.
        found = []
        for name in ("X-HmXmrOriginalRecipient", "X-Original-To", "To", "Cc"):
            found += _ADDRESS.findall(mimeparse.header(inner, name))
        recipients = _visible(found)
    user_agent = next((v for n, v in fields if n == "user-agent"), "")
    evidence = f"Feedback-Type: {kind}" + (f"; User-Agent: {user_agent}" if user_agent else "")
    return Complaint(tuple(recipients), kind, evidence[:200], "feedback report", ids)


def json_notices(msg: Message) -> list[dict[str, Any]]:
    """Provider notices carried as JSON in a message body (Amazon SES, directly or through SNS)."""
    notices: list[dict[str, Any]] = []
    for part in _walk(msg):
        if part.is_multipart() or part.get_content_maintype() not in ("text", "application"):
            continue
        text = mimeparse.part_text(part)
        start = _JSON_START.search(text[:2000])
        if start is None:
            continue
        data = _load_json(text[start.start() : _MAX_JSON])
        if data is None:
            continue
        if isinstance(data, dict) and isinstance(data.get("Message"), str):  # an SNS envelope
            try:
                data = json.loads(data["Message"])
            except ValueError:
                continue
        if isinstance(data, dict) and (data.get("notificationType") or data.get("eventType")):
            notices.append(data)
    return notices


def _load_json(text: str) -> Any:
    # Notices sent by mail arrive with their long lines wrapped, sometimes inside a string.
    for candidate in (text, text.replace("\r", "").replace("\n", "")):
        try:
            return json.JSONDecoder().raw_decode(candidate.strip())[0]
        except ValueError:
            continue
    return None


def notice_kind(notice: dict[str, Any]) -> str:
    return str(notice.get("notificationType") or notice.get("eventType") or "").lower()


def member(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON object's member that should be an object ({} when it is missing or something else)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def notice_message_ids(notice: dict[str, Any]) -> tuple[str, ...]:
    headers = member(member(notice, "mail"), "commonHeaders")
    value = str(headers.get("messageId") or "")
    return mimeparse.message_ids(value) if value else ()


def parse_json_complaint(msg: Message) -> Complaint | None:
    for notice in json_notices(msg):
        if notice_kind(notice) != "complaint":
            continue
        body = member(notice, "complaint")
        people = body.get("complainedRecipients") or []
        found = [str(p.get("emailAddress", "")) for p in people if isinstance(p, dict)]
        kind = str(body.get("complaintFeedbackType") or "abuse").lower()
        return Complaint(
            tuple(_visible(found)),
            kind,
            f"provider notice: Complaint ({kind})",
            "provider notice",
            notice_message_ids(notice),
        )
    return None


def parse_unsubscribe_mail(msg: Message) -> Complaint | None:
    """A mail client's one-click unsubscribe sent to a List-Unsubscribe mailto (Apple Mail marks it)."""
    if mimeparse.header(msg, "X-Apple-Unsubscribe").strip().lower() != "true":
        return None
    sender = _visible([mimeparse.address(msg, "From")])
    return Complaint(tuple(sender), "opt-out", "X-Apple-Unsubscribe: true", "header X-Apple-Unsubscribe", ())


def parse_complaint(msg: Message) -> Complaint | None:
    """The complaint a message reports, or None if it is not one."""
    try:
        return parse_arf(msg) or parse_json_complaint(msg) or parse_unsubscribe_mail(msg)
    except Exception:  # a damaged report is better left unread than fatal
        return None
