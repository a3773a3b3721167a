"""Classify a reply to prospecting mail: bounce, auto-reply, erasure, opt-out or nothing.

Pure: bytes in, verdict out.  The order matters: a bounce or an absence notice that
carries our message (and its "reply No thanks" footer) must never read as an opt-out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from proxy.classify import mimeparse
from proxy.classify.autoreply import AutoReply, detect_auto_reply
from proxy.classify.bounce import could_be_report, parse_bounce
from proxy.classify.complaints import parse_complaint
from proxy.classify.intent import auto_reply_phrase, judge
from proxy.classify.model import second_opinion
from proxy.classify.reader import reply_from_message
from proxy.classify.reply_rules import ReplyRules
from proxy.classify.verdicts import Kind, Verdict

__all__ = ["Kind", "ReplyRules", "Verdict", "classify"]

MAX_SHOWN_TEXT = 2000  # of the person's text kept with a verdict for review


def classify(
    raw: bytes, rules: ReplyRules, footer_fingerprints: Sequence[str] = (), *, second_signal: bool = True
) -> Verdict:
    """Never raises: a message that cannot be read is left for a person to look at.
    ``second_signal=False``: the rules alone, without the model (``model.py``; its trainer)."""
    try:
        return _classify(raw, rules, footer_fingerprints, second_signal)
    except Exception as exc:  # the watcher must keep going whatever arrives
        return Verdict("uncertain", (), "", "", None, (), reason=f"unreadable: {type(exc).__name__}")


def _classify(raw: bytes, rules: ReplyRules, footer_fingerprints: Sequence[str], second_signal: bool) -> Verdict:
    msg = mimeparse.parse(raw)
    sender = mimeparse.address(msg, "From")
    refs = mimeparse.message_ids(mimeparse.header(msg, "In-Reply-To") + " " + mimeparse.header(msg, "References"))
    report = could_be_report(msg)
    complaint = parse_complaint(msg) if report else None
    if complaint is not None:  # a feedback loop's report: the person we wrote to pressed "spam"
        ids = tuple(dict.fromkeys(refs + complaint.original_message_ids))
        return Verdict(
            "complaint",
            complaint.recipients,
            complaint.evidence,
            complaint.where,
            None,
            ids,
            sender=sender,
            reason=complaint.feedback_type,
        )
    bounce = parse_bounce(msg, text_only=not report)
    if bounce is not None:
        ids = tuple(dict.fromkeys(refs + bounce.original_message_ids))
        return Verdict(
            "bounce",
            bounce.permanent,
            bounce.evidence,
            bounce.where,
            None,
            ids,
            temporary_failures=bounce.temporary,
            sender=sender,
        )
    subject = mimeparse.header(msg, "Subject")
    auto = detect_auto_reply(msg, subject, rules)
    if auto is not None:
        return Verdict("auto-reply", (), auto.evidence, auto.where, auto.language, refs, sender=sender)
    reply = reply_from_message(msg, footer_fingerprints, rules.quoting)
    found = judge(reply.subject, reply.new_text, rules)
    if found.where != "subject":
        # Absence notices and ticket systems without the headers that say so: their words.
        # Such a notice can say "I do not read my mail", never "remove me"; a request in a
        # sentence about an absence goes to a person, one beside it ("Anna is on leave. Please
        # take her off the list.") stands.
        phrase = auto_reply_phrase(reply.new_text, rules)
        if phrase is not None and (found.outcome == "none" or not found.explicit):
            auto = AutoReply(phrase[0], "body", phrase[1])
            return Verdict("auto-reply", (), auto.evidence, auto.where, auto.language, refs, sender=sender)
        if phrase is not None and found.outcome in ("opt-out", "erasure"):
            # the deciding sentence itself is about an absence ("Estoy de baja hasta el lunes")
            own = auto_reply_phrase(found.evidence, rules)
            if own is not None:
                reason = f"{found.reason}, but the sentence also reads as an absence notice ({own[0]!r})"
                found = dataclasses.replace(found, outcome="uncertain", reason=reason)
        if second_signal:  # wordings no rule lists go to a person, never straight to opt-out
            found, _ = second_opinion(found, reply.new_text, rules)
    addresses = (sender,) if sender and found.outcome != "none" else ()
    return Verdict(
        found.outcome,
        addresses,
        found.evidence,
        found.where,
        found.language,
        reply.in_reply_to,
        sender=sender,
        reason=found.reason,
        text=reply.new_text.strip()[:MAX_SHOWN_TEXT] if found.outcome != "none" else "",
    )
