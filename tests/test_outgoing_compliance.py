"""Footers, tracker removal and per-recipient versions through the running relay."""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib
from email.message import EmailMessage

from tests.harness import RelayThread
from tests.upstream import Received

LOGO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
MAILTRACK = "https://mailtrack.io/trace/mail/8a5b2c1d0e4f.png?u=1234567"
HUBSPOT = "https://track.hubspot.com/__ptq.gif?a=2418&k=14&r=https%3A%2F%2Fnordlicht.example"


def thunderbird_message() -> bytes:
    """multipart/mixed(related(alternative(plain flowed, html), logo), pdf), as Thunderbird sends."""
    msg = EmailMessage()
    msg["From"] = "Anna Nowak <anna@nordlicht.example>"
    msg["To"] = "kontakt@firma.de, ceo@startup.io"
    msg["Subject"] = "Routenplanung"
    msg["Message-ID"] = "<tb-1@nordlicht.example>"
    msg["Disposition-Notification-To"] = "anna@nordlicht.example"
    msg.set_content("Guten Tag,\n\nkurz zu unserer Routenplanung.\n\nAnna\n")
    html = (
        "<html><body><p>Guten Tag,</p><p>kurz zu unserer Routenplanung.</p>"
        '<img src="cid:logo@nordlicht.example" width="120" height="40" alt="Nordlicht">'
        f'<img src="{MAILTRACK}" width="0" height="0" style="display:none">'
        f'<img src="{HUBSPOT.replace("&", "&amp;")}" width="1" height="1" alt="">'
        "</body></html>\n"
    )
    msg.add_alternative(html, subtype="html")
    msg.get_payload()[1].add_related(LOGO, "image", "png", cid="<logo@nordlicht.example>", filename="logo.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Angebot.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def send(relay: RelayThread, rcpts: list[str], raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        assert client.sendmail("anna@nordlicht.example", rcpts, raw) == {}


def bodies(data: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    found = {}
    for part in parsed.walk():
        if part.get_content_type() in ("text/plain", "text/html") and not part.get_filename():
            found[part.get_content_type()] = " ".join(part.get_content().split())  # lines are wrapped
    return found


def attachment_bytes(data: bytes) -> dict[str, bytes]:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    return {
        part.get_content_type(): part.get_payload(decode=True)
        for part in parsed.walk()
        if part.get_content_maintype() in ("image", "application")
    }


def for_rcpt(received: list[Received], rcpt: str) -> Received:
    matching = [r for r in received if rcpt in r.rcpt_tos]
    assert len(matching) == 1, [r.rcpt_tos for r in received]
    return matching[0]


def grant_tracking_consent(relay: RelayThread, address: str) -> None:
    assert relay.service is not None
    store = relay.service.store
    relay.call(
        store._write(
            "INSERT INTO contacts (address, tracking_consent, created_at, updated_at) "
            "VALUES (?, 'granted', '2026-01-01', '2026-01-01')",
            (address,),
        )
    )


def test_german_first_contact_and_consented_recipient_in_one_transaction(upstream, relay_to):
    relay = relay_to()
    grant_tracking_consent(relay, "ceo@startup.io")
    send(relay, ["kontakt@firma.de", "ceo@startup.io"], thunderbird_message())

    german = for_rcpt(upstream.received, "kontakt@firma.de")
    assert german.rcpt_tos == ["kontakt@firma.de"]
    texts = bodies(german.data)
    for kind in ("text/plain", "text/html"):
        assert "Nordlicht Software GmbH" in texts[kind]
        assert "Nein danke" in texts[kind]
        assert "berechtigtes Interesse" in texts[kind], "German full disclosure expected"
    assert MAILTRACK not in texts["text/html"] and "track.hubspot.com" not in texts["text/html"]
    assert "cid:logo@nordlicht.example" in texts["text/html"]
    assert attachment_bytes(german.data) == {"image/png": LOGO, "application/pdf": PDF}
    assert b"Disposition-Notification-To" not in german.data
    assert b"List-Unsubscribe: <mailto:optout@nordlicht.example?subject=unsubscribe>" in german.data
    # To and Cc unchanged in every version
    assert b"To: kontakt@firma.de, ceo@startup.io" in german.data

    consented = for_rcpt(upstream.received, "ceo@startup.io")
    html = bodies(consented.data)["text/html"]
    assert MAILTRACK in html and "track.hubspot.com" in html
    assert "Legitimate interest" in bodies(consented.data)["text/plain"] or "legitimate interest" in html
    assert b"Disposition-Notification-To" in consented.data


def test_second_message_gets_follow_up_footer(upstream, relay_to):
    relay = relay_to()
    send(relay, ["kontakt@firma.de"], thunderbird_message())
    send(relay, ["kontakt@firma.de"], thunderbird_message().replace(b"tb-1@", b"tb-2@"))
    first, second = (bodies(r.data)["text/plain"] for r in upstream.received)
    assert "berechtigtes Interesse" in first
    assert "berechtigtes Interesse" not in second
    assert "Kein Interesse?" in second and "Nein danke" in second


def test_first_contact_recorded_only_after_upstream_accepted(upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.data_reply = "451 4.3.0 try later"
    try:
        send(relay, ["kontakt@firma.de"], thunderbird_message())
    except smtplib.SMTPDataError as failure:
        assert failure.smtp_code == 451
    upstream.behaviour.data_reply = None
    send(relay, ["kontakt@firma.de"], thunderbird_message())
    assert "berechtigtes Interesse" in bodies(upstream.received[-1].data)["text/plain"]


def test_signed_message_is_sent_byte_identical(upstream, relay_to):
    relay = relay_to()
    signed = (
        b"From: anna@nordlicht.example\r\nTo: kontakt@firma.de\r\nSubject: signed\r\n"
        b"Message-ID: <signed-1@nordlicht.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
        b'boundary="sig"\r\n\r\n--sig\r\nContent-Type: text/plain\r\n\r\nHallo\r\n--sig\r\n'
        b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAA==\r\n--sig--\r\n"
    )
    send(relay, ["kontakt@firma.de"], signed)
    assert upstream.received[0].data == signed


def test_signed_message_refused_by_policy(tmp_path, upstream, relay_to):
    rules = tmp_path / "user-rules"
    rules.mkdir()
    (rules / "policies.yaml").write_text("signed_messages: refuse\n")
    relay = relay_to()
    signed = (
        b"From: anna@nordlicht.example\r\nTo: kontakt@firma.de\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n\r\nMIAG\r\n'
    )
    try:
        send(relay, ["kontakt@firma.de"], signed)
        raise AssertionError("expected a refusal")
    except smtplib.SMTPDataError as failure:
        assert failure.smtp_code == 554
        assert b"Signed or encrypted message refused by policy" in failure.smtp_error
    assert upstream.received == []


def test_preview_shows_exactly_what_the_relay_sends(tmp_path, upstream, relay_to, capsysbinary):
    from proxy.cli.commands import main as gdpr_proxy

    relay = relay_to()
    raw = thunderbird_message()
    eml = tmp_path / "message.eml"
    eml.write_bytes(raw)
    config = str(tmp_path / "config.yaml")
    args = ["-c", config, "preview", "--to", "kontakt@firma.de", "--from", "anna@nordlicht.example", str(eml)]
    assert gdpr_proxy(args) == 0
    previewed = capsysbinary.readouterr()
    summary = previewed.err.decode()
    assert "footer added: de first_contact in 2 body part(s)" in summary
    assert f"tracker removed: {MAILTRACK} (Mailtrack)" in summary
    assert "header removed: disposition-notification-to" in summary.lower()
    send(relay, ["kontakt@firma.de"], raw)
    assert previewed.out == upstream.received[0].data


def test_rules_explain_says_why(tmp_path, relay_to, capsys):
    from proxy.cli.commands import main as gdpr_proxy

    relay = relay_to()
    grant_tracking_consent(relay, "ceo@startup.io")
    assert gdpr_proxy(["-c", str(tmp_path / "config.yaml"), "rules", "explain", "CEO@startup.io"]) == 0
    out = capsys.readouterr().out
    assert "suppressed: no" in out
    assert "tracking consent: granted" in out
    assert "trackers stripped: no" in out
    assert "footer: first_contact, language en (from configured default)" in out


def test_own_unsubscribe_page_is_a_plain_link_not_one_click(upstream, relay_to):
    from tests.harness import upstream_settings

    settings = upstream_settings(upstream.port)
    settings["sender"]["unsubscribe_url"] = "https://nordlicht.example/unsubscribe?c=42"
    relay = relay_to(sender=settings["sender"])
    send(relay, ["kontakt@firma.de"], thunderbird_message())
    data = upstream.received[0].data
    assert (
        b"List-Unsubscribe: <mailto:optout@nordlicht.example?subject=unsubscribe>, "
        b"<https://nordlicht.example/unsubscribe?c=42>\r\n" in data
    )
    # one address for everybody cannot say who unsubscribes: never announced as one-click
    assert b"List-Unsubscribe-Post" not in data


def test_existing_list_unsubscribe_is_not_doubled(upstream, relay_to):
    relay = relay_to()
    raw = thunderbird_message().replace(b"Subject:", b"List-Unsubscribe: <https://tool.example/u/1>\r\nSubject:", 1)
    send(relay, ["kontakt@firma.de"], raw)
    assert upstream.received[0].data.count(b"List-Unsubscribe:") == 1
