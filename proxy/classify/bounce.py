"""Read delivery failures: which recipient failed, why (bounce_reasons), and on what evidence.

RFC 3464 reports are read field by field; provider JSON notices (Amazon SES) by their keys;
plain-text notices of servers that send no report (Exim, qmail, Sendmail, Exchange, Gmail,
Domino, hosters) by their wording.  Addresses are taken from the report or the explanation
only, never from the returned copy of our message, which carries the prospect's address in
To: and our footer with "No thanks" in its body.  The address we wrote to is preferred:
Original-Recipient before Final-Recipient; a notice with no address at all still names the
returned message's Message-ID, which the watcher looks up among the relayed messages.
"""

from __future__ import annotations

import binascii
import dataclasses
import quopri
import re
from dataclasses import dataclass
from email.message import Message

from proxy.classify import mimeparse
from proxy.classify.bounce_reasons import (
    FailureReason,
    classify_failure,
    classify_wording,
    find_status,
    passing_trouble,
)
from proxy.classify.complaints import json_notices, member, notice_kind, notice_message_ids
from proxy.classify.htmltext import html_to_text
from proxy.rules.bounces import BounceRules, shipped_bounce_rules

# What could_be_report looks for
_JSON_OBJECT = re.compile(r"\{\s*\"")  # where a provider's JSON notice could start
_REPORT_FIELD = re.compile("final-recipient", re.IGNORECASE)  # a delivery report written as text
_JSON_SCAN = 2000  # how far into a part a JSON notice is looked for


def _has_report_field(text: str) -> bool:
    """_REPORT_FIELD found in text; a case-blind search tries every position of a long part,
    so the "-r" or "-R" every match holds is looked for first."""
    return ("-r" in text or "-R" in text) and _REPORT_FIELD.search(text) is not None


