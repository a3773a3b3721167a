"""Notices to the salesperson, in the mail client: put in the INBOX over IMAP, else mailed via the upstream."""

from __future__ import annotations

import email.utils
import logging
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.config.imap import ImapSettings
from proxy.config.secrets import SecretError
from proxy.outbound.spool import Spool, SpoolEntry
from proxy.outbound.upstream import Upstream
from proxy.relay.headers import header_block_end
from proxy.rules.ruleset import SHIPPED_RULES
from proxy.rules.templates import FALLBACK_LANGUAGE, language_problems, template_problems
from proxy.schema import load_file
from proxy.store.reasons import REASONS

if TYPE_CHECKING:
    from proxy.config.settings import Config

log = logging.getLogger("gdpr_proxy.notices")

NOTICE_FILE = "notices.yaml"
OPT_OUT_FOLDER = "GDPR/Opt-out"
NOT_OPT_OUT_FOLDER = "GDPR/Not an opt-out"
# Header naming the pending review entries a summary covers: moving the summary decides them all.
REVIEW_HEADER = "X-GDPR-Proxy-Review"
KIND_HEADER = "X-GDPR-Proxy-Notice"

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "not_sent": ("subject", "date", "count", "delivered", "refused"),
    "dropped_from_queue": ("subject", "date", "count", "refused"),
    "undelivered": ("subject", "date", "count", "failures", "hours"),
    "sender_problem": ("details",),
    "rules_error": ("errors",),
    "uncertain_summary": ("count", "replies", "opt_out_folder", "not_opt_out_folder"),
}
ITEM_PLACEHOLDERS = ("address", "date", "words", "where")
REASON_PLACEHOLDERS = ("address", "date", "why", "domain")


@dataclass(frozen=True)
class NoticeText:
    subject: str
    body: str


@dataclass(frozen=True)
class RefusalTexts:
    """One line per kind of refusal: why a recipient was not sent, or what would change it."""

    opted_out: str
    domain_opted_out: str
    erased: str
    consumer_no_consent: str


@dataclass(frozen=True)
class NoticeLanguage:
    name: str
    from_name: str
    not_sent: NoticeText
    dropped_from_queue: NoticeText
    undelivered: NoticeText
    sender_problem: NoticeText
    rules_error: NoticeText
    uncertain_summary: NoticeText
    uncertain_item: str
    reasons: RefusalTexts
    why: dict[str, str]  # suppression reason -> its words in {why}
    fixes: RefusalTexts

    def check(self) -> Iterable[tuple[str, str]]:
        for kind, names in PLACEHOLDERS.items():
            text: NoticeText = getattr(self, kind)
            for part in ("subject", "body"):
                for problem in template_problems(getattr(text, part), names):
                    yield f"{kind}.{part}", problem
        for problem in template_problems(self.uncertain_item, ITEM_PLACEHOLDERS):
            yield "uncertain_item", problem
        for group in ("reasons", "fixes"):
            for f in fields(RefusalTexts):
                for problem in template_problems(getattr(getattr(self, group), f.name), REASON_PLACEHOLDERS):
                    yield f"{group}.{f.name}", problem
        for reason in REASONS:
            if not self.why.get(reason, "").strip():
                yield f"why.{reason}", "missing: every suppression reason needs its words in this language"
        for reason in sorted(set(self.why) - set(REASONS)):
            yield f"why.{reason}", f"not a suppression reason (known: {', '.join(REASONS)})"


@dataclass(frozen=True)
class NoticeRules:
    languages: dict[str, NoticeLanguage]

    def check(self) -> Iterable[tuple[str, str]]:
        yield from language_problems(self.languages)

    def language(self, code: str) -> NoticeLanguage:
        return self.languages.get(code) or self.languages[FALLBACK_LANGUAGE]


def notice_rules_path(user_rules_dir: Path) -> Path:
    """The user's copy replaces the shipped file, as for every rule file."""
    own = user_rules_dir / NOTICE_FILE
    return own if own.is_file() else SHIPPED_RULES / NOTICE_FILE


