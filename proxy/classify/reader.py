"""Turn a raw reply into the few facts the watcher needs, chiefly what the person wrote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from proxy.classify import mimeparse
from proxy.classify.htmltext import html_to_text
from proxy.classify.quotes import GENERIC, QuoteRules, strip_quoted, unflow

MAX_NEW_TEXT = 20_000  # opt-outs are short; more text only costs time


@dataclass(frozen=True)
class Reply:
    sender: str  # normalised From address ('' if none)
    subject: str
    new_text: str  # only what the person wrote
    message_id: str | None
    in_reply_to: tuple[str, ...]  # In-Reply-To then References, in order, without <>


def read_reply(raw: bytes, footer_fingerprints: Sequence[str] = (), quoting: QuoteRules | None = None) -> Reply:
    """Read a reply.  ``quoting`` adds the attribution and header-block markers of the
    rules file (see optout_rules.OptoutRules.quoting); without it only language-neutral
    markers (">" quoting, separators, "-- ", English From:/Sent: blocks) are known."""
    return reply_from_message(mimeparse.parse(raw), footer_fingerprints, quoting or GENERIC)


def reply_from_message(msg: Message, footer_fingerprints: Sequence[str] = (), quoting: QuoteRules = GENERIC) -> Reply:
    try:
        new_text = _new_text(msg, footer_fingerprints, quoting)
    except Exception:  # a reply we cannot read is treated as saying nothing
        new_text = ""
    ids = mimeparse.message_ids(mimeparse.header(msg, "Message-ID"))
    refs = mimeparse.message_ids(mimeparse.header(msg, "In-Reply-To") + " " + mimeparse.header(msg, "References"))
    return Reply(
        sender=mimeparse.address(msg, "From"),
        subject=mimeparse.header(msg, "Subject"),
        new_text=new_text[:MAX_NEW_TEXT],
        message_id=ids[0] if ids else None,
        in_reply_to=refs,
    )


def _new_text(msg: Message, footer_fingerprints: Sequence[str], quoting: QuoteRules) -> str:
    plain, html = mimeparse.body_parts(msg)
    if plain is not None:
        text = mimeparse.part_text(plain)
        flowed, delsp = mimeparse.is_flowed(plain)
        if flowed:
            text = unflow(text, delsp)
        new = strip_quoted(text, quoting, footer_fingerprints)
        if new.strip() or html is None:
            return new
    if html is not None:
        return strip_quoted(html_to_text(mimeparse.part_text(html)), quoting, footer_fingerprints)
    return ""
