"""What desktop clients need, over real sockets: refused recipients never stop the others, an
unreachable upstream never loses a mail, and the sender learns everything in a notice."""

from __future__ import annotations

import email
import smtplib
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import RelayThread, upstream_settings, wait_until
from tests.journey import PASSWORD_ENV, imap_settings
from tests.ports import free_port
from tests.upstream import RecordingHandler, RecordingServer

FROM = "anna@nordlicht.example"
MESSAGE = (
    b"From: Anna Nowak <anna@nordlicht.example>\r\n"
    b"To: jan@kunde.example, eva@firma.example, opted@out.example\r\n"
    b"Bcc: secret-colleague@nordlicht.example\r\n"
    b"Subject: Routenplanung\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <clients-1@nordlicht.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Guten Tag, kurz zu unserer Routenplanung.\r\n"
)


def send(relay: RelayThread, rcpts: list[str], message: bytes = MESSAGE) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        return client.sendmail(FROM, rcpts, message)


def cli(tmp_path: Path, *args: str) -> int:
    return gdpr_proxy(["-c", str(tmp_path / "config.yaml"), *args])


def notices(server: RecordingServer) -> list[email.message.EmailMessage]:
    found = []
    for received in server.received:
        parsed = email.message_from_bytes(received.data, policy=policy.default)
        if parsed.get("X-GDPR-Proxy-Notice"):
            found.append(parsed)  # type: ignore[arg-type]
    return found


def prospects(server: RecordingServer) -> list[list[str]]:
    return [r.rcpt_tos for r in server.received if b"X-GDPR-Proxy-Notice" not in r.data]


def test_one_opted_out_recipient_never_stops_the_others(tmp_path, upstream, relay_to, capsys):
    relay = relay_to()
    assert cli(tmp_path, "suppress", "add", "opted@out.example", "--reason", "opt-out") == 0
    refused = send(relay, ["jan@kunde.example", "eva@firma.example", "opted@out.example"])
    assert refused == {}  # every recipient accepted at RCPT: the client reports success
    assert wait_until(lambda: len(notices(upstream)) == 1)
    assert sorted(r for rcpts in prospects(upstream) for r in rcpts) == ["eva@firma.example", "jan@kunde.example"]
    notice = notices(upstream)[0]
    assert notice["To"] == FROM and notice["Auto-Submitted"] == "auto-generated"
    assert "Routenplanung" in notice["Subject"]
    text = notice.get_content()
    assert "opted@out.example: opted out on" in text
    assert "gdpr-proxy suppress remove opted@out.example" in text
    assert "jan@kunde.example" in text  # who did get it
    assert relay.spool_entries == []
    assert relay.service is not None
    from proxy.service.status import service_status

    status = relay.call(service_status(relay.service))
    assert status["today"]["refused_recipients"] == {"suppression": 1}


def test_everyone_refused_gives_550_with_the_reasons(tmp_path, upstream, relay_to):
    relay = relay_to()
    assert cli(tmp_path, "suppress", "add", "opted@out.example") == 0
    assert cli(tmp_path, "suppress", "add", "@gone.example") == 0
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["opted@out.example", "x@gone.example"])
    assert failure.value.smtp_code == 550
    text = failure.value.smtp_error.decode()
    assert "Not sent to anyone" in text and "<opted@out.example>: recipient opted out on" in text
    assert "whole domain gone.example" in text
    assert upstream.received == []


def test_refuse_at_rcpt_policy_keeps_the_per_recipient_550(tmp_path, upstream, relay_to):
    relay = relay_to(smtp={"refused_recipients": "refuse_at_rcpt"})
    assert cli(tmp_path, "suppress", "add", "opted@out.example") == 0
    refused = send(relay, ["jan@kunde.example", "opted@out.example"])
    assert set(refused) == {"opted@out.example"} and refused["opted@out.example"][0] == 550
    assert prospects(upstream) == [["jan@kunde.example"]]


def test_bcc_header_never_goes_upstream(tmp_path, upstream, relay_to):
    relay = relay_to()
    send(relay, ["jan@kunde.example", "secret-colleague@nordlicht.example"])
    assert upstream.received, "nothing delivered"
    for received in upstream.received:
        assert b"\nBcc:" not in received.data and b"secret-colleague" not in received.data
    assert sorted(r for m in upstream.received for r in m.rcpt_tos) == [
        "jan@kunde.example",
        "secret-colleague@nordlicht.example",
    ]


def test_unreachable_upstream_queues_with_250_and_delivers_when_back(tmp_path, start_relay):
    port = free_port()
    relay = start_relay(upstream_settings(port, timeout_seconds=2))
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.ehlo()
        client.mail(FROM)
        client.rcpt("jan@kunde.example")
        code, text = client.data(MESSAGE)
    assert code == 250
    assert text.decode() == "2.0.0 Queued: your mail server is unreachable; it will be sent when it is back"
    assert [e.recipients for e in relay.spool_entries] == [["jan@kunde.example"]]
    assert "Connect call failed" in relay.spool_entries[0].last_error or relay.spool_entries[0].last_error
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert wait_until(lambda: len(handler.received) == 1 and not relay.spool_entries)
    finally:
        controller.stop()
    assert handler.received[0].rcpt_tos == ["jan@kunde.example"]
    assert relay.service is not None
    contact = relay.call(relay.service.store.contact("jan@kunde.example"))
    assert contact is not None and contact["first_contact_at"]


