"""Deciding uncertain replies from the mail client: the summary notice, the GDPR folders and the flag."""

from __future__ import annotations

import email
import imaplib
import time
from email import policy

from tests.harness import upstream_settings, wait_until
from tests.journey import imap_settings, reply

WORDS = "No thanks needed for the brochure, call me on Tuesday"


def pending(relay, address: str, message_id: str) -> int:
    store = relay.service.store
    verdict_id = relay.call(store.record_verdict(address, message_id, "uncertain", WORDS, "body", "en", "pending"))
    relay.call(store.add_suppression("address", address, "review", "watcher", WORDS))
    return int(verdict_id)


def status_of(relay, verdict_id: int) -> str:
    rows = relay.call(relay.service.store.verdicts())
    return next(r["status"] for r in rows if r["id"] == verdict_id)


def suppressed(relay, address: str) -> bool:
    return relay.call(relay.service.store.find_suppression(address)) is not None


def test_summary_then_move_and_flag_decide(tmp_path, upstream, start_relay, mailbox):
    relay = start_relay({**upstream_settings(upstream.port), "imap": imap_settings(mailbox)})
    moved = pending(relay, "piotr@klient.example", "<reply-piotr@klient.example>")
    flagged = pending(relay, "jan@kunde.example", "<reply-jan@kunde.example>")
    # The daily summary lands in the INBOX, naming both replies with the person's words.
    assert wait_until(lambda: any(b"X-GDPR-Proxy-Review" in m for m in inbox(mailbox)), 20)
    summary = next(m for m in inbox(mailbox) if b"X-GDPR-Proxy-Review" in m)
    parsed = email.message_from_bytes(summary, policy=policy.default)
    text = parsed.get_content()  # type: ignore[attr-defined]
    assert "piotr@klient.example" in text and "jan@kunde.example" in text and WORDS in text
    assert "GDPR/Opt-out" in text and "GDPR/Not an opt-out" in text
    # The relay made the folders; the user moves one reply there, and flags the other.
    assert wait_until(lambda: folder_exists(mailbox, "GDPR/Not an opt-out"), 20)
    mailbox.append(reply("piotr@klient.example", "x@nordlicht.example", WORDS).replace(
        b"Message-ID: <reply-", b"Message-ID: <reply-piotr@klient.example>\r\nX-Old-Id: <reply-", 1
    ), folder="GDPR/Not an opt-out")
    with mailbox.client() as imap:
        message = reply("jan@kunde.example", "x@nordlicht.example", WORDS).replace(
            b"Message-ID: <reply-", b"Message-ID: <reply-jan@kunde.example>\r\nX-Old-Id: <reply-", 1
        )
        typ, _ = imap.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(time.time()), message)
        assert typ == "OK"
    assert wait_until(lambda: status_of(relay, moved) == "dismissed" and status_of(relay, flagged) == "confirmed", 20)
    assert not suppressed(relay, "piotr@klient.example")  # not an opt-out: may be written to again
    assert suppressed(relay, "jan@kunde.example")


def inbox(mailbox) -> list[bytes]:
    with mailbox.client() as imap:
        imap.select("INBOX", readonly=True)
        _typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
    return [part[1] for part in data if isinstance(part, tuple)]


def folder_exists(mailbox, name: str) -> bool:
    with mailbox.client() as imap:
        typ, _ = imap.select(f'"{name}"', readonly=True)
    return typ == "OK"
