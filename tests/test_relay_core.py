"""The relay core over real sockets: smtplib -> relay -> recording SMTP server."""

from __future__ import annotations

import mailbox
import smtplib
from pathlib import Path

import pytest

from proxy.cli.commands import main as gdpr_proxy
from tests.harness import RelayThread, wait_until

MESSAGE = (
    b"From: Anna Nowak <anna@nordlicht.example>\r\n"
    b"To: Jan <jan@kunde.example>\r\n"
    b"Subject: =?utf-8?q?Angebot_f=C3=BCr_Sie?=\r\n"
    b"Message-ID: <core-test-1@nordlicht.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Guten Tag,\r\n"
    b".leading dot line\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
)


def no_changes(tmp_path: Path) -> None:
    """User rules that switch off every message change, so bytes must pass untouched."""
    rules = tmp_path / "user-rules"
    rules.mkdir(exist_ok=True)
    (rules / "policies.yaml").write_text("footers: false\nstrip_trackers: false\nlist_unsubscribe: false\n")


def send(relay: RelayThread, rcpts: list[str], message: bytes = MESSAGE) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        return client.sendmail("anna@nordlicht.example", rcpts, message)


def cli(tmp_path: Path, *args: str) -> int:
    return gdpr_proxy(["-c", str(tmp_path / "config.yaml"), *args])


def test_unchanged_message_arrives_byte_identical(tmp_path, upstream, relay_to):
    no_changes(tmp_path)
    relay = relay_to()
    refused = send(relay, ["jan@kunde.example"])
    assert refused == {}
    assert len(upstream.received) == 1
    got = upstream.received[0]
    assert got.data == MESSAGE
    assert got.rcpt_tos == ["jan@kunde.example"]
    assert got.mail_from == "anna@nordlicht.example"


def test_suppressed_address_and_domain_refused_others_delivered(tmp_path, upstream, relay_to, capsys):
    no_changes(tmp_path)
    relay = relay_to()
    assert cli(tmp_path, "suppress", "add", "Jan@Kunde.example") == 0
    assert cli(tmp_path, "suppress", "add", "@blocked.example", "--reason", "opt-out") == 0
    refused = send(relay, ["jan+news@kunde.example", "eva@sales.blocked.example", "ok@other.example"])
    assert refused == {}  # noted at RCPT, left out at the end of DATA: the client reports success
    assert wait_until(lambda: len(upstream.received) == 2)
    prospect, notice = sorted(upstream.received, key=lambda r: b"X-GDPR-Proxy-Notice" in r.data)
    assert prospect.rcpt_tos == ["ok@other.example"]
    assert notice.rcpt_tos == ["anna@nordlicht.example"]
    text = notice.data.decode()
    assert "jan+news@kunde.example: opted out on" in text
    assert "the whole domain blocked.example opted out" in text


def test_all_recipients_refused_means_nothing_sent(tmp_path, upstream, relay_to):
    relay = relay_to()
    assert cli(tmp_path, "suppress", "add", "jan@kunde.example") == 0
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["jan@kunde.example"])
    assert failure.value.smtp_code == 550 and b"recipient opted out on" in failure.value.smtp_error
    assert upstream.received == []