def test_4xx_on_first_try_is_queued_and_5xx_is_passed_at_once(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.mail_reply = "451 4.3.2 System not accepting messages, try later"
    assert send(relay, ["jan@kunde.example"]) == {}
    assert len(relay.spool_entries) == 1 and "try later" in relay.spool_entries[0].last_error
    upstream.behaviour.mail_reply = None
    assert wait_until(lambda: prospects(upstream) == [["jan@kunde.example"]] and not relay.spool_entries)
    upstream.behaviour.data_reply = "554 5.7.1 Message rejected as spam"
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["eva@firma.example"])
    assert failure.value.smtp_code == 554 and b"rejected as spam" in failure.value.smtp_error
    assert relay.spool_entries == []


def test_retry_rechecks_suppression_and_tells_the_sender(tmp_path, upstream, relay_to):
    relay = relay_to(queue={"retry_seconds": 0.5, "max_retry_seconds": 0.5})
    upstream.behaviour.mail_reply = "421 4.3.2 Service not available"
    assert send(relay, ["jan@kunde.example", "eva@firma.example"]) == {}
    assert sorted(r for e in relay.spool_entries for r in e.recipients) == ["eva@firma.example", "jan@kunde.example"]
    assert cli(tmp_path, "suppress", "add", "jan@kunde.example", "--reason", "opt-out") == 0
    upstream.behaviour.mail_reply = None
    assert wait_until(lambda: not relay.spool_entries and len(notices(upstream)) == 1)
    assert prospects(upstream) == [["eva@firma.example"]]  # never to the person who opted out meanwhile
    text = notices(upstream)[0].get_content()
    assert "jan@kunde.example: opted out on" in text


def test_queue_commands_list_delete_flush(tmp_path, upstream, relay_to, capsys):
    relay = relay_to(queue={"retry_seconds": 3600, "max_retry_seconds": 3600})
    upstream.behaviour.mail_reply = "451 4.3.2 try later"
    send(relay, ["jan@kunde.example"])
    send(relay, ["eva@firma.example"])
    assert wait_until(lambda: len(relay.spool_entries) == 2 and all(e.attempts >= 0 for e in relay.spool_entries))
    capsys.readouterr()
    assert cli(tmp_path, "queue") == 0
    listing = capsys.readouterr().out
    assert "jan@kunde.example" in listing and "eva@firma.example" in listing and "451 4.3.2 try later" in listing
    assert "2 message(s) in the queue" in listing
    jan = next(e for e in relay.spool_entries if e.recipients == ["jan@kunde.example"])
    assert cli(tmp_path, "queue", "delete", jan.id[:8]) == 0
    assert [e.recipients for e in relay.spool_entries] == [["eva@firma.example"]]
    assert cli(tmp_path, "queue", "delete", "ffffffffffff") == 1
    upstream.behaviour.mail_reply = None
    assert prospects(upstream) == []
    # What the control socket's `flush` runs in the service (the CLI side needs `serve`'s socket).
    from proxy.service.app import flush_queue

    assert relay.service is not None
    relay.call(flush_queue(relay.service))
    assert wait_until(lambda: prospects(upstream) == [["eva@firma.example"]] and not relay.spool_entries)


def test_notice_goes_flagged_into_the_imap_inbox(tmp_path, upstream, start_relay, mailbox):
    settings = upstream_settings(upstream.port)
    settings["sender"]["default_language"] = "de"
    relay = start_relay({**settings, "imap": imap_settings(mailbox)})
    assert cli(tmp_path, "suppress", "add", "opted@out.example", "--reason", "opt-out") == 0
    assert send(relay, ["jan@kunde.example", "opted@out.example"]) == {}
    assert wait_until(lambda: len(mailbox.uids()) == 1 and not relay.spool_entries)
    assert notices(upstream) == []  # not mailed: it is in the mailbox already
    flags = mailbox.flags()
    assert all("\\Flagged" in f for f in flags.values())
    with mailbox.client() as imap:
        imap.select("INBOX")
        _typ, data = imap.fetch("1", "(RFC822)")
    raw = next(part[1] for part in data if isinstance(part, tuple))
    notice = email.message_from_bytes(raw, policy=policy.default)
    assert notice["Subject"].startswith("Nicht an 1 Empfänger gesendet")
    body = notice.get_content()  # type: ignore[attr-defined]
    assert "opted@out.example: hat am" in body
    assert "hat mit „Nein danke“ geantwortet" in body  # the reason in German too, not in English
    assert "No thanks" not in body
    assert PASSWORD_ENV  # the mailbox fixture put the password there


def test_a_notices_file_without_the_words_for_a_reason_is_refused_naming_the_key(tmp_path):
    from proxy.outbound.notices import NOTICE_FILE, load_notice_rules
    from proxy.rules.ruleset import SHIPPED_RULES
    from proxy.schema import SchemaError

    shipped = (SHIPPED_RULES / NOTICE_FILE).read_text(encoding="utf-8")
    assert load_notice_rules(tmp_path).languages["de"].why["bounce"]
    own = shipped.replace('      bounce: "die Adresse existiert nicht mehr (Unzustellbarkeitsmeldung)"\n', "", 1)
    assert own != shipped
    (tmp_path / NOTICE_FILE).write_text(own, encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        load_notice_rules(tmp_path)
    assert "why.bounce" in str(caught.value) and NOTICE_FILE in str(caught.value)
