"""Why a delivery failed, and who: notices in the shapes of common servers and providers, written for the tests."""

from __future__ import annotations

import json

import pytest

from proxy.classify import mimeparse
from proxy.classify.bounce import parse_bounce
from proxy.classify.bounce_reasons import classify_failure
from proxy.classify.complaints import parse_complaint
from proxy.rules.bounces import shipped_bounce_rules
from tests.bounce_messages import arf_complaint, exim_text, postfix_dsn

RULES = shipped_bounce_rules()


@pytest.mark.parametrize(
    ("status", "diagnostic", "category", "reason"),
    [
        (
            "5.1.1",
            "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown in virtual mailbox table",
            "recipient-gone",
            "no-such-user",
        ),
        (
            "5.0.0",
            "550-5.1.1 The email account that you tried to reach does not exist.",
            "recipient-gone",
            "no-such-user",
        ),
        ("5.2.2", "552 5.2.2 Mailbox full", "mailbox-full", "mailbox-full"),
        ("5.1.1", "550 user over quota. (#5.1.1)", "mailbox-full", "mailbox-full"),  # qmail's code says less
        ("4.7.1", "450 4.7.1 Greylisted, please try again later", "temporary", "greylisted"),
        (
            "5.7.26",
            "550-5.7.26 Unauthenticated email from seller.example is not accepted due to domain's DMARC policy",
            "sender-side",
            "dmarc",
        ),
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org",
            "sender-side",
            "blocklisted",
        ),
        ("5.7.23", "550 5.7.23 SPF validation failed", "sender-side", "spf"),
        ("5.7.606", "550 5.7.606 Access denied, banned sending IP [192.0.2.9]", "sender-side", "blocklisted"),
        ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering", "recipient-policy", "spam-detected"),
        ("5.1.10", "556 5.1.10 Recipient address has null MX", "recipient-gone", "null-mx"),
        ("5.4.7", "retry timeout exceeded", "temporary", "expired"),
        ("", "421 Too many connections from your host, try again later", "temporary", "greylisted"),
        ("5.0.0", "550 Requested action not taken", "unknown", "permanent"),  # says nothing: nobody suppressed
        ("4.1.1", "450 4.1.1 <x@y.example>: Recipient address rejected: unverified address", "temporary", "temporary"),
        # Exim: "Unrouteable address" is a domain that does not exist; a mail domain whose MX
        # leads nowhere usable, or a broken name server, may be mended tomorrow
        ("", "jan@kontor.example:\n    Unrouteable address", "recipient-gone", "host-unknown"),
        ("", 'jan@kontor.example:\n    unrouteable mail domain "kontor.example"', "temporary", "dns-trouble"),
        (
            "5.4.4",
            "Name service error for name=kontor.example type=MX: Malformed or unexpected name server reply",
            "temporary",
            "dns-trouble",
        ),
    ],
)
def test_status_and_wording_give_the_category(status: str, diagnostic: str, category: str, reason: str) -> None:
    found = classify_failure(status, diagnostic, RULES, "failed")
    assert found is not None
    assert (found.category, found.reason) == (category, reason), found.evidence
    assert found.suppresses == (category == "recipient-gone")


def test_delivered_and_relayed_are_not_failures() -> None:
    assert classify_failure("2.0.0", "250 ok", RULES, "delivered") is None
    assert classify_failure("2.0.0", "", RULES, "relayed") is None


def parse(raw: bytes):  # type: ignore[no-untyped-def]
    return parse_bounce(mimeparse.parse(raw), RULES)


def test_original_recipient_is_the_address_we_wrote_to() -> None:
    raw = postfix_dsn(
        "k@intern.example", "5.1.1", "550 5.1.1 user unknown", "o@s.example", original_recipient="k@b.example"
    )
    bounce = parse(raw)
    assert bounce is not None and bounce.permanent == ("k@b.example",)
    assert bounce.original_message_ids == ("o@s.example",)


def test_exim_names_the_failed_address_not_the_copy_of_our_message() -> None:
    bounce = parse(exim_text("gone@b.example", "550 5.1.1 <gone@b.example>: no such user", "o@s.example"))
    assert bounce is not None and bounce.permanent == ("gone@b.example",)


QMAIL = (
    b"From: MAILER-DAEMON@mx.seller.example\r\nTo: anna@seller.example\r\nSubject: failure notice\r\n\r\n"
    b"Hi. This is the qmail-send program at mx.seller.example.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
    b"<nobody@b.example>:\r\n192.0.2.4 does not like recipient.\r\n"
    b"Remote host said: 550 5.1.1 <nobody@b.example>: Recipient address rejected: User unknown\r\n"
    b"Giving up on 192.0.2.4.\r\n\r\n"
    b"<full@b.example>:\r\nuser is over quota\r\n\r\n"
    b"--- Below this line is a copy of the message.\r\n\r\nTo: other@b.example\r\n\r\nReply No thanks\r\n"
)

