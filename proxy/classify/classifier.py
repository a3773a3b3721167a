"""Classify a reply to prospecting mail: bounce, auto-reply, erasure, opt-out or nothing.

Pure: bytes in, verdict out.  The order matters: a bounce or an absence notice that
carries our message (and its "reply No thanks" footer) must never read as an opt-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from proxy.classify import mimeparse
from proxy.classify.autoreply import detect_auto_reply
from proxy.classify.bounce import parse_bounce
from proxy.classify.complaints import parse_complaint
from proxy.classify.intent import judge
from proxy.classify.reader import reply_from_message
from proxy.rules.optout import OptoutRules, load_optout_rules

Kind = Literal["opt-out", "erasure", "auto-reply", "bounce", "complaint", "none", "uncertain"]

__all__ = ["Kind", "OptoutRules", "Verdict", "classify", "load_optout_rules"]


@dataclass(frozen=True)
class Verdict:
    verdict: Kind
    addresses: tuple[str, ...]  # opt-out/erasure/uncertain: the sender; bounce: permanent failures
    evidence: str  # the matched phrase, header or status
    where: str  # "subject", "body line 3", "header Auto-Submitted", "delivery-status"
    language: str | None
    in_reply_to: tuple[str, ...]  # Message-IDs this answers (bounce: also the returned message's)
    temporary_failures: tuple[str, ...] = ()  # bounce: counted, not suppressed
    sender: str = ""
    reason: str = ""  # uncertain: why the phrase was not taken at its word

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "addresses": list(self.addresses),
            "evidence": self.evidence,
            "where": self.where,
            "language": self.language,
            "in_reply_to": list(self.in_reply_to),
            "temporary_failures": list(self.temporary_failures),
            "sender": self.sender,
            "reason": self.reason,
        }


def classify(raw: bytes, rules: OptoutRules, footer_fingerprints: Sequence[str] = ()) -> Verdict:
    """Never raises: a message that cannot be read is left for a person to look at."""
    try:
        return _classify(raw, rules, footer_fingerprints)
    except Exception as exc:  # the watcher must keep going whatever arrives
        return Verdict("uncertain", (), "", "", None, (), reason=f"unreadable: {type(exc).__name__}")


def _classify(raw: bytes, rules: OptoutRules, footer_fingerprints: Sequence[str]) -> Verdict:
    msg = mimeparse.parse(raw)
    sender = mimeparse.address(msg, "From")
    refs = mimeparse.message_ids(mimeparse.header(msg, "In-Reply-To") + " " + mimeparse.header(msg, "References"))
    complaint = parse_complaint(msg)
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
    bounce = parse_bounce(msg)
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
    addresses = (sender,) if sender and found.outcome != "none" else ()
    return Verdict(
        found.outcome,
        addresses,
        found.phrase,
        found.where,
        found.language,
        reply.in_reply_to,
        sender=sender,
        reason=found.reason,
    )