def load_notice_rules(user_rules_dir: Path) -> NoticeRules:
    return load_file(notice_rules_path(user_rules_dir), NoticeRules)


@dataclass(frozen=True)
class Refusal:
    """A recipient the relay did not send to, with the facts the notice needs."""

    address: str
    kind: str  # a field of RefusalTexts
    date: str = ""
    reason: str = ""  # the suppression's reason (proxy.store.reasons), told in the notice's language
    domain: str = ""

    def values(self, texts: NoticeLanguage) -> dict[str, str]:
        why = texts.why.get(self.reason, self.reason)
        return {"address": self.address, "date": self.date, "why": why, "domain": self.domain}


def _fill(template: str, values: Mapping[str, object]) -> str:
    return template.format_map({k: str(v) for k, v in values.items()})


def original_subject_and_date(raw: bytes) -> tuple[str, str]:
    """The Subject and Date of a message, decoded, for naming it in a notice."""
    from email.parser import BytesHeaderParser
    from email.policy import default

    header = BytesHeaderParser(policy=default).parsebytes(raw[: header_block_end(raw)])
    try:
        subject = str(header.get("Subject", "") or "")
    except (ValueError, TypeError, IndexError):
        subject = ""
    try:
        moment = email.utils.parsedate_to_datetime(str(header.get("Date", "")))
        date = moment.strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError, IndexError):
        date = ""
    return re.sub(r"\s+", " ", subject).strip() or "(no subject)", date


def refused_lines(texts: NoticeLanguage, refusals: Iterable[Refusal]) -> str:
    lines = []
    for refusal in refusals:
        values = refusal.values(texts)
        lines.append("- " + _fill(getattr(texts.reasons, refusal.kind), values))
        lines.append("  " + _fill(getattr(texts.fixes, refusal.kind), values))
    return "\n".join(lines)