def test_upstream_down_queues_the_message(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.stop()
    assert send(relay, ["jan@kunde.example"]) == {}
    assert [e.recipients for e in relay.spool_entries] == [["jan@kunde.example"]]


def test_upstream_temporary_failure_is_queued_and_retried(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.data_reply = "452 4.3.1 Insufficient system storage"
    assert send(relay, ["jan@kunde.example"]) == {}
    assert wait_until(lambda: bool(relay.spool_entries) and "Insufficient" in relay.spool_entries[0].last_error)
    upstream.behaviour.data_reply = None
    assert wait_until(lambda: len(upstream.received) == 1 and not relay.spool_entries)


def test_upstream_permanent_failure_text_reaches_client(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.data_reply = "554 5.7.1 Message rejected as spam by policy XYZ"
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["jan@kunde.example"])
    assert failure.value.smtp_code == 554
    assert b"Message rejected as spam by policy XYZ" in failure.value.smtp_error
    assert b"5.7.1" in failure.value.smtp_error


def test_upstream_refuses_every_recipient(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies["jan@kunde.example"] = "550 5.1.1 No such user here"
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["jan@kunde.example"])
    assert failure.value.smtp_code == 550
    assert b"No such user here" in failure.value.smtp_error
    assert upstream.received == []


def test_upstream_drops_connection_during_data(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.drop_at_data = True
    assert send(relay, ["jan@kunde.example"]) == {}  # queued: it may or may not have arrived (at least once)
    assert [e.recipients for e in relay.spool_entries] == [["jan@kunde.example"]]


def test_capture_mode_writes_a_valid_maildir_message(tmp_path, start_relay):
    relay = start_relay()
    assert relay.service is not None and relay.service.upstream.captures
    send(relay, ["jan@kunde.example", "eva@firma.example"])
    box = mailbox.Maildir(tmp_path / "data" / "capture", create=False)
    messages = list(box)
    assert messages, "nothing captured"
    delivered_to = sorted(r for m in messages for r in m.get_all("Delivered-To", []))
    assert delivered_to == ["eva@firma.example", "jan@kunde.example"]
    for message in messages:
        assert message["Message-ID"] == "<core-test-1@nordlicht.example>"
        assert message["Return-Path"] == "<anna@nordlicht.example>"


def test_bare_lf_in_header_is_refused(tmp_path, upstream, relay_to):
    relay = relay_to()
    import socket

    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for command in (
            b"EHLO test\r\n",
            b"MAIL FROM:<a@nordlicht.example>\r\n",
            b"RCPT TO:<jan@kunde.example>\r\n",
        ):
            sock.sendall(command)
            while (line := reader.readline())[3:4] == b"-":
                pass
            assert line.startswith(b"250"), line
        sock.sendall(b"DATA\r\n")
        assert reader.readline().startswith(b"354")
        sock.sendall(b"From: a@nordlicht.example\r\nSubject: hi\nBcc: victim@elsewhere.example\r\n\r\nbody\r\n.\r\n")
        reply = reader.readline()
    assert reply.startswith(b"550 5.6.0"), reply
    assert upstream.received == []


def test_relay_data_survives_restart_with_suppression(tmp_path, upstream, relay_to):
    """Suppressions live in the store file, not in memory."""
    relay = relay_to()
    assert cli(tmp_path, "suppress", "add", "jan@kunde.example") == 0
    relay.stop()
    relay2 = relay_to()
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay2, ["jan@kunde.example"])
    assert failure.value.smtp_code == 550


def test_second_version_refused_temporarily_is_spooled_then_delivered_once(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies["someone@example.com"] = "451 4.3.0 Greylisted, try later"
    assert send(relay, ["kontakt@firma.de", "someone@example.com"]) == {}
    assert [r.rcpt_tos for r in upstream.received] == [["kontakt@firma.de"]]
    entries = relay.spool_entries
    assert [e.recipients for e in entries] == [["someone@example.com"]]
    assert "Greylisted" in entries[0].last_error
    upstream.behaviour.rcpt_replies.clear()
    assert wait_until(lambda: len(upstream.received) == 2 and not relay.spool_entries)
    assert [r.rcpt_tos for r in upstream.received] == [["kontakt@firma.de"], ["someone@example.com"]]
    assert relay.service is not None
    contact = relay.call(relay.service.store.contact("someone@example.com"))
    assert contact is not None and contact["first_contact_at"]


def test_second_version_refused_permanently_bounces_to_sender(tmp_path, upstream, relay_to):
    relay = relay_to()
    upstream.behaviour.rcpt_replies["someone@example.com"] = "550 5.1.1 No such mailbox"
    reply = send(relay, ["kontakt@firma.de", "someone@example.com"])
    assert reply == {}
    assert wait_until(lambda: any(r.rcpt_tos == ["anna@nordlicht.example"] for r in upstream.received))
    bounce = next(r for r in upstream.received if r.rcpt_tos == ["anna@nordlicht.example"])
    assert bounce.mail_from == "<>"  # the null reverse-path: bounces never bounce
    assert b"multipart/report" in bounce.data and b"report-type=delivery-status" in bounce.data
    assert b"Final-Recipient: rfc822; someone@example.com" in bounce.data
    assert b"No such mailbox" in bounce.data
    assert relay.spool_entries == []


def test_ehlo_announces_what_the_relay_offers(tmp_path, upstream, relay_to):
    relay = relay_to()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
        client.ehlo("test")
        features = client.esmtp_features
    assert {"size", "8bitmime", "smtputf8", "pipelining"} <= set(features)
    assert features["size"] == str(50 * 1024 * 1024)
    assert "auth" not in features  # no local users configured
    assert "starttls" not in features  # no certificate configured


def test_upstream_is_told_8bitmime_and_size_on_a_fresh_connection(tmp_path, upstream, relay_to):
    no_changes(tmp_path)
    relay = relay_to(upstream={**upstream_settings_for(upstream.port), "pool_size": 0})
    send(relay, ["jan@kunde.example"])
    options = upstream.received[0].mail_options
    assert "BODY=8BITMIME" in options
    assert f"SIZE={len(MESSAGE)}" in options


def upstream_settings_for(port: int) -> dict[str, object]:
    from tests.harness import upstream_settings

    return dict(upstream_settings(port)["upstream"])


def test_status_counts_what_happened_today(tmp_path, upstream, relay_to):
    from proxy.service.status import service_status

    relay = relay_to()
    send(relay, ["jan@kunde.example"])
    upstream.behaviour.data_reply = "554 5.7.1 rejected"
    with pytest.raises(smtplib.SMTPDataError):
        send(relay, ["eva@kunde.example"])
    assert cli(tmp_path, "suppress", "add", "x@kunde.example", "--reason", "opt-out") == 0
    assert relay.service is not None
    today = relay.call(service_status(relay.service))["today"]
    assert (today["relayed"], today["refused"], today["modified"]) == (1, 1, 1)
    assert today["suppressed"] == {"opt-out": 1}
