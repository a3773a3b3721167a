"""Who gets which footer, in which language, and when first contact counts: through the running relay."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
from email.message import EmailMessage

from tests.harness import RelayThread, wait_until
from tests.test_footers import SHARED, english_words, words_of
from tests.upstream import Received

FROM = "anna@nordlicht.example"
SENDER_VALUES = {
    "sender_name": "Anna Nowak",
    "company": "Nordlicht Software GmbH",
    "privacy_policy_url": "https://nordlicht.example/privacy",
    "opt_out_address": "optout@nordlicht.example",
}
SIGNED = (
    b"From: anna@nordlicht.example\r\nTo: kontakt@firma.de\r\nSubject: signiert\r\n"
    b"Message-ID: <signed-1@nordlicht.example>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
    b'boundary="sig"\r\n\r\n--sig\r\nContent-Type: text/plain\r\n\r\nHallo\r\n--sig\r\n'
    b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAA==\r\n--sig--\r\n"
)


def message(to: str, mid: str, greeting: str = "Dzień dobry") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Anna Nowak <{FROM}>"
    msg["To"] = to
    msg["Subject"] = "Nordlicht"
    msg["Message-ID"] = f"<{mid}@nordlicht.example>"
    msg.set_content(f"{greeting}\n\nAnna\n")
    msg.add_alternative(f"<html><body><p>{greeting}</p><p>Anna</p></body></html>\n", subtype="html")
    return msg.as_bytes(policy=email.policy.SMTP)


def send(relay: RelayThread, rcpts: list[str], raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        assert client.sendmail(FROM, rcpts, raw) == {}


def copy_for(received: list[Received], rcpt: str) -> bytes:
    matching = [r.data for r in received if rcpt in r.rcpt_tos]
    assert len(matching) == 1, [r.rcpt_tos for r in received]
    return matching[0]


def footer_texts(data: bytes) -> tuple[str, str]:
    """(plain text after the greeting, text of the HTML footer element) of one received copy."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    plain = html = ""
    for part in parsed.walk():
        if part.get_content_type() == "text/plain":
            plain = re.split(r"^Anna\s*$", part.get_content(), maxsplit=1, flags=re.M)[-1]
        elif part.get_content_type() == "text/html":
            found = re.search(r'<div class="gdpr-mail-proxy-footer".*?</div>', part.get_content(), re.S)
            html = re.sub(r"<[^>]+>", " ", found.group(0)) if found else ""
    return " ".join(plain.split()), " ".join(html.split())


def contact(relay: RelayThread, address: str) -> dict | None:
    assert relay.service is not None
    return relay.call(relay.service.store.contact(address))


def set_contact(relay: RelayThread, address: str, **fields: str) -> None:
    assert relay.service is not None
    relay.call(relay.service.store.upsert_contacts([{"address": address, **fields}], "test"))


def test_prospects_without_a_recorded_source_get_footers_wholly_in_their_language(upstream, relay_to):
    relay = relay_to()
    english = english_words()
    people = {"fr": "contact@societe.fr", "de": "kontakt@firma.de", "pl": "biuro@firma.pl"}
    for language, address in people.items():
        send(relay, [address], message(address, f"first-{language}"))
    for language, address in people.items():
        plain, html = footer_texts(copy_for(upstream.received, address))
        assert plain and html, "the footer was added to both parts"
        for text in (plain, html):
            found = (words_of(text, SENDER_VALUES) & english) - SHARED[language]
            assert found == set(), f"English in the {language} footer: {sorted(found)}: {text}"
    plain_de, _ = footer_texts(copy_for(upstream.received, "kontakt@firma.de"))
    assert "Quelle: nicht erfasst" in plain_de  # said plainly, no source invented
    assert "Źródło Państwa służbowego adresu e-mail: nie została odnotowana" in footer_texts(
        copy_for(upstream.received, "biuro@firma.pl")
    )[0]


def test_a_recorded_source_is_named_in_the_persons_words(upstream, relay_to):
    relay = relay_to()
    set_contact(relay, "kontakt@firma.de", source="trade_fair", source_detail="LogiMAT 2026", role="Leiter Einkauf")
    send(relay, ["kontakt@firma.de"], message("kontakt@firma.de", "fair", "Guten Tag"))
    plain, _ = footer_texts(upstream.received[0].data)
    assert "Quelle: eine Messe oder Veranstaltung (LogiMAT 2026)." in plain
    assert "(Leiter Einkauf)" in plain