EXCHANGE = (
    b"From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@b.example>\r\n"
    b"To: anna@seller.example\r\nSubject: Undeliverable: Routenplanung\r\nContent-Type: text/plain\r\n\r\n"
    b"Your message to kontakt@b.example couldn't be delivered.\r\n"
    b"kontakt wasn't found at b.example.\r\n\r\n"
    b"Diagnostic information for administrators:\r\nGenerating server: AM0PR01MB.eurprd01.prod.outlook.com\r\n"
    b"kontakt@b.example\r\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'\r\n"
    b"Original message headers:\r\n\r\nTo: SMTP=other@b.example\r\n"
)

GMAIL_TEXT = (
    b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: anna@seller.example\r\n"
    b"Subject: Delivery Status Notification (Failure)\r\nContent-Type: text/plain\r\n\r\n"
    b"** Address not found **\r\n\r\nYour message wasn't delivered to jane@b.example because the address "
    b"couldn't be found, or is unable to receive mail.\r\n\r\nDid you mean jane@c.example?\r\n\r\n"
    b"The response was:\r\n\r\n550 5.1.1 The email account that you tried to reach does not exist.\r\n"
    b"If you need help, write to support@b.example\r\n"
)


def test_qmail_each_address_with_its_own_reason() -> None:
    bounce = parse(QMAIL)
    assert bounce is not None
    assert bounce.permanent == ("nobody@b.example",)
    assert bounce.temporary == ("full@b.example",)


def test_exchange_ndr_not_the_smtp_prefix_of_the_returned_headers() -> None:
    bounce = parse(EXCHANGE)
    assert bounce is not None and bounce.permanent == ("kontakt@b.example",)


def test_gmail_text_never_the_suggestion_or_the_help_desk() -> None:
    bounce = parse(GMAIL_TEXT)
    assert bounce is not None and bounce.permanent == ("jane@b.example",)


def test_daemon_notice_without_an_address_points_at_the_returned_message() -> None:
    raw = (
        b"From: MAILER-DAEMON <>\r\nSubject: Returned mail: see transcript for details\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="M"\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\n'
        b"Your message could not be delivered: 550 5.1.1 User unknown\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <offer-7@seller.example>\r\nTo: x@b.example\r\n\r\n"
        b"Hello\r\n--M--\r\n"
    )
    bounce = parse(raw)
    assert bounce is not None and bounce.original_message_ids == ("offer-7@seller.example",)
    assert [f.address for f in bounce.failures] == [""] and bounce.failures[0].reason.suppresses


def ses_notice(kind: str, body: dict[str, object]) -> bytes:
    message = json.dumps(
        {"notificationType": kind, kind.lower(): body, "mail": {"commonHeaders": {"messageId": "<o@s>"}}}
    )
    envelope = json.dumps({"Type": "Notification", "Message": message, "UnsubscribeURL": "https://sns.example/unsub"})
    return (
        "From: AWS Notifications <no-reply@sns.amazonaws.example>\r\nTo: anna@seller.example\r\n"
        f"Subject: AWS Notification Message\r\nContent-Type: text/plain\r\n\r\n{envelope}\r\n"
    ).encode()


def test_provider_json_bounce_and_complaint() -> None:
    bounce = parse(
        ses_notice(
            "Bounce",
            {
                "bounceType": "Permanent",
                "bouncedRecipients": [
                    {
                        "emailAddress": "gone@b.example",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
            },
        )
    )
    assert bounce is not None and bounce.permanent == ("gone@b.example",) and bounce.where == "provider notice"
    transient = parse(
        ses_notice("Bounce", {"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "full@b.example"}]})
    )
    assert transient is not None and transient.permanent == () and transient.temporary == ("full@b.example",)
    complaint = parse_complaint(
        mimeparse.parse(ses_notice("Complaint", {"complainedRecipients": [{"emailAddress": "Hates@B.example"}]}))
    )
    assert complaint is not None and complaint.recipients == ("hates@b.example",) and complaint.suppresses


def test_arf_and_microsoft_feedback() -> None:
    arf = parse_complaint(mimeparse.parse(arf_complaint("p@b.example", "o@s.example")))
    assert arf is not None and arf.recipients == ("p@b.example",) and arf.original_message_ids == ("o@s.example",)
    hidden = parse_complaint(mimeparse.parse(arf_complaint("p@b.example", "o@s.example", in_report=False)))
    assert hidden is not None and hidden.recipients == ()  # found through the relayed message instead
    auth = parse_complaint(mimeparse.parse(arf_complaint("p@b.example", "o@s.example", feedback_type="auth-failure")))
    assert auth is not None and not auth.suppresses
    jmrp = (
        b"From: staff@hotmail.example\r\nSubject: complaint about message\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="J"\r\n\r\n--J\r\nContent-Type: text/plain\r\n\r\nreport\r\n'
        b"--J\r\nContent-Type: message/rfc822\r\n\r\nX-HmXmrOriginalRecipient: <who@outlook.example>\r\n"
        b"To: who@outlook.example\r\nMessage-ID: <o@s.example>\r\n\r\nHello\r\n--J--\r\n"
    )
    found = parse_complaint(mimeparse.parse(jmrp))
    assert found is not None and found.recipients == ("who@outlook.example",)
