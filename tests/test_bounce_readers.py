"""Notices whose shape misleads a naive reader: transcripts naming several hosts, reports whose prose
contradicts their fields, notices that name nobody, servers with names of their own."""

from __future__ import annotations

from proxy.classify import mimeparse
from proxy.classify.bounce import Bounce, parse_bounce
from proxy.rules.bounces import shipped_bounce_rules
from tests.bounce_messages import postfix_dsn

RULES = shipped_bounce_rules()


def _read(raw: bytes) -> Bounce | None:
    return parse_bounce(mimeparse.parse(raw), RULES)


def _permanent(raw: bytes) -> tuple[str, ...]:
    bounce = _read(raw)
    assert bounce is not None
    return bounce.permanent


def _categories(bounce: Bounce | None) -> dict[str, str]:
    assert bounce is not None
    return {f.address: f.reason.category for f in bounce.failures}


def test_each_sendmail_error_line_speaks_for_its_own_recipient() -> None:
    # The refused MAIL FROM and the protocol error are about one host; the "Host unknown" of the
    # next line is about the other recipient's domain and must not be read for the first.
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.seller.example>\r\n"
        b"To: anna@seller.example\r\nSubject: Returned mail: see transcript for details\r\n\r\n"
        b"   ----- Transcript of session follows -----\r\n"
        b"While talking to mail.kontor.example:\r\n>>> MAIL From:<anna@seller.example>\r\n"
        b"<<< 501 <anna@seller.example>... access denied: your server is listed as an open relay\r\n"
        b"554 <jan@kontor.example>... Remote protocol error\r\n"
        b"550 gone-firm.example (smtp)... 550 Host unknown\r\n"
        b"554 <eva@gone-firm.example>... 550 Host unknown (Authoritative answer from name server)\r\n\r\n"
        b"   ----- Unsent message follows -----\r\nTo: jan@kontor.example\r\n\r\nHello\r\n"
    )
    found = _categories(_read(raw))
    assert found["eva@gone-firm.example"] == "recipient-gone"
    assert found["jan@kontor.example"] != "recipient-gone"


def test_report_whose_prose_says_disk_full_does_not_suppress() -> None:
    raw = postfix_dsn(
        "mia@firma.example", "5.1.1", "550 5.1.1 <mia@firma.example>... User Unknown", "o-1@seller.example"
    )
    raw = raw.replace(
        b"I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.",
        b"Your message was automatically rejected:\r\nNot enough disk space.",
    ).replace(
        b"<mia@firma.example>: host mx.firma.de[192.0.2.7] said: 550 5.1.1 <mia@firma.example>... User Unknown\r\n", b""
    )
    bounce = _read(raw)
    assert _categories(bounce) == {"mia@firma.example": "mailbox-full"}
    assert bounce is not None and "disk space" in bounce.failures[0].reason.evidence
    assert bounce.permanent == ()


def test_plain_user_unknown_report_still_suppresses() -> None:
    raw = postfix_dsn(
        "mia@firma.example", "5.1.1", "550 5.1.1 <mia@firma.example>... User Unknown", "o-1@seller.example"
    )
    assert _permanent(raw) == ("mia@firma.example",)


def test_prose_about_one_of_several_recipients_leaves_the_others_read_by_their_fields() -> None:
    raw = postfix_dsn("full@firma.example", "5.2.2", "552 5.2.2 Mailbox full", "o-2@seller.example")
    raw = raw.replace(
        b"Remote-MTA: dns; mx.firma.de\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n",
        b"Remote-MTA: dns; mx.firma.de\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n"
        b"Final-Recipient: rfc822; gone@firma.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n",
    ).replace(b"be delivered to one or more recipients.", b"be delivered: the mailbox is full.")
    assert _categories(_read(raw)) == {"full@firma.example": "mailbox-full", "gone@firma.example": "recipient-gone"}