_ADDRESS = re.compile(
    r"(?:\"[^\"@\s]{1,64}\"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_PREFIX = re.compile(r"^(smtp|rfc822|mailto|sip|x400|ex)[=:;]", re.IGNORECASE)
_DAEMONS = ("mailer-daemon", "postmaster", "post_master", "mail-daemon", "mailerdaemon", "maildaemon", "daemon")
# Local parts of the people a notice tells you to write to, never the failed recipient.
_HELP_DESKS = (
    "abuse",
    "admin",
    "administrator",
    "help",
    "helpdesk",
    "hostmaster",
    "it-support",
    "noc",
    "root",
    "security",
    "support",
    "webmaster",
    "bounce",
    "bounces",
    "no-reply",
    "noreply",
    "double-bounce",
)
_DAEMON_NAMES = ("mail delivery subsystem", "mail delivery system", "mail delivery service", "mailer-daemon")
_SUBJECTS = (
    "undelivered mail",
    "undeliverable",
    "undeliverd",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "failure notice",
    "failure delivery",
    "returned mail",
    "delivery has failed",
    "delivery failed",
    "could not be delivered",
    "mail failed",
    "returning to sender",
    "not delivered",
    "non-delivery",
    "nondeliverable",
    "mail system error",
    "delivery problem",
    "delivery notification",
    "warning: could not send",
    "nicht zustellbar",
    "non remis",
    "unzustellbar",
    "no se puede entregar",
    "non recapitabile",
    "error sending message",
    "error sending your",
    "mail failure",
    "mail returned",
    "bounced mail",
    "delivery report",
)
# Wording of notices that is never found in a person's mail.
_TEXT_MARKERS = (
    "this message was created automatically by mail delivery software",
    "this is the qmail-send program",
    "this is the mail delivery agent",
    "this is the mail system at host",
    "delivery has failed to these recipients",
    "your message couldn't be delivered",
    "couldn't be delivered.",
    "wasn't found at",
    "diagnostic information for administrators",
    "your message wasn't delivered",
    "your message could not be delivered",
    "message could not be delivered",
    "address not found",
    "i'm sorry to have to inform you that your message could not",
    "the following addresses had permanent fatal errors",
    "could not be delivered to one or more recipients",
    "delivery to the following recipient",
    "delivery to the following recipients failed",
    "the following message to <",
    "unable to deliver your message",
    "message you sent",
    "was not delivered to",
    "could not be delivered to",
    "undeliverable",
    "undelivered mail returned to sender",
    "permanent error",
    "permanent failure",
    "delivery failure",
    "failed to deliver",
    "did not reach the following recipient",
    "the original message was received",
    "die zustellung an folgende empfänger oder gruppen ist fehlgeschlagen",
    "la remise a échoué pour ces destinataires",
)
# Where the explanation ends and the returned copy of our message begins.
_COPY_START = re.compile(
    r"^.{0,40}(this is a copy of the message|below this line is a copy of the message|"
    r"original message headers|original message follows|-+ ?original message ?-+|"
    r"-+ ?returned message ?-+|the original message was included as attachment|"
    r"-+ ?(start|beginning) of (the )?(returned|original|forwarded) message|"
    r"-+ ?(the )?(original|returned) message (is )?(follows|below)|"
    r"-+ ?(message|original) headers? ?-+|"
    r"--- below this line is a copy|----- original message -----|"
    r"content-type: message/rfc822)"
    r"|^(received|return-path|dkim-signature|x-[\w-]+|message-id|mime-version): .",
    re.IGNORECASE | re.MULTILINE,
)
# Lines whose addresses are never the failed recipient: headers, transcripts of our own
# commands, the notice's invitations to write to someone, suggestions for a typo.
_SKIP_LINE = re.compile(
    r"^\s*(>(?!>>)|\|)|^\s*(message-id|in-reply-to|references|from|reply-to|sender|return-path|to|cc|bcc|subject)\s*:"
    r"|mail from|helo|ehlo|did you mean|you meant|perhaps you|probably meant|suggest|"
    r"contact (the |your )?(postmaster|administrator|helpdesk|help desk|support|system administrator|admin)|"
    r"please (contact|write|send|notify|e-?mail)|for (further )?(assistance|help|more information)|"
    r"if you (have|need|think|believe)|report this|envelope-from|original sender|sent by",
    re.IGNORECASE,
)
# Warnings that the server keeps trying: nothing has failed yet.
_DELAY_WORDS = re.compile(
    r"has not (yet )?been delivered|not been delivered yet|will (continue to )?(be )?retr(y|ied)|"
    r"delivery (status notification|notification)? ?\(delay\)|warning: (could not send|message .* delayed)|"
    r"is delayed|been delayed|still trying|will keep trying|no action is required on your part",
    re.IGNORECASE,
)
# "could not be delivered", "did not receive a copy", "was not delivered": a server's words.
_NOT_DELIVERED = re.compile(
    r"\b(could ?not|couldn't|cannot|can't|unable to|failed to|did not|didn't)\s+(be\s+)?"
    r"(deliver|delivered|reach|receive a copy)\b|\b(was|were|has|have|had)\s*(not|n't)\s+(been\s+)?delivered\b"
)
_ADDRESS_LINE = re.compile(r"^[ \t]*<[^<>\s@]+@[^<>\s]+>:", re.MULTILINE)
_ANSWERED = re.compile(r"\s*(re|aw|sv|vs|odp|antw|wg|fw|fwd|tr|rif|r)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_STATUS_ANY = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])|(?<![\d.\w])[45]\d\d(?=[ -])")
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SEGMENT = 800  # how far after an address its explanation reaches


@dataclass(frozen=True)
class Failure:
    address: str  # the recipient this notice names ('' when it names none)
    reason: FailureReason
    final_recipient: str = ""
    original_recipient: str = ""
    diagnostic: str = ""

    @property
    def category(self) -> str:
        return self.reason.category


@dataclass(frozen=True)
class Bounce:
    failures: tuple[Failure, ...]
    where: str  # "delivery-status", "bounce text" or "provider notice"
    original_message_ids: tuple[str, ...]  # Message-ID of our returned message, if included
    reporter: str = ""  # Reporting-MTA or the notice's sender

    @property
    def evidence(self) -> str:
        return self.failures[0].reason.evidence if self.failures else f"{self.where} without a failure"

    @property
    def permanent(self) -> tuple[str, ...]:
        """Recipients that are gone: the only ones suppressed."""
        return tuple(dict.fromkeys(f.address for f in self.failures if f.address and f.reason.suppresses))

    @property
    def temporary(self) -> tuple[str, ...]:
        """Recipients whose failure may pass (full mailbox, greylisting, delays): counted."""
        gone = set(self.permanent)
        return tuple(
            dict.fromkeys(
                f.address
                for f in self.failures
                if f.address and f.category in ("temporary", "mailbox-full") and f.address not in gone
            )
        )

    @property
    def sender_side(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.category == "sender-side")


def we_wrote_to(failure: Failure, relayed: list[str], bounce: Bounce) -> str:
    """The failed address we wrote to: Original-Recipient, the relayed message's record, Final-Recipient, the text.

    ``relayed`` lists the (normalised) recipients our relay recorded for the returned message.
    '' when nothing says which of several recipients failed.
    """
    if failure.original_recipient:
        return failure.original_recipient
    named = failure.final_recipient or failure.address
    if relayed:
        if named in relayed:
            return named
        if len(relayed) == 1 and len(bounce.failures) == 1:
            return relayed[0]  # forwarded or aliased on the way: the one we wrote to
    return named


def parse_bounce(msg: Message, rules: BounceRules | None = None, *, text_only: bool = False) -> Bounce | None:
    """The failures a delivery notice reports, or None if the message is not one.

    ``text_only``: only a server's plain text notice is looked for, as for a message that
    could_be_report turned down."""
    rules = rules or shipped_bounce_rules()
    try:
        if text_only:
            return _text_bounce(msg, rules)
        return _json_bounce(msg, rules) or _dsn(msg, rules) or _text_bounce(msg, rules)
    except Exception:  # a damaged notice is still better ignored than fatal
        return None


def could_be_report(msg: Message) -> bool:
    """Whether the complaint and bounce readers could find a report beyond a server's plain
    text notice: an enclosed or report part, a JSON notice, a delivery report written as text,
    or a client's one-click unsubscribe header.  A person's reply has none of these, and is
    spared the readers' walks through every part."""
    if mimeparse.header(msg, "X-Apple-Unsubscribe"):
        return True
    try:
        parts = list(msg.walk())
    except Exception:
        return True  # a structure the readers may still make sense of
    text_before = False  # the text readers take an HTML part's words only when no text came before it
    for part in parts:
        ctype = part.get_content_type()
        if ctype.startswith("message/") or ctype == "text/rfc822-headers":
            return True
        if part.is_multipart() or part.get_content_maintype() not in ("text", "application", "multipart"):
            continue  # the readers look for notices in text, JSON and mislabelled multipart parts only
        text = mimeparse.part_text(part)
        if _JSON_OBJECT.search(text[:_JSON_SCAN]) or _has_report_field(text):
            return True
        if ctype == "text/html" and not text_before and _has_report_field(html_to_text(text)):
            return True
        text_before = text_before or ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    return False


def _walk(msg: Message) -> list[Message]:
    try:
        return list(msg.walk())
    except Exception:
        return [msg]


def clean_address(value: str) -> str:
    """An address from a report field or a line of text: no type prefix, brackets or quotes."""
    value = value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    value = _PREFIX.sub("", value.strip().strip("<>' "))
    m = _ADDRESS.search(_PREFIX.sub("", value))
    if not m:
        return ""
    addr = _PREFIX.sub("", m.group()).lower().rstrip(".")
    return addr if "@" in addr else ""


def original_ids(msg: Message) -> tuple[str, ...]:
    ids: list[str] = []
    for part in _walk(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids.extend(mimeparse.message_ids(mimeparse.header(inner, "Message-ID")))
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            inner = mimeparse.parse(mimeparse.part_text(part).encode("utf-8", "replace"))
            ids.extend(mimeparse.message_ids(mimeparse.header(inner, "Message-ID")))
    if not ids:
        # Notices that quote the returned message as text: its Message-ID line after the explanation
        plain, _ = mimeparse.body_parts(msg)
        text = mimeparse.part_text(plain) if plain is not None else ""
        for m in re.finditer(r"^\s*>?\s*message-id:\s*(<[^<>\s]+>)", text, re.IGNORECASE | re.MULTILINE):
            ids.extend(mimeparse.message_ids(m.group(1)))
    return tuple(dict.fromkeys(ids))


# --- RFC 3464 reports ---------------------------------------------------------------------


def _report_text(part: Message) -> str:
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if isinstance(payload, list):
        text = "\n".join(str(b) for b in payload if isinstance(b, Message))
    else:
        text = str(payload)
    if encoding in ("base64", "quoted-printable"):
        try:
            raw = text.encode("ascii", "ignore")
            data = binascii.a2b_base64(raw) if encoding == "base64" else quopri.decodestring(raw)
            text = mimeparse.decode_bytes(data, "utf-8")
        except (binascii.Error, ValueError):
            return ""
    return text


_FIELD = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_KNOWN_FIELDS = (
    *_RECIPIENT_FIELDS,
    "action",
    "status",
    "diagnostic-code",
    "remote-mta",
    "reporting-mta",
    "last-attempt-date",
    "will-retry-until",
    "x-supplementary-info",
    "x-display-name",
)


def report_blocks(text: str) -> list[dict[str, str]]:
    """Per-recipient field groups of a delivery-status text (blank lines may be missing)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if any(k in current for k in _RECIPIENT_FIELDS):
                blocks.append(current)
                current = {}
            last = ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] = f"{current[last]} {line.strip()}"
            continue
        m = _FIELD.match(line)
        if not m:
            last = ""
            continue
        name, value = m.group(1).lower(), m.group(2).strip()
        if name not in _KNOWN_FIELDS:
            last = ""
            continue
        if (name in _RECIPIENT_FIELDS and name in current) or (
            name in ("action", "status", "diagnostic-code") and name in current and "final-recipient" in current
        ):
            blocks.append(current)
            current = {}
        current[name] = value
        last = name
    if any(k in current for k in _RECIPIENT_FIELDS):
        blocks.append(current)
    return blocks


def _dsn(msg: Message, rules: BounceRules) -> Bounce | None:
    reports = [p for p in _walk(msg) if p.get_content_type() in _DSN_TYPES]
    text = "\n\n".join(_report_text(p) for p in reports)
    explanation = _explanation(msg)
    if not reports:
        # Reports written into the text part (no message/delivery-status part)
        if not re.search(r"^\s*final-recipient\s*:", explanation, re.IGNORECASE | re.MULTILINE):
            return None
        text = explanation
    reporter = ""
    m = re.search(r"^reporting-mta\s*:\s*(?:dns;)?\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
    if m:
        reporter = m.group(1)
    failures: list[Failure] = []
    for block in report_blocks(text):
        final = clean_address(block.get("final-recipient", "") or block.get("x-actual-recipient", ""))
        original = clean_address(block.get("original-recipient", ""))
        address = original or final
        if not address:
            continue
        action = block.get("action", "")
        status = block.get("status", "")
        diagnostic = block.get("diagnostic-code", "")
        diagnostic = remote_reply(diagnostic)
        near = _near(explanation, {address, final} - {""})
        reason = classify_failure(status, diagnostic or near, rules, action, context=near or explanation)
        if reason is None:
            continue  # delivered, relayed, expanded: not a failure
        failures.append(Failure(address, reason, final, original, (diagnostic or near)[:300]))
    if len(failures) == 1 and failures[0].reason.suppresses:
        # The prose of a notice about one recipient must not contradict its report
        trouble = passing_trouble(explanation, rules)
        if trouble is not None:
            failures[0] = dataclasses.replace(
                failures[0], reason=dataclasses.replace(trouble, status=failures[0].reason.status)
            )
    if not failures:
        # No usable recipient field (e.g. "Final-Recipient: rfc822; @host"): the notice's text may name it
        text_bounce = _text_bounce(msg, rules)
        if text_bounce is not None and text_bounce.failures:
            return text_bounce
        if not reports:
            return None
    # A report part with nothing readable is still machine mail: never read as someone's words.
    return Bounce(tuple(failures), "delivery-status", original_ids(msg), reporter)


_RELABELLED = re.compile(
    r"^\s*[245]\.\d{1,3}\.\d{1,3} - [\w ]{3,60}\(?[^'\"]{0,40}['\"](.+?)['\"]?\s*(\(delivery attempts: \d+\))?\s*$"
)


def remote_reply(diagnostic: str) -> str:
    """The remote server's own words in a Diagnostic-Code, without the reporter's relabelling."""
    if ";" in diagnostic[:12]:
        diagnostic = diagnostic.split(";", 1)[1].strip()
    # Amazon SES writes "5.1.0 - Unknown address error 550-'<the remote reply>'"
    m = _RELABELLED.match(diagnostic)
    return m.group(1) if m and find_status(m.group(1)) else diagnostic


# --- provider JSON notices ----------------------------------------------------------------


def _json_bounce(msg: Message, rules: BounceRules) -> Bounce | None:
    for notice in json_notices(msg):
        if notice_kind(notice) not in ("bounce", "delivery"):
            continue
        kind = notice_kind(notice)
        body = member(notice, kind)
        failures: list[Failure] = []
        people = body.get("bouncedRecipients") or body.get("recipients") or []
        bounce_type = str(body.get("bounceType") or "").lower()
        for person in people:
            if isinstance(person, str):
                person = {"emailAddress": person}
            if not isinstance(person, dict):
                continue
            address = clean_address(str(person.get("emailAddress") or ""))
            if not address:
                continue
            status = str(person.get("status") or "")
            diagnostic = remote_reply(str(person.get("diagnosticCode") or body.get("smtpResponse") or ""))
            action = str(person.get("action") or ("delivered" if kind == "delivery" else ""))
            if bounce_type == "transient" and not status.startswith("4"):
                status = "4" + status[1:] if status[:1] == "5" else "4.0.0"
            reason = classify_failure(status, diagnostic, rules, action)
            if reason is not None:
                failures.append(Failure(address, reason, address, "", diagnostic[:300]))
        return Bounce(tuple(failures), "provider notice", notice_message_ids(notice), "provider notice")
    if any(notice_kind(n) != "complaint" for n in json_notices(msg)):
        # Deliveries, sends, opens: a machine's notice, never someone's words (it carries "Unsubscribe" links)
        return Bounce((), "provider notice", (), "provider notice")
    return None


# --- plain-text notices -------------------------------------------------------------------


def _explanation(msg: Message) -> str:
    """The notice's own words: its first text part, up to where the returned copy starts."""
    texts: list[str] = []
    for part in _walk(msg):
        ctype = part.get_content_type()
        if part.is_multipart():
            continue
        if ctype in _DSN_TYPES or ctype.startswith("message/") or ctype == "text/rfc822-headers":
            if ctype.startswith("message/") and ctype not in _DSN_TYPES:
                break  # everything after the returned message is not the notice
            continue
        if ctype == "text/plain" or (ctype.startswith("multipart/") and not texts):
            texts.append(mimeparse.part_text(part))  # a multipart whose boundary is wrong reads as text
        elif ctype == "text/html" and not texts:
            texts.append(html_to_text(mimeparse.part_text(part)))
        if len(texts) >= 2:
            break
    text = "\n".join(texts)
    cut = _COPY_START.search(text)
    return text[: cut.start()] if cut else text


def _near(text: str, addresses: set[str]) -> str:
    """The explanation the notice gives next to one of the addresses."""
    if not text or not addresses:
        return ""
    lowered = text.lower()
    pieces: list[str] = []
    for addr in addresses:
        start = 0
        while True:
            i = lowered.find(addr, start)
            if i < 0:
                break
            line_start = lowered.rfind("\n", 0, i) + 1
            pieces.append(text[line_start : i + len(addr) + _SEGMENT])
            start = i + len(addr)
    return "\n".join(pieces)[:4000]


# A segment ends at a blank line, a section rule, a new SMTP session, or Sendmail's next
# "CODE who... what" line: each of those is about another recipient or host.
_SEGMENT_END = re.compile(
    r"\n\s*\n|\n\s*(while talking to|-{3,}|={3,})|\n(?=[ \t]*[245]\d\d [^\n]{1,80}?\.\.\. )", re.IGNORECASE
)


def _segment(text: str, pos: int, others: list[int]) -> str:
    """The lines about the address at pos: up to a blank line, a section rule or another address."""
    line_start = text.rfind("\n", 0, pos) + 1
    end = min([p for p in others if p > pos] + [pos + _SEGMENT, len(text)])
    stop = _SEGMENT_END.search(text, pos, end)
    if stop is not None:
        end = stop.start()
    else:
        # a following address's line belongs to that address
        nxt = min([p for p in others if p > pos], default=None)
        if nxt is not None and nxt < end + 1:
            end = max(line_start, text.rfind("\n", 0, nxt))
    return text[line_start:end]


_QUOTED_HEADER = re.compile(r"^[ \t>]*(from|to|cc|subject|date|sent)[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def _sole_returned_recipient(msg: Message) -> str:
    """The only recipient of the returned copy quoted as text ("From: ... To: ... Subject:"),
    when that copy was sent by the person the notice goes back to; '' otherwise."""
    user = mimeparse.address(msg, "To")
    plain, _ = mimeparse.body_parts(msg)
    if not user or plain is None:
        return ""
    fields: dict[str, list[str]] = {}
    last = -1
    for m in _QUOTED_HEADER.finditer(mimeparse.part_text(plain)):
        if last >= 0 and m.start() - last > 2:
            fields = {}  # only consecutive header lines make up the quoted copy's header block
        fields.setdefault(m.group(1).lower(), []).append(m.group(2))
        last = m.end()
        if len(fields) >= 3 and "from" in fields and "to" in fields:
            break
    if len(fields) < 3 or "from" not in fields or "to" not in fields:
        return ""
    senders = {clean_address(a.group()) for v in fields["from"] for a in _ADDRESS.finditer(v)}
    recipients = {
        clean_address(a.group()) for k in ("to", "cc") for v in fields.get(k, []) for a in _ADDRESS.finditer(v)
    }
    recipients.discard("")
    if senders != {user} or len(recipients) != 1:
        return ""
    return recipients.pop()


def _help_desk(addr: str) -> bool:
    local = addr.split("@")[0]
    return local in _DAEMONS or local in _HELP_DESKS or local.startswith(("mailer-daemon", "postmaster"))


def _text_bounce(msg: Message, rules: BounceRules) -> Bounce | None:
    sender = mimeparse.address(msg, "From")
    name = mimeparse.display_name(msg, "From").lower()
    subject = mimeparse.header(msg, "Subject").lower()
    local = sender.split("@")[0]
    from_daemon = (
        local in _DAEMONS
        or local.startswith(("mailer-daemon", "postmaster", "mail-daemon"))
        or any(n in name for n in _DAEMON_NAMES)
        or (not sender and "mailer-daemon" in mimeparse.header(msg, "From").lower())
    )
    # "Warning: jan@... - User unknown!": a subject that says why is a notice's subject too
    subject_hit = any(s in subject for s in _SUBJECTS) or (
        not _ANSWERED.match(subject) and (classify_wording(subject, rules) or ("",))[0] == "recipient-gone"
    )
    null_sender = mimeparse.header(msg, "Return-Path").strip() in ("<>", "") and bool(
        mimeparse.header(msg, "X-Failed-Recipients") or from_daemon
    )
    failed_header = mimeparse.header(msg, "X-Failed-Recipients")
    if not (from_daemon or subject_hit or null_sender or failed_header):
        return None  # every server's notice shows one of these; replies are spared the body scan
    text = _explanation(msg)
    lowered = text.lower().replace("’", "'")
    marker = (
        any(m in lowered for m in _TEXT_MARKERS)
        or _NOT_DELIVERED.search(lowered) is not None
        or (from_daemon and _ADDRESS_LINE.search(text) is not None)  # qmail and Postfix: "<jan@firma.example>:"
    )
    if not marker and not failed_header and not (from_daemon and (subject_hit or _STATUS_ANY.search(text))):
        # A server with a name of its own ("imss@", "MDaemon@") still tells why in the words
        # mail operators use; a person's answer ("Re: ...") is never read that way.
        if not (subject_hit or from_daemon) or _ANSWERED.match(subject):
            return None
        if not (_STATUS_ANY.search(text) and subject_hit) and classify_wording(text, rules) is None:
            return None
    ignore = {sender, mimeparse.address(msg, "To"), mimeparse.address(msg, "Reply-To")} - {""}
    action = "delayed" if _DELAY_WORDS.search(subject) or _DELAY_WORDS.search(text[:3000]) else "failed"
    found: list[tuple[str, int]] = []
    desks: list[tuple[str, int]] = []
    for m in _ADDRESS.finditer(text):
        addr = clean_address(m.group())
        if not addr or addr in ignore:
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        before = text[max(line_start, m.start() - 40) : m.start()].lower()
        if re.fullmatch(r"\s*>\s*<?\S+@\S+?>?\s*", line):
            pass  # a list of failed addresses set off with ">", not a quoted header
        elif _SKIP_LINE.search(line) and not re.search(
            r"rcpt to|recipient|to:<|to: <|failed|error|<\S+@\S+>:", line, re.IGNORECASE
        ):
            continue
        if re.search(r"((?<!generated )from|sender|sent by|envelope-from)\s*[:=]?\s*<?$", before):
            continue
        (desks if _help_desk(addr) else found).append((addr, m.start()))
    if not found:
        found = desks  # a notice about mail to a postmaster address names only that one
    for addr in (clean_address(a) for a in failed_header.split(",")):
        if addr and all(a != addr for a, _ in found):
            found.insert(0, (addr, -1))
    failures: list[Failure] = []
    distinct = dict.fromkeys(a for a, _ in found)
    # The notice's summary speaks for its only address; with several, each has its own lines.
    summary = text if len(distinct) == 1 else ""
    for addr in distinct:
        segments = [
            _segment(text, pos, [p for a, p in found if a != addr])
            for other, pos in found
            if other == addr and pos >= 0
        ]
        segment = "\n".join(segments)
        reason = classify_failure(find_status(segment), segment, rules, action, context=summary)
        if reason is None:
            continue
        failures.append(Failure(addr, reason, "", "", " ".join(segment.split())[:300]))
    if not failures:
        # A notice with no address at all: the returned message's ID lets the watcher find it,
        # or else the one recipient of the copy it quotes, when that copy is the user's own mail
        ids = original_ids(msg)
        sole = "" if ids else _sole_returned_recipient(msg)
        if not ids and not sole:
            return None
        reason = classify_failure(find_status(text), text, rules, action)
        if reason is None:
            return None
        return Bounce((Failure(sole, reason, "", "", " ".join(text.split())[:300]),), "bounce text", ids, sender)
    return Bounce(tuple(failures), "bounce text", original_ids(msg), sender)