def test_signed_first_mail_then_unsigned_one_gives_the_full_notice_the_second_time(upstream, relay_to):
    relay = relay_to()
    send(relay, ["kontakt@firma.de"], SIGNED)
    assert upstream.received[0].data == SIGNED  # sent unchanged: no notice in it
    record = contact(relay, "kontakt@firma.de")
    assert record is not None and record["last_contact_at"] and not record["first_contact_at"]
    send(relay, ["kontakt@firma.de"], message("kontakt@firma.de", "second", "Guten Tag"))
    plain, _ = footer_texts(upstream.received[1].data)
    assert "berechtigtes Interesse" in plain and "Quelle:" in plain, "the full notice, not the follow-up"
    assert (contact(relay, "kontakt@firma.de") or {}).get("first_contact_at")
    send(relay, ["kontakt@firma.de"], message("kontakt@firma.de", "third", "Guten Tag"))
    assert "Kein Interesse?" in footer_texts(upstream.received[2].data)[0]


def test_a_queued_signed_copy_is_no_first_contact_a_queued_full_notice_is(upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies["kontakt@firma.de"] = "451 4.3.0 try later"
    upstream.behaviour.rcpt_replies["info@firma.at"] = "451 4.3.0 try later"
    send(relay, ["kontakt@firma.de"], SIGNED)
    send(relay, ["info@firma.at"], message("info@firma.at", "queued", "Guten Tag"))
    assert len(relay.spool_entries) == 2
    upstream.behaviour.rcpt_replies = {}
    assert wait_until(lambda: len(upstream.received) == 2 and not relay.spool_entries)
    assert wait_until(lambda: bool((contact(relay, "info@firma.at") or {}).get("first_contact_at")))
    signed = contact(relay, "kontakt@firma.de")
    assert signed is not None and signed["last_contact_at"] and not signed["first_contact_at"]


def test_colleagues_at_the_own_domain_get_no_footer_and_are_no_contacts(upstream, relay_to):
    sender = {k: v for k, v in SENDER_VALUES.items() if k != "sender_name"}
    relay = relay_to(sender={**sender, "name": "Anna Nowak", "internal_domains": ["nordlicht-labs.example"]})
    colleagues = ["jonas@nordlicht.example", "eva@berlin.nordlicht.example", "tom@nordlicht-labs.example"]
    raw = message(", ".join([*colleagues, "kontakt@firma.de"]), "team", "Hallo")
    send(relay, [*colleagues, "kontakt@firma.de"], raw)
    for address in colleagues:
        plain, html = footer_texts(copy_for(upstream.received, address))
        assert plain == "" and html == "", address
        assert contact(relay, address) is None
    assert "berechtigtes Interesse" in footer_texts(copy_for(upstream.received, "kontakt@firma.de"))[0]


def test_a_freemail_sender_does_not_make_every_freemail_recipient_a_colleague(upstream, relay_to):
    relay = relay_to()
    set_contact(relay, "jan@gmail.com", marketing_consent="granted")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail("anna.nowak@gmail.com", ["jan@gmail.com"], message("jan@gmail.com", "free", "Hello"))
    plain, _ = footer_texts(upstream.received[0].data)
    assert "because you agreed to receive e-mail from us" in plain  # a consumer who consented, not a colleague


def test_customers_and_people_who_wrote_first_get_no_cold_mail_disclosure(upstream, relay_to):
    relay = relay_to()
    set_contact(relay, "einkauf@kunde.de", status="customer")
    set_contact(relay, "anfrage@interessent.de", source="own_enquiry")
    send(relay, ["einkauf@kunde.de", "anfrage@interessent.de"], message("einkauf@kunde.de", "customer", "Hallo"))
    for address in ("einkauf@kunde.de", "anfrage@interessent.de"):
        assert footer_texts(copy_for(upstream.received, address)) == ("", ""), address


def test_customers_get_the_follow_up_footer_when_the_policy_says_so(tmp_path, upstream, relay_to):
    rules = tmp_path / "user-rules"
    rules.mkdir()
    from proxy.rules.ruleset import SHIPPED_RULES

    text = (SHIPPED_RULES / "footers.yaml").read_text().replace("not_prospects: no_footer", "not_prospects: follow_up")
    (rules / "footers.yaml").write_text(text)
    relay = relay_to()
    set_contact(relay, "einkauf@kunde.de", status="customer")
    send(relay, ["einkauf@kunde.de"], message("einkauf@kunde.de", "customer", "Hallo"))
    plain, _ = footer_texts(upstream.received[0].data)
    assert "Kein Interesse?" in plain and "berechtigtes Interesse" not in plain


def test_marketing_consent_gets_the_consent_footer_without_legitimate_interest(upstream, relay_to):
    relay = relay_to()
    set_contact(relay, "kontakt@firma.de", marketing_consent="granted")
    send(relay, ["kontakt@firma.de"], message("kontakt@firma.de", "consent", "Guten Tag"))
    plain, html = footer_texts(upstream.received[0].data)
    assert "weil Sie eingewilligt haben" in plain and "Einwilligung jederzeit widerrufen" in html
    assert "berechtigtes Interesse" not in plain and "lit. f" not in plain


def test_missing_source_refuse_policy_stops_the_message_with_a_reason(tmp_path, upstream, relay_to):
    from proxy.rules.ruleset import SHIPPED_RULES

    rules = tmp_path / "user-rules"
    rules.mkdir()
    text = (SHIPPED_RULES / "footers.yaml").read_text().replace("missing_source: warn", "missing_source: refuse")
    (rules / "footers.yaml").write_text(text)
    relay = relay_to()
    set_contact(relay, "info@firma.at", source="company_website")
    try:
        send(relay, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "refused", "Hallo"))
        raise AssertionError("expected a refusal")
    except smtplib.SMTPDataError as failure:
        assert failure.smtp_code == 550
        assert b"<kontakt@firma.de>: no source recorded" in failure.smtp_error
        assert b"info@firma.at" not in failure.smtp_error
    assert upstream.received == []


