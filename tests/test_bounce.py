"""Delivery failures: which addresses failed, permanently or for now, and never an opt-out."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.classify import mimeparse
from proxy.classify.bounce import parse_bounce
from proxy.classify.classifier import classify
from proxy.rules.optout import OptoutRules, load_optout_rules

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "replies"
FOOTER = ['Reply "No thanks" or STOP and you will be removed']


@pytest.fixture(scope="module")
def rules() -> OptoutRules:
    return load_optout_rules(ROOT / "rules" / "optout.yaml")


@pytest.mark.parametrize(
    ("name", "permanent", "temporary", "where"),
    [
        ("bounce_rfc3464_with_footer.eml", ("gone@acme.example",), (), "delivery-status"),
        ("bounce_rfc3464_delayed.eml", (), ("slow@busy.example",), "delivery-status"),
        ("bounce_exim.eml", ("bob@nowhere.example",), (), "bounce text"),
        ("bounce_exim_delay.eml", (), ("greylist@busy.example",), "bounce text"),
        ("bounce_qmail.eml", ("carol@old.example",), (), "bounce text"),
        ("bounce_exchange_ndr.eml", ("dave@contoso.example",), (), "bounce text"),
        ("bounce_gmail_text.eml", ("erin@typo.example",), (), "bounce text"),
    ],
)
def test_bounce_fixtures(
    name: str, permanent: tuple[str, ...], temporary: tuple[str, ...], where: str, rules: OptoutRules
) -> None:
    v = classify((FIXTURES / name).read_bytes(), rules, FOOTER)
    assert v.verdict == "bounce"
    assert v.addresses == permanent
    assert v.temporary_failures == temporary
    assert v.where == where


def test_dsn_carrying_our_footer_is_a_bounce_with_its_status(rules: OptoutRules) -> None:
    v = classify((FIXTURES / "bounce_rfc3464_with_footer.eml").read_bytes(), rules, FOOTER)
    assert v.verdict == "bounce"
    assert v.evidence.startswith("Status: 5.1.1; recipient-gone")
    # The returned message's id lets the watcher find the prospect it was sent to.
    assert v.in_reply_to == ("20250303100000.1111@seller.example",)


def test_original_message_id_from_rfc822_headers() -> None:
    msg = mimeparse.parse((FIXTURES / "bounce_rfc3464_delayed.eml").read_bytes())
    bounce = parse_bounce(msg)
    assert bounce is not None
    assert bounce.original_message_ids == ("20250303100000.2222@seller.example",)


def dsn(blocks: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.seller.example\nTo: jane@seller.example\nSubject: DSN\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nReport.\n"
        f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n{blocks}\n--b--\n"
    ).encode()


def test_dsn_with_several_recipients() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; A@one.example\nAction: failed\nStatus: 5.2.1\n\n"
        "Final-Recipient: rfc822; b@two.example\nAction: delayed\nStatus: 4.2.2\n\n"
        "Final-Recipient: rfc822; c@three.example\nAction: delivered\nStatus: 2.0.0\n\n"
        "Original-Recipient: rfc822; d@four.example\nStatus: 5.7.1\n"
    )
    bounce = parse_bounce(mimeparse.parse(raw))
    assert bounce is not None
    assert bounce.permanent == ("a@one.example",)  # 5.2.1: the mailbox is disabled
    assert bounce.temporary == ("b@two.example",)  # 4.2.2: full for now
    categories = {f.address: f.category for f in bounce.failures}
    assert categories["d@four.example"] == "recipient-policy"  # 5.7.1 refuses this message, not the person
    assert "c@three.example" not in categories


def test_base64_encoded_delivery_status_is_read() -> None:
    import base64

    report = base64.encodebytes(
        b"Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; x@y.example\nAction: failed\nStatus: 5.1.1\n"
    )
    raw = (
        "From: MAILER-DAEMON@mx.example\nSubject: DSN\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        f"{report.decode()}--b--\n"
    ).encode()
    bounce = parse_bounce(mimeparse.parse(raw))
    assert bounce is not None and bounce.permanent == ("x@y.example",)


def test_postfix_without_dsn() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.seller.example (Mail Delivery System)\nTo: jane@seller.example\n"
        b"Subject: Undelivered Mail Returned to Sender\n\n"
        b"This is the mail system at host mx.seller.example.\n\n"
        b"I'm sorry to have to inform you that your message could not\n"
        b"be delivered to one or more recipients. It's attached below.\n\n"
        b"<frank@closed.example>: host mx.closed.example[192.0.2.3] said: 550 5.1.1\n"
        b"    <frank@closed.example>: Recipient address rejected: User unknown (in reply to\n"
        b"    RCPT TO command)\n\n"
        b"<gina@full.example>: host mx.full.example[192.0.2.4] said: 452 4.2.2 Mailbox full\n\n"
        b"--- original message follows ---\nTo: frank@closed.example\nMessage-ID: <x@seller.example>\n\n"
        b"Reply No thanks or STOP\n"
    )
    bounce = parse_bounce(mimeparse.parse(raw))
    assert bounce is not None
    assert bounce.permanent == ("frank@closed.example",)
    assert bounce.temporary == ("gina@full.example",)


def test_daemon_sender_without_failure_wording_is_not_a_bounce(rules: OptoutRules) -> None:
    raw = b"From: postmaster@acme.example\nSubject: Re: offer\n\nPlease remove me from your list.\n"
    assert parse_bounce(mimeparse.parse(raw)) is None
    assert classify(raw, rules).verdict == "opt-out"


def test_ordinary_replies_are_not_bounces() -> None:
    for path in FIXTURES.glob("*.eml"):
        if not path.name.startswith("bounce_"):
            assert parse_bounce(mimeparse.parse(path.read_bytes())) is None, path.name


def test_damaged_report_degrades() -> None:
    raw = (
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: message/delivery-status\n\n\xff\xfe garbage\n"
    )
    bounce = parse_bounce(mimeparse.parse(raw))
    assert bounce is not None and bounce.permanent == () and bounce.temporary == ()
