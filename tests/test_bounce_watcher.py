"""Bounces and complaints through the running watcher against a real IMAP server and a real relay."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from proxy.cli.service import format_status
from proxy.service.status import service_status
from tests.bounce_messages import arf_complaint, exim_text, postfix_dsn
from tests.harness import RelayThread, wait_until
from tests.imap_server import ImapServer
from tests.journey import imap_settings, outgoing, send


@pytest.fixture
def relay(relay_to: Callable[..., RelayThread], mailbox: ImapServer) -> RelayThread:
    return relay_to(imap=imap_settings(mailbox))


def entry(relay: RelayThread, address: str):  # type: ignore[no-untyped-def]
    assert relay.service is not None
    return relay.call(relay.service.store.find_suppression(address))


def handled(relay: RelayThread) -> int:
    assert relay.service is not None and relay.service.watcher is not None
    return relay.service.watcher.status().messages_handled


def test_user_unknown_suppresses_the_address_we_wrote_to(relay, mailbox, upstream):
    send(relay, ["kontakt@firma.de"], outgoing("offer-1@nordlicht.example", "kontakt@firma.de"))
    # Forwarded on the way: Final-Recipient is another address, Original-Recipient the one we wrote to
    mailbox.append(
        postfix_dsn(
            "k.weber@intern.firma.de",
            "5.1.1",
            "550 5.1.1 <k.weber@intern.firma.de>: Recipient address rejected: User unknown",
            "offer-1@nordlicht.example",
            original_recipient="kontakt@firma.de",
        )
    )
    assert wait_until(lambda: entry(relay, "kontakt@firma.de") is not None)
    found = entry(relay, "kontakt@firma.de")
    assert found.reason == "bounce" and "5.1.1" in (found.note or "")
    assert entry(relay, "k.weber@intern.firma.de") is None


def test_mailbox_full_counts_and_the_third_suspends(relay, mailbox, upstream):
    for i in range(3):
        send(relay, ["voll@firma.de"], outgoing(f"offer-full-{i}@nordlicht.example", "voll@firma.de"))
        mailbox.append(
            exim_text(
                "voll@firma.de",
                "552 5.2.2 <voll@firma.de>: mailbox full, quota exceeded",
                f"offer-full-{i}@nordlicht.example",
                bounce_id=f"exim-full-{i}@mx.seller.example",
            )
        )
        assert wait_until(lambda n=i: handled(relay) >= n + 1)
        if i < 2:
            assert entry(relay, "voll@firma.de") is None, f"suppressed after {i + 1} full-mailbox bounce(s)"
    found = entry(relay, "voll@firma.de")
    assert found is not None and found.reason == "suspended"
    assert relay.service is not None
    end = relay.call(relay.service.store.suspension_end("voll@firma.de"))
    assert end is not None and end > found.created_at  # lifts by itself, 30 days on


def test_dmarc_rejection_suppresses_nobody_and_warns_in_status(relay, mailbox, upstream):
    send(relay, ["kunde@gmail.example"], outgoing("offer-dmarc@nordlicht.example", "kunde@gmail.example"))
    mailbox.append(
        postfix_dsn(
            "kunde@gmail.example",
            "5.7.26",
            "550-5.7.26 Unauthenticated email from nordlicht.example is not accepted due to domain's DMARC policy.",
            "offer-dmarc@nordlicht.example",
        )
    )
    assert wait_until(lambda: handled(relay) >= 1)
    assert entry(relay, "kunde@gmail.example") is None
    assert relay.service is not None
    status = relay.call(service_status(relay.service))
    warnings = status["bounces"]["sender_side"]
    assert [w["reason"] for w in warnings] == ["dmarc"]
    shown = format_status(status)
    assert "YOUR SET-UP" in shown and "DMARC" in shown and "gmail.example" in shown


def test_arf_complaint_suppresses_the_complainer(relay, mailbox, upstream):
    send(relay, ["kontakt@firma.de"], outgoing("offer-fbl@nordlicht.example", "kontakt@firma.de"))
    mailbox.append(arf_complaint("kontakt@firma.de", "offer-fbl@nordlicht.example"))
    assert wait_until(lambda: entry(relay, "kontakt@firma.de") is not None)
    assert entry(relay, "kontakt@firma.de").reason == "complaint"


def test_complaint_with_the_address_hidden_finds_it_through_the_relayed_message(relay, mailbox, upstream):
    send(relay, ["geheim@firma.de"], outgoing("offer-hidden@nordlicht.example", "geheim@firma.de"))
    mailbox.append(arf_complaint("geheim@firma.de", "offer-hidden@nordlicht.example", in_report=False))
    assert wait_until(lambda: entry(relay, "geheim@firma.de") is not None)
    assert entry(relay, "geheim@firma.de").reason == "complaint"