def test_a_contacts_file_carries_source_detail_and_status_to_the_footer(tmp_path, upstream, relay_to, capsys):
    from proxy.cli.commands import main as gdpr_proxy

    relay = relay_to()
    config = str(tmp_path / "config.yaml")
    bad = tmp_path / "bad.csv"
    bad.write_text("address;status\nkontakt@firma.de;friend\n")
    assert gdpr_proxy(["-c", config, "contacts", "import", str(bad)]) != 0
    assert "'friend' is not one of prospect, customer, inbound" in capsys.readouterr().err
    good = tmp_path / "contacts.csv"
    good.write_text(
        "address;source;source_detail;status\n"
        "kontakt@firma.de;Messe;LogiMAT 2026;\n"
        "einkauf@kunde.de;;;customer\n"
    )
    assert gdpr_proxy(["-c", config, "contacts", "import", str(good)]) == 0
    send(relay, ["kontakt@firma.de", "einkauf@kunde.de"], message("kontakt@firma.de", "csv", "Guten Tag"))
    plain, _ = footer_texts(copy_for(upstream.received, "kontakt@firma.de"))
    assert "Quelle: eine Messe oder Veranstaltung (LogiMAT 2026)." in plain  # "Messe" is an alias of trade_fair
    assert footer_texts(copy_for(upstream.received, "einkauf@kunde.de")) == ("", "")


async def test_access_answers_speak_the_footers_language_and_words(tmp_path):
    from proxy.config.settings import Config, SenderConfig
    from proxy.rights.subject_rights import export_personal_data
    from proxy.rules.answers import load_answers
    from proxy.store import Store

    config = Config(sender=SenderConfig(name="Anna Nowak", company="Nordlicht Software GmbH"))
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        jan = {"address": "jan@firma.pl", "source": "trade_fair", "source_detail": "Targi"}
        await store.upsert_contacts([jan], "t")
        await store.set_consent("jan@firma.pl", "marketing", "granted", "formularz")
        await store.set_consent("jan@firma.pl", "tracking", "denied", "formularz")
        await store.record_delivery("<m@x>", ["anne@societe.fr"])
        french = await export_personal_data(store, config, load_answers(), "anne@societe.fr")
        polish = await export_personal_data(store, config, load_answers(), "jan@firma.pl")
    finally:
        await store.close()
    assert french["answer"]["language"] == "fr"  # the country domain, as for the footer
    assert "Origine de l'adresse : non enregistrée" in french["answer"]["text"]
    assert polish["answer"]["language"] == "pl"
    text = polish["answer"]["text"]
    assert "Źródło adresu: targi lub wydarzenie branżowe (Targi)" in text
    consent_line = next(line for line in text.splitlines() if line.startswith("- Zapisane decyzje"))
    assert "Zgoda na e-maile marketingowe: udzielona" in consent_line
    assert "Zgoda na śledzenie otwarć: odmówiona" in consent_line
    assert not {"marketing", "tracking", "trade_fair"} & set(re.findall(r"[a-z_]+", consent_line + text))


def test_rules_check_names_a_footer_that_hides_the_source(tmp_path, capsys):
    from proxy.cli.commands import main as gdpr_proxy
    from proxy.rules.ruleset import SHIPPED_RULES
    from tests.harness import write_config

    config = write_config(tmp_path, {})
    rules = tmp_path / "user-rules"
    rules.mkdir()
    text = (SHIPPED_RULES / "footers.yaml").read_text()
    (rules / "footers.yaml").write_text(text.replace("aus folgender Quelle: {source}", "aus öffentlichen Quellen"))
    assert gdpr_proxy(["-c", str(config), "rules", "check"]) != 0
    err = capsys.readouterr().err
    assert "languages.de.first_contact: must say where the address came from: {source} is missing" in err
    (rules / "footers.yaml").write_text(text)
    assert gdpr_proxy(["-c", str(config), "rules", "check"]) == 0
    assert "sources.yaml: OK (shipped)" in capsys.readouterr().out
