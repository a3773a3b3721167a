"""Delivery status notifications (RFC 3464) for copies that finally could not be delivered.

Built as plain text: the structure is fixed and small, and every value is made safe for a
header line first.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
import uuid

from proxy.relay.headers import header_block_end, safe_header_value


def bounce_message(
    to: str, original: bytes, failures: dict[str, tuple[int, str]], hostname: str | None = None
) -> bytes:
    host = hostname or socket.getfqdn()
    boundary = f"dsn-{uuid.uuid4().hex}"
    explanation = [
        "Your message could not be delivered to these recipients by the gdpr-mail-proxy relay.",
        "The other recipients of the message did receive it.",
        "",
    ] + [f"<{rcpt}>: {code} {safe_header_value(text)}" for rcpt, (code, text) in failures.items()]
    status = [f"Reporting-MTA: dns; {host}", ""]
    for rcpt, (code, text) in failures.items():
        status += [
            f"Final-Recipient: rfc822; {safe_header_value(rcpt)}",
            f"Action: {'failed' if code >= 500 else 'delayed'}",
            f"Status: {code // 100}.0.0",
            f"Diagnostic-Code: smtp; {code} {safe_header_value(text)}",
            "",
        ]
    headers = original[: header_block_end(original)].decode("utf-8", "replace")
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{host}>",
        f"To: {safe_header_value(to)}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {email.utils.format_datetime(dt.datetime.now(dt.UTC))}",
        f"Message-ID: {email.utils.make_msgid(domain=host)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        *explanation,
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status,
        f"--{boundary}",
        "Content-Type: text/rfc822-headers; charset=utf-8",
        "",
        headers.replace("\r\n", "\n"),
        f"--{boundary}--",
        "",
    ]
    return "\n".join(lines).replace("\n", "\r\n").encode("utf-8")
