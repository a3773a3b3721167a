"""Delivery status notifications (RFC 3464) for copies that finally could not be delivered."""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
from email.message import EmailMessage

from .headers import header_block_end


def bounce_message(
    to: str, original: bytes, failures: dict[str, tuple[int, str]], hostname: str | None = None
) -> bytes:
    host = hostname or socket.getfqdn()
    report = EmailMessage()
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{host}>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    report["Message-ID"] = email.utils.make_msgid(domain=host)
    report["Auto-Submitted"] = "auto-replied"
    lines = [
        "Your message could not be delivered to these recipients by the gdpr-mail-proxy relay.",
        "The other recipients of the message did receive it.",
        "",
    ]
    lines += [f"<{rcpt}>: {code} {text}" for rcpt, (code, text) in failures.items()]
    report.set_content("\n".join(lines) + "\n")
    status = EmailMessage()
    fields = [f"Reporting-MTA: dns; {host}", ""]
    for rcpt, (code, text) in failures.items():
        action = "failed" if code >= 500 else "delayed"
        fields += [
            f"Final-Recipient: rfc822; {rcpt}",
            f"Action: {action}",
            f"Status: {code // 100}.0.0",
            f"Diagnostic-Code: smtp; {code} {' '.join(text.split())}",
            "",
        ]
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    status["Content-Type"] = "message/delivery-status"
    status.set_payload("\r\n".join(fields))
    report.attach(status)
    headers = EmailMessage()
    headers["Content-Type"] = "text/rfc822-headers"
    headers.set_payload(original[: header_block_end(original)].decode("utf-8", "replace") + "\r\n")
    report.attach(headers)
    return report.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
