"""What the relay-and-watcher tests share: messages a salesperson sends, replies people write."""

from __future__ import annotations

import smtplib

from tests.harness import RelayThread
from tests.imap_server import ImapServer

PASSWORD_ENV = "GDPR_PROXY_TEST_IMAP_PASSWORD"

# Our German footer as a client quotes it under a reply: it must never count as an opt-out.
QUOTED_FOOTER = (
    "\r\n\r\nAm 20.11.2026 um 10:00 schrieb Anna Nowak <anna@nordlicht.example>:\r\n"
    "> Guten Tag, kurz zu unserer Routenplanung.\r\n> -- \r\n"
    "> Sie k\xf6nnen dem jederzeit widersprechen: Antworten Sie einfach mit \u201eNein danke\u201c oder STOP.\r\n"
)


def imap_settings(mailbox: ImapServer) -> dict[str, object]:
    """The `imap:` section for a relay whose watcher follows ``mailbox`` (polls every second)."""
    return {
        "host": "127.0.0.1",
        "port": mailbox.port,
        "security": "none",
        "username": mailbox.user,
        "password_env": PASSWORD_ENV,
        "poll_seconds": 1,
    }


def outgoing(message_id: str, to: str) -> bytes:
    return (
        f"From: Anna Nowak <anna@nordlicht.example>\r\nTo: {to}\r\nSubject: Routenplanung\r\n"
        f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Guten Tag, kurz zu unserer Routenplanung.\r\n"
    ).encode()


def reply(sender: str, in_reply_to: str, body: str, subject: str = "AW: Routenplanung", extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: anna@nordlicht.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <reply-{abs(hash(body))}@firma.de>\r\nIn-Reply-To: <{in_reply_to}>\r\n"
        f"References: <{in_reply_to}>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode()


def send(relay: RelayThread, rcpts: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        return client.sendmail("anna@nordlicht.example", rcpts, raw)


def suppressed(relay: RelayThread, address: str) -> bool:
    assert relay.service is not None
    return relay.call(relay.service.store.find_suppression(address)) is not None
