"""Delivery notices and spam complaints in the shapes real servers send, written for the tests."""

from __future__ import annotations


def postfix_dsn(
    recipient: str,
    status: str,
    diagnostic: str,
    original_id: str,
    *,
    original_recipient: str = "",
    action: str = "failed",
    bounce_id: str = "bounce-1@mx.seller.example",
) -> bytes:
    """Postfix: a multipart/report with the notice, the delivery-status fields and the returned headers."""
    original = f"Original-Recipient: rfc822;{original_recipient}\r\n" if original_recipient else ""
    return (
        "From: MAILER-DAEMON@mx.seller.example (Mail Delivery System)\r\n"
        "To: anna@nordlicht.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{bounce_id}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.seller.example.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n\r\n"
        "For further assistance, please send mail to <postmaster@seller.example>\r\n\r\n"
        f"<{recipient}>: host mx.firma.de[192.0.2.7] said: {diagnostic}\r\n"
        "    (in reply to RCPT TO command)\r\n\r\n"
        "--B\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.seller.example\r\nArrival-Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n{original}Action: {action}\r\nStatus: {status}\r\n"
        f"Remote-MTA: dns; mx.firma.de\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        "--B\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: anna@nordlicht.example\r\nTo: {original_recipient or recipient}\r\n"
        f"Subject: Routenplanung\r\nMessage-ID: <{original_id}>\r\n\r\n--B--\r\n"
    ).encode()


def exim_text(recipient: str, explanation: str, original_id: str, bounce_id: str = "exim-1@mx.seller.example") -> bytes:
    """Exim: plain text with the failing address, the remote server's answer, and a copy of the message."""
    return (
        "From: Mail Delivery System <Mailer-Daemon@mx.seller.example>\r\nTo: anna@nordlicht.example\r\n"
        f"Subject: Mail delivery failed: returning message to sender\r\nMessage-ID: <{bounce_id}>\r\n"
        f"X-Failed-Recipients: {recipient}\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n    host mx.firma.de [192.0.2.7]\r\n"
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\r\n"
        f"    {explanation}\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        f"From: anna@nordlicht.example\r\nTo: {recipient}\r\nMessage-ID: <{original_id}>\r\n"
        "Subject: Routenplanung\r\n\r\nReply \"No thanks\" or STOP and you will be removed.\r\n"
    ).encode()


def arf_complaint(recipient: str, original_id: str, *, feedback_type: str = "abuse", in_report: bool = True) -> bytes:
    """A feedback loop's ARF report (RFC 5965), as Yahoo, Comcast or Microsoft send them."""
    rcpt = f"Original-Rcpt-To: {recipient}\r\n" if in_report else ""
    return (
        "From: Feedback Loop <feedbackloop@fbl.mailhost.example>\r\nTo: abuse@nordlicht.example\r\n"
        "Subject: FW: Routenplanung\r\nMessage-ID: <arf-1@fbl.mailhost.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report for an email message received from IP 192.0.2.25.\r\n\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <anna@nordlicht.example>\r\n{rcpt}"
        "Arrival-Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nSource-IP: 192.0.2.25\r\n\r\n"
        "--F\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        f"From: anna@nordlicht.example\r\nTo: {'redacted@mailhost.example' if not in_report else recipient}\r\n"
        f"Message-ID: <{original_id}>\r\nSubject: Routenplanung\r\n\r\n"
        'Reply "No thanks" or STOP and you will be removed.\r\n\r\n--F--\r\n'
    ).encode()