def build_notice(
    texts: NoticeLanguage,
    kind: str,
    values: Mapping[str, object],
    to: str,
    hostname: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """A plain-text message from the relay to its own user."""
    text: NoticeText = getattr(texts, kind)
    message = EmailMessage(policy=SMTP)
    message["From"] = email.utils.formataddr((texts.from_name, to))
    message["To"] = to
    message["Subject"] = _fill(text.subject, values)
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid("notice", domain=hostname or socket.getfqdn())
    message["Auto-Submitted"] = "auto-generated"  # no robot answers it, the watcher never reads it as a reply
    message[KIND_HEADER] = kind
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(_fill(text.body, values) + "\n", charset="utf-8")
    return message.as_bytes()


def is_notice(raw: bytes) -> bool:
    """The relay's own notices carry its header; the watcher leaves them alone."""
    head = raw[: header_block_end(raw)].lower()
    return KIND_HEADER.lower().encode() + b":" in head


class NoticeBox:
    """Queues notices in the durable spool and hands them to the user's mailbox."""

    def __init__(self, config: Config, spool: Spool, upstream: Upstream):
        self.config = config
        self.spool = spool
        self.upstream = upstream
        self.rules = load_notice_rules(config.user_rules_path)
        self.on_queued: Callable[[], None] | None = None  # wakes the retry runner (from any thread)

    @property
    def texts(self) -> NoticeLanguage:
        return self.rules.language(self.config.sender.default_language)

    def own_address(self, mail_from: str = "") -> str | None:
        """Who the notice is for: the message's sender, else the account the relay logs in as."""
        for candidate in (
            mail_from,
            self.config.upstream.username if self.config.upstream else None,
            self.config.imap.username if self.config.imap else None,
        ):
            if candidate and "@" in candidate:
                return candidate
        return None

    def queue(
        self, kind: str, values: Mapping[str, object], mail_from: str = "", headers: Mapping[str, str] | None = None
    ) -> SpoolEntry | None:
        """Write the notice to the spool (fsync); the retry runner delivers it.  None when nobody to tell."""
        to = self.own_address(mail_from)
        if to is None and self.config.imap is None:
            log.warning("notice %s not sent: no address of yours is known (set upstream.username)", kind)
            return None
        if to is None and self.config.imap is not None:
            to = self.config.imap.username  # the notice goes in that mailbox's INBOX
        assert to is not None
        raw = build_notice(self.texts, kind, values, to, self.config.listen.hostname, headers)
        entry = self.spool.put(to, [to], raw, None, is_notice=True)
        log.info("notice %s queued for the sender (queue entry %s)", kind, entry.id)
        if self.on_queued is not None:
            self.on_queued()  # the user should see it now, not at the next retry round
        return entry

    def not_sent(self, mail_from: str, raw: bytes, delivered: list[str], refusals: list[Refusal]) -> SpoolEntry | None:
        subject, date = original_subject_and_date(raw)
        return self.queue(
            "not_sent",
            {
                "subject": subject,
                "date": date,
                "count": len(refusals),
                "delivered": ", ".join(delivered),
                "refused": refused_lines(self.texts, refusals),
            },
            mail_from,
        )

    def dropped_from_queue(self, mail_from: str, raw: bytes, refusals: list[Refusal]) -> SpoolEntry | None:
        subject, date = original_subject_and_date(raw)
        values = {"subject": subject, "date": date, "count": len(refusals)}
        return self.queue("dropped_from_queue", {**values, "refused": refused_lines(self.texts, refusals)}, mail_from)

    def sender_problem(self, details: str) -> SpoolEntry | None:
        """For the bounce reader: a failure caused by the user's own set-up (SPF, DKIM, blocklist...)."""
        return self.queue("sender_problem", {"details": details})

    def rules_error(self, errors: Iterable[object]) -> SpoolEntry | None:
        return self.queue("rules_error", {"errors": "\n".join(f"- {e}" for e in errors)})

    def uncertain_summary(self, verdicts: list[dict[str, Any]]) -> SpoolEntry | None:
        items = [
            _fill(
                self.texts.uncertain_item,
                {
                    "address": v["address"],
                    "date": str(v.get("created_at", ""))[:10],
                    "words": " ".join(str(v.get("evidence", "")).split())[:300],
                    "where": v.get("where_found", ""),
                },
            )
            for v in verdicts
        ]
        values = {
            "count": len(verdicts),
            "replies": "\n\n".join(items),
            "opt_out_folder": OPT_OUT_FOLDER,
            "not_opt_out_folder": NOT_OPT_OUT_FOLDER,
        }
        ids = ",".join(str(v["id"]) for v in verdicts)
        return self.queue("uncertain_summary", values, headers={REVIEW_HEADER: ids})

    async def deliver(self, entry: SpoolEntry, raw: bytes) -> tuple[bool, str]:
        """Put one queued notice (or bounce) where the user reads mail; (done, error)."""
        if self.config.imap is not None:
            try:
                await append_to_inbox(self.config.imap, raw)
            except Exception as exc:  # whatever failed, the notice stays queued and is tried again
                return False, f"IMAP: {_describe(exc)}"
            return True, ""
        result = await self.upstream.deliver(entry.mail_from, entry.recipients, raw, False)
        if result.accepted:
            return True, ""
        code, text = next(iter(result.refused.values()), (451, "no answer"))
        return False, f"{code} {text}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SecretError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "the IMAP server did not answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach the IMAP server: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


async def append_to_inbox(settings: ImapSettings, raw: bytes, folder: str = "INBOX") -> None:
    """APPEND, flagged, on a short connection of its own (the watcher's may be idling)."""
    from proxy.watcher.imap.connection import ImapConnection

    conn = ImapConnection(settings)
    await conn.open()
    try:
        await conn.append(folder, raw, r"(\Flagged)")
    finally:
        await conn.close()
