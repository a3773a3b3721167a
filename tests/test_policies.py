"""Sending policies from rules/policies.yaml: B2C guard at RCPT, one person at a time at DATA."""

from __future__ import annotations

import email
import email.policy
import smtplib
from pathlib import Path

import pytest

from tests.harness import RelayThread

GROUP = (
    b"From: Anna Nowak <anna@nordlicht.example>\r\n"
    b"To: Jan Kowalski <jan@kunde.pl>, Eva Roth <eva@firma.de>\r\n"
    b"Cc: colleague@nordlicht.example\r\n"
    b"Subject: Angebot\r\nMessage-ID: <group-1@nordlicht.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHallo zusammen\r\n"
)


def policies(tmp_path: Path, text: str) -> None:
    rules = tmp_path / "user-rules"
    rules.mkdir(exist_ok=True)
    (rules / "policies.yaml").write_text(text)


def send(relay: RelayThread, rcpts: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        return client.sendmail("anna@nordlicht.example", rcpts, raw)


def test_consumer_address_without_consent_is_refused_with_reason(upstream, relay_to):
    relay = relay_to(smtp={"refused_recipients": "refuse_at_rcpt"})  # the refusal shows at RCPT
    refused = send(relay, ["private.person@gmail.com", "jan@kunde.pl"], GROUP)
    code, text = refused["private.person@gmail.com"]
    assert code == 550
    assert b"gmail.com is a consumer mail provider" in text and b"consent" in text
    assert [r.rcpt_tos for r in upstream.received] == [["jan@kunde.pl"]]


def test_consumer_address_with_marketing_consent_is_sent(upstream, relay_to):
    relay = relay_to()
    assert relay.service is not None
    relay.call(
        relay.service.store._write(
            "INSERT INTO contacts (address, marketing_consent, created_at, updated_at) "
            "VALUES ('fan@gmx.de', 'granted', '2026-01-01', '2026-01-01')"
        )
    )
    assert send(relay, ["fan@gmx.de"], GROUP) == {}


@pytest.mark.parametrize("action", ["warn", "allow"])
def test_consumer_policy_warn_and_allow_send(tmp_path, upstream, relay_to, action):
    policies(tmp_path, f"consumer_addresses:\n  action: {action}\n")
    relay = relay_to()
    assert send(relay, ["private.person@gmail.com"], GROUP) == {}


def test_consumer_policy_log_only_sends(tmp_path, upstream, relay_to, caplog):
    policies(tmp_path, "consumer_addresses:\n  action: reject\n  log_only: true\n")
    relay = relay_to()
    assert send(relay, ["private.person@orange.fr"], GROUP) == {}
    assert "would be refused (log_only), sent" in caplog.text


def test_several_recipients_reject(tmp_path, upstream, relay_to):
    policies(tmp_path, "several_recipients:\n  action: reject\n")
    relay = relay_to()
    with pytest.raises(smtplib.SMTPDataError) as failure:
        send(relay, ["jan@kunde.pl", "eva@firma.de"], GROUP)
    assert failure.value.smtp_code == 554 and b"one person at a time" in failure.value.smtp_error
    assert upstream.received == []


def test_several_recipients_split_addresses_each_alone(tmp_path, upstream, relay_to):
    policies(tmp_path, "several_recipients:\n  action: split\n")
    relay = relay_to()
    assert send(relay, ["jan@kunde.pl", "eva@firma.de"], GROUP) == {}
    by_rcpt = {r.rcpt_tos[0]: email.message_from_bytes(r.data, policy=email.policy.default) for r in upstream.received}
    assert sorted(by_rcpt) == ["eva@firma.de", "jan@kunde.pl"]
    assert by_rcpt["jan@kunde.pl"]["To"] == "Jan Kowalski <jan@kunde.pl>"
    assert by_rcpt["eva@firma.de"]["To"] == "Eva Roth <eva@firma.de>"
    assert all(m["Cc"] is None for m in by_rcpt.values())
    assert "Nein danke" in " ".join(by_rcpt["eva@firma.de"].get_body(("plain",)).get_content().split())


def test_one_external_recipient_is_not_a_group(tmp_path, upstream, relay_to):
    policies(tmp_path, "several_recipients:\n  action: reject\n")
    relay = relay_to()
    single = GROUP.replace(b", Eva Roth <eva@firma.de>", b"")
    assert send(relay, ["jan@kunde.pl"], single) == {}
