"""Relay and reply watcher together, against a real SMTP upstream and a real IMAP server."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable

import pytest

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import RelayThread, wait_until
from tests.imap_server import ImapServer
from tests.journey import QUOTED_FOOTER, imap_settings, outgoing, reply, send, suppressed


@pytest.fixture
def relay_and_watcher(relay_to: Callable[..., RelayThread], mailbox: ImapServer) -> RelayThread:
    return relay_to(
        imap=imap_settings(mailbox),
        watcher={"flag_keyword": "$OptOut"},
    )


def test_nein_danke_suppresses_sender_and_original_recipient(relay_and_watcher, mailbox, upstream):
    relay = relay_and_watcher
    assert send(relay, ["kontakt@firma.de"], outgoing("offer-1@nordlicht.example", "kontakt@firma.de")) == {}
    started = time.monotonic()
    mailbox.append(
        reply("Assistenz <assistenz@firma.de>", "offer-1@nordlicht.example", "Nein danke.\r\n" + QUOTED_FOOTER)
    )
    assert wait_until(lambda: suppressed(relay, "kontakt@firma.de") and suppressed(relay, "assistenz@firma.de"))
    assert time.monotonic() - started < 10
    with pytest.raises(smtplib.SMTPDataError) as refused:  # the only recipient: 550 at the end of DATA
        send(relay, ["kontakt@firma.de"], outgoing("offer-2@nordlicht.example", "kontakt@firma.de"))
    code, text = refused.value.smtp_code, refused.value.smtp_error
    assert code == 550 and b'reply "No thanks"' in text
    assert wait_until(lambda: any("$OptOut" in flags for flags in mailbox.flags().values()))


def test_positive_reply_and_out_of_office_quoting_footer_suppress_no_one(relay_and_watcher, mailbox, upstream):
    relay = relay_and_watcher
    send(relay, ["kontakt@firma.de"], outgoing("offer-3@nordlicht.example", "kontakt@firma.de"))
    mailbox.append(
        reply(
            "kontakt@firma.de",
            "offer-3@nordlicht.example",
            "Klingt gut, rufen Sie mich Dienstag an.\r\n" + QUOTED_FOOTER,
        )
    )
    mailbox.append(
        reply(
            "kontakt@firma.de",
            "offer-3@nordlicht.example",
            "Ich bin bis 30.11. nicht im Haus.\r\n" + QUOTED_FOOTER,
            subject="Abwesenheitsnotiz: Routenplanung",
            extra="Auto-Submitted: auto-replied\r\n",
        )
    )
    assert relay.service is not None and relay.service.watcher is not None
    watcher = relay.service.watcher
    assert wait_until(lambda: watcher.status().messages_handled >= 2)
    assert not suppressed(relay, "kontakt@firma.de")
    assert send(relay, ["kontakt@firma.de"], outgoing("offer-4@nordlicht.example", "kontakt@firma.de")) == {}


def test_hard_bounce_suppresses_with_reason_bounce(relay_and_watcher, mailbox, tmp_path, capsys):
    relay = relay_and_watcher
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.firma.de>\r\nTo: anna@nordlicht.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.firma.de>\r\n"
        b"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\n"
        b"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.firma.de\r\n\r\n"
        b"Final-Recipient: rfc822; alt@firma.de\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: anna@nordlicht.example\r\nTo: alt@firma.de\r\n"
        b"Subject: Routenplanung\r\n\r\n--B--\r\n"
    )
    mailbox.append(bounce)
    assert wait_until(lambda: suppressed(relay, "alt@firma.de"))
    assert gdpr_proxy(["-c", str(tmp_path / "config.yaml"), "suppress", "list"]) == 0
    listing = capsys.readouterr().out
    assert "bounce" in listing and "alt@firma.de" in listing


def test_opt_out_confirmation_is_sent_once_in_the_repliers_language(relay_to, mailbox, upstream):
    relay = relay_to(
        imap=imap_settings(mailbox),
        watcher={"confirm_opt_out": True},
    )
    send(relay, ["kontakt@firma.de"], outgoing("offer-9@nordlicht.example", "kontakt@firma.de"))
    mailbox.append(reply("kontakt@firma.de", "offer-9@nordlicht.example", "Nein danke.\r\n" + QUOTED_FOOTER))
    assert wait_until(
        lambda: any(r.rcpt_tos == ["kontakt@firma.de"] and b"Auto-Submitted" in r.data for r in upstream.received)
    )
    note = next(r for r in upstream.received if b"Auto-Submitted: auto-replied" in r.data)
    assert note.mail_from == "optout@nordlicht.example"
    text = note.data.decode()
    assert "Verteiler entfernt" in text and "In-Reply-To: <reply-" in text
    mailbox.append(reply("kontakt@firma.de", "offer-9@nordlicht.example", "STOP\r\n"))
    time.sleep(2.5)
    assert sum(b"Auto-Submitted: auto-replied" in r.data for r in upstream.received) == 1


def test_reply_suppresses_only_original_recipients_at_the_repliers_company(relay_and_watcher, mailbox, upstream):
    """One message to two companies: an assistant at one cannot opt out the other."""
    relay = relay_and_watcher
    raw = outgoing("offer-7@nordlicht.example", "kontakt@firma.de, ceo@startup.io")
    assert send(relay, ["kontakt@firma.de", "vertrieb@sales.firma.de", "ceo@startup.io"], raw) == {}
    mailbox.append(reply("Assistenz <assistenz@firma.de>", "offer-7@nordlicht.example", "Nein danke.\r\n"))
    assert wait_until(lambda: suppressed(relay, "assistenz@firma.de"))
    assert suppressed(relay, "kontakt@firma.de") and suppressed(relay, "vertrieb@sales.firma.de")
    assert not suppressed(relay, "ceo@startup.io")
