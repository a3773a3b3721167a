"""The verdicts a reply can get, defined once: the classifier, the watcher, the store and the CLI use these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Kind = Literal["opt-out", "erasure", "auto-reply", "bounce", "complaint", "none", "uncertain"]
VERDICTS: tuple[str, ...] = get_args(Kind)
SUPPRESSING: frozenset[str] = frozenset({"opt-out", "erasure"})  # a person asked: the sender is suppressed


@dataclass(frozen=True)
class Verdict:
    verdict: Kind
    addresses: tuple[str, ...]  # opt-out/erasure/uncertain: the sender; bounce: permanent failures
    evidence: str  # the deciding sentence(s), header or status
    where: str  # "subject", "body line 3", "header Auto-Submitted", "delivery-status"
    language: str | None
    in_reply_to: tuple[str, ...]  # Message-IDs this answers (bounce: also the returned message's)
    temporary_failures: tuple[str, ...] = ()  # bounce: counted, not suppressed
    sender: str = ""
    reason: str = ""  # what the person asks for, or why it went to review
    text: str = ""  # opt-out/erasure/uncertain: what the person wrote (quote and signature removed)

    @property
    def review_note(self) -> str:
        """What a person reviewing the verdict needs: why, the deciding sentence(s), and what
        the person wrote (quote and signature removed), in that order."""
        head = f"{self.reason}: {self.evidence}" if self.reason else self.evidence
        if self.text and self.text.strip() != self.evidence.strip():
            return f"{head}\n{self.text}"
        return head

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
            "text": self.text,
        }
