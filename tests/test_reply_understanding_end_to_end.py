"""The running watcher against a real IMAP server: requests in people's own words suppress within 5 s."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import RelayThread, wait_until
from tests.imap_server import ImapServer
from tests.journey import QUOTED_FOOTER, imap_settings, outgoing, reply, send, suppressed

POLITE_GERMAN = (
    "Sehr geehrte Frau Nowak,\r\n\r\n"
    "vielen Dank für Ihre ausführliche Nachricht und die Unterlagen. Wir haben uns intern für eine andere "
    "Lösung entschieden und werden das Thema nicht weiter verfolgen. Ich möchte Sie deshalb bitten, mich "
    "künftig nicht mehr anzuschreiben.\r\n\r\n"
    "Mit freundlichen Grüßen\r\n\r\nThomas Berger\r\nLeiter Einkauf\r\nBerger Logistik GmbH\r\n"
    "Hafenstraße 12, 20457 Hamburg\r\nTel. +49 40 1234567\r\n\r\n"
    "Geschäftsführer: Jan Berger | Amtsgericht Hamburg HRB 99999\r\n"
    "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, "
    "informieren Sie bitte sofort den Absender und löschen Sie diese E-Mail.\r\n"
)
HUNGARIAN = "Kérem, töröljenek a listájukról.\r\n"
FRENCH_ERASURE = (
    "Bonjour,\r\n\r\nconformément à l'article 17 du RGPD, je vous demande d'effacer toutes les données "
    "me concernant et de m'en confirmer la suppression.\r\n\r\nCordialement,\r\nLucie Moreau\r\n"
)
ASSISTANT = (
    "Guten Tag,\r\n\r\nich schreibe im Auftrag von Frau Weber. Sie bittet darum, ihre Adresse aus Ihrem "
    "Verteiler zu nehmen.\r\n\r\nFreundliche Grüße\r\nSekretariat der Geschäftsführung\r\n"
)
POSITIVE = "Das klingt interessant, schicken Sie mir bitte die Preise.\r\n"


@pytest.fixture
def relay_and_watcher(relay_to: Callable[..., RelayThread], mailbox: ImapServer) -> RelayThread:
    return relay_to(imap=imap_settings(mailbox))


def _suppressed_within(relay: RelayThread, address: str, seconds: float) -> float:
    started = time.monotonic()
    assert wait_until(lambda: suppressed(relay, address), timeout=seconds), f"{address} not suppressed"
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("sender", "recipient", "body"),
    [
        ("Thomas Berger <t.berger@berger-logistik.de>", "t.berger@berger-logistik.de", POLITE_GERMAN),
        ("Kovács Anna <anna.kovacs@ceg.hu>", "anna.kovacs@ceg.hu", HUNGARIAN),
        ("Lucie Moreau <lucie.moreau@atelier.fr>", "lucie.moreau@atelier.fr", FRENCH_ERASURE),
        # An assistant answers for the person we wrote to: that person is the one suppressed.
        ("Sekretariat <sekretariat@weber-bau.de>", "c.weber@weber-bau.de", ASSISTANT),
    ],
    ids=["polite-german-with-signature-and-disclaimer", "hungarian-one-liner", "french-gdpr-erasure", "assistant"],
)
def test_request_in_own_words_suppresses_within_five_seconds(
    relay_and_watcher: RelayThread, mailbox: ImapServer, sender: str, recipient: str, body: str
) -> None:
    relay = relay_and_watcher
    assert send(relay, [recipient], outgoing("offer-e2e@nordlicht.example", recipient)) == {}
    mailbox.append(reply(sender, "offer-e2e@nordlicht.example", body + QUOTED_FOOTER))
    assert _suppressed_within(relay, recipient, 5.0) < 5.0


def test_positive_reply_quoting_the_footer_is_left_alone(relay_and_watcher: RelayThread, mailbox: ImapServer) -> None:
    relay = relay_and_watcher
    send(relay, ["kontakt@firma.de"], outgoing("offer-pos@nordlicht.example", "kontakt@firma.de"))
    mailbox.append(reply("kontakt@firma.de", "offer-pos@nordlicht.example", POSITIVE + QUOTED_FOOTER))
    # A request to another message, appended after it, marks that the positive reply was handled.
    send(relay, ["anna.kovacs@ceg.hu"], outgoing("offer-marker@nordlicht.example", "anna.kovacs@ceg.hu"))
    mailbox.append(reply("Kovács Anna <anna.kovacs@ceg.hu>", "offer-marker@nordlicht.example", HUNGARIAN))
    assert wait_until(lambda: suppressed(relay, "anna.kovacs@ceg.hu"), timeout=10)
    assert not suppressed(relay, "kontakt@firma.de")


def test_a_user_file_with_one_added_phrase_keeps_every_shipped_language(
    relay_to: Callable[..., RelayThread], mailbox: ImapServer, tmp_path: Path
) -> None:
    mine = tmp_path / "user-rules" / "replies"
    mine.mkdir(parents=True)
    (mine / "de.yaml").write_text("add:\n  request: [schluss mit den mails]\n", encoding="utf-8")
    relay = relay_to(imap=imap_settings(mailbox))
    for n, address in enumerate(("a@firma.de", "b@firma.de", "anna.kovacs@ceg.hu")):
        send(relay, [address], outgoing(f"offer-user-{n}@nordlicht.example", address))
    # The added phrase alone is no request to the shipped lists (tests/test_reply_rules.py checks that).
    mailbox.append(reply("a@firma.de", "offer-user-0@nordlicht.example", "Schluss mit den Mails!\r\n"))
    mailbox.append(reply("b@firma.de", "offer-user-1@nordlicht.example", "Nein danke.\r\n"))
    mailbox.append(reply("Kovács Anna <anna.kovacs@ceg.hu>", "offer-user-2@nordlicht.example", HUNGARIAN))
    for address in ("a@firma.de", "anna.kovacs@ceg.hu", "b@firma.de"):
        assert wait_until(lambda address=address: suppressed(relay, address), timeout=10), address
