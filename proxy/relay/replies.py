"""Every SMTP reply the relay gives, with enhanced status codes (RFC 3463).

The texts are what a salesperson sees in the mail client's error box, so they say what
happened and what to do, in plain words and in ASCII (clients show nothing else reliably).
"""

from __future__ import annotations

import re

from proxy.store import Suppression
from proxy.store.reasons import REASON_WORDS

BARE_EOL_IN_HEADER = (
    "550 5.6.0 Message refused: its header has a bare CR or LF line ending, which could hide an extra header; not sent"
)
NUL_IN_HEADER = (
    "550 5.6.0 Message refused: its header contains a NUL byte, which mail software may read "
    "as the end of the line; not sent"
)
NUL_IN_BODY = (
    "550 5.6.0 Message refused: it contains a NUL byte, which mail cannot carry (servers cut or refuse it); "
    "not sent: attach binary data as a file"
)
STORE_UNAVAILABLE = "451 4.3.0 Opt-out list cannot be read right now; not sent: send it again in a few minutes"
INTERNAL_ERROR = "451 4.3.0 Internal error in the relay; not sent: send it again, and see gdpr-proxy status"
QUEUE_UNAVAILABLE = (
    "451 4.3.0 Your mail server cannot take the message now and the relay cannot write it to its queue "
    "(disk full?); not sent: send it again later"
)
QUEUE_FULL = (
    "452 4.3.1 The relay's queue is full or cannot be written (disk full?); nothing was sent: "
    "send it again later, and see gdpr-proxy status"
)
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients for one message; send the rest in another message"
SIGNED_REFUSED = (
    "554 5.7.0 Signed or encrypted message refused by policy: the disclosure footer cannot be added "
    "without breaking the signature; send it unsigned"
)
UNMODIFIABLE_REFUSED = (
    "554 5.6.0 Message structure too broken to add the disclosure footer safely; "
    "not sent (policy unmodifiable_messages: refuse)"
)


def ascii_text(text: str) -> str:
    """Reply text must be one ASCII line."""
    text = re.sub(r"[\r\n\t]+", " ", text)
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)  # a NUL shown, never sent
    return text.encode("ascii", "backslashreplace").decode("ascii").strip()


def opted_out(address: str, entry: Suppression) -> str:
    why = REASON_WORDS.get(entry.reason, entry.reason)
    if entry.kind == "domain":
        what = f"the whole domain {entry.value} opted out on {entry.date} ({why})"
    elif entry.kind == "hash":
        what = f"recipient asked to be forgotten on {entry.date}"
    else:
        what = f"recipient opted out on {entry.date} ({why})"
    return ascii_text(f"550 5.7.1 <{address}>: {what}; not sent")


def consumer_without_consent(address: str, domain: str) -> str:
    return ascii_text(
        f"550 5.7.1 <{address}>: {domain} is a consumer mail provider and no marketing consent is "
        f"recorded; cold e-mail to private persons needs prior consent. Not sent "
        f"(record consent: gdpr-proxy consent {address} --marketing granted)"
    )


SEVERAL_RECIPIENTS_REFUSED = (
    "554 5.7.1 Message refused by policy several_recipients: cold e-mail goes to one person at a time; "
    "send one message per recipient"
)


UTF8_ADDRESS_NEEDS_SMTPUTF8 = (
    "553 5.6.7 An address with non-ASCII characters needs SMTPUTF8 (RFC 6531), which your mail program "
    "did not ask for; not sent"
)
UTF8_ADDRESS_NOT_SUPPORTED = (
    "553 5.6.7 Your mail server cannot take addresses with non-ASCII characters (no SMTPUTF8); not sent"
)


def invisible_character(address: str, char: str) -> str:
    """An address with a control or invisible character (NUL, zero-width space, bidi control)."""
    return ascii_text(
        f"553 5.1.3 <{address}>: contains the invisible or control character U+{ord(char):04X}, "
        "which no mail server accepts; check the address (copied from a web page?)"
    )


def bad_address(address: str, problem: str) -> str:
    return ascii_text(f"553 5.1.3 <{address}>: {problem}")


def accepted(delivered: int, queued: int = 0, bounced: int = 0, captured: bool = False) -> str:
    if captured:
        return f"250 2.0.0 Captured for {delivered} recipient(s), not sent (capture mode)"
    text = f"250 2.0.0 Sent to {delivered} recipient(s)"
    if queued:
        text += f"; {queued} held for retry by the relay"
    if bounced:
        text += f"; {bounced} refused by your server, you will get a bounce"
    return text


def partly_sent(delivered: int, queued: int, lost: list[str]) -> str:
    """Some copies went out, others could be neither sent nor queued: the truth, never "not sent"."""
    shown = ", ".join(f"<{a}>" for a in lost[:3]) + (" ..." if len(lost) > 3 else "")
    held = f", {queued} held for retry" if queued else ""
    return ascii_text(
        f"250 2.0.0 Sent to {delivered} recipient(s){held}; NOT sent to {shown}: the relay's queue could not be "
        "written (disk full?). Send it again to those recipients only"
    )


def upstream_failure(code: int, message: str) -> str:
    """Pass the upstream server's answer through, marked as coming from it."""
    if not 400 <= code < 600:
        code = 451
    enhanced = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})\s+", message)
    status = enhanced.group(1) if enhanced else ("4.4.0" if code < 500 else "5.0.0")
    if enhanced:
        message = message[enhanced.end() :]
    status = f"{code // 100}{status[1:]}"  # the class digit must agree with the reply code
    return ascii_text(f"{code} {status} Your mail server answered: {message}")


def queued(unreachable: bool, count: int, captured: bool = False) -> str:
    """Nothing went out yet, everything is in the relay's durable queue: the client may forget it."""
    if unreachable:
        return "250 2.0.0 Queued: your mail server is unreachable; it will be sent when it is back"
    return f"250 2.0.0 Queued for {count} recipient(s): your mail server asked to try later; the relay will retry"


def recipient_noted(address: str, check: str) -> str:
    """RCPT of a recipient who will not get the message: the sender learns it in a notice."""
    why = "opted out" if check == "suppression" else "no marketing consent"
    return ascii_text(f"250 2.1.5 <{address}> noted, but it will not be sent there ({why}); you will get a notice")


def all_refused(reasons: list[str]) -> str:
    """Every recipient refused: the client shows this, and nobody gets the message."""
    texts = [r.split(" ", 2)[2] if r[:3].isdigit() else r for r in reasons]
    text = "Not sent to anyone: " + " | ".join(t.removesuffix("; not sent").removesuffix(". Not sent") for t in texts)
    return ascii_text("550 5.7.1 " + text)[:500]


def provenance_missing(what: str, addresses: list[str]) -> str:
    """Policy missing_source / missing_reason: refuse (rules/footers.yaml)."""
    field = "source" if what == "source" else "reason (or role)"
    shown = ", ".join(f"<{a}>" for a in addresses[:3]) + (" ..." if len(addresses) > 3 else "")
    return ascii_text(
        f"550 5.7.0 {shown}: no {field} recorded for this first contact, and the disclosure footer must "
        f"say it (policy missing_{what}: refuse). Not sent: import the contact with a {what}, then send again"
    )