def _gateway_notice(copy_to: str) -> bytes:
    # A mobile gateway's notice: no report, no address of its own, no Message-ID of the copy.
    return (
        "From: MMS NDR Administrator <sysadmin@mms.carrier.example>\r\nTo: anna@seller.example\r\n"
        "Subject: Undeliverable Message\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Message could not be delivered to mobile.\r\nError: No valid recipients for this MM\r\n\r\n\r\n"
        f"Original Message:\r\nFrom: Anna Berg <anna@seller.example>\r\nTo: {copy_to}\r\n"
        "Subject: Routenplanung\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
    ).encode()


def test_notice_naming_nobody_speaks_for_the_sole_recipient_of_the_users_quoted_copy() -> None:
    assert _categories(_read(_gateway_notice("4915112345@mms.carrier.example"))) == {
        "4915112345@mms.carrier.example": "recipient-gone"
    }


def test_quoted_copy_with_several_recipients_names_nobody() -> None:
    assert _read(_gateway_notice("a@mms.carrier.example, b@mms.carrier.example")) is None


def test_quoted_copy_sent_by_someone_else_names_nobody() -> None:
    raw = _gateway_notice("4915112345@mms.carrier.example").replace(
        b"<anna@seller.example>\r\nTo: 49", b"<x@other.example>\r\nTo: 49"
    )
    assert _read(raw) is None


def _named_server_notice(subject: str, sender: str = "imss@gw.kviv.example") -> bytes:
    return (
        f"From: {sender}\r\nTo: anna@seller.example\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "****** Message from the mail security gateway ******\r\n\r\n"
        "Sent <<< RCPT TO:<jan@kviv.example>\r\nReceived >>> 550 5.1.1 unknown user.\r\n\r\n"
        "Unable to forward message to <jan@kviv.example>.\r\n"
    ).encode()


def test_server_with_a_name_of_its_own_is_read_by_its_wording() -> None:
    assert _permanent(_named_server_notice("Mail could not be delivered")) == ("jan@kviv.example",)


def test_a_persons_answer_with_such_a_subject_is_no_notice() -> None:
    assert _read(_named_server_notice("Re: Mail could not be delivered", "Jan Peeters <jan@kviv.example>")) is None


def test_exim_alias_expansion_names_the_address_we_wrote_to() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.firma.example>\r\nTo: anna@seller.example\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n\r\n"
        b"This message was created automatically by mail delivery software.\r\n\r\n"
        b"A message that you sent could not be delivered to one or more of its\r\n"
        b"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        b"  an undisclosed address\r\n    (generated from info@firma.example)\r\n    unknown user\r\n"
    )
    assert _permanent(raw) == ("info@firma.example",)


def test_subject_saying_why_marks_a_notice_from_a_server_with_its_own_name() -> None:
    raw = (
        b"From: MDaemon@webmail.firma.example\r\nTo: anna@seller.example\r\n"
        b"Subject: Warning: jan@firma.example - User unknown!\r\n\r\n"
        b"jan@firma.example - no such user here.\r\n\r\nThere is no user by that name at this server.\r\n"
    )
    assert _permanent(raw) == ("jan@firma.example",)


def test_daemon_notice_in_another_language_is_read_by_its_address_lines() -> None:
    raw = (
        "From: MAILER-DAEMON@mail.firma.example\r\nTo: anna@seller.example\r\nSubject: 邮件传输失败\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "邮件无法发送到您指定的地址中。\r\n\r\n<wang@firma.example>:\r\n\r\n<li@firma.example>:\r\n"
    ).encode()
    bounce = _read(raw)
    assert bounce is not None and [f.address for f in bounce.failures] == ["wang@firma.example", "li@firma.example"]


def test_a_person_sending_a_returned_message_as_attachment_is_no_notice() -> None:
    raw = (
        b"From: Jan <jan@firma.example>\r\nTo: anna@seller.example\r\nSubject: original as attachment\r\n"
        b"Content-Type: text/plain\r\n\r\nThis one came back to me, the attachment is the original.\r\n"
    )
    assert _read(raw) is None
