"""Why a delivery failed, read like a mail operator reads it: status code and wording to a category."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.rules.bounces import BounceRules, Category

# RFC 3463 enhanced status codes; Sisimai-style pseudo codes (5.0.9xx) never occur in real mail.
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<![\d.\w-])([45])[0-5]\d(?=[\s-]|$)")
_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'"})
_MAX_TEXT = 4000  # an explanation longer than this is a copy of the message, not the reason

# Subject.detail of RFC 3463 (and the registry of RFC 5248) that settle the category alone.
_DETAILS: dict[str, tuple[Category, str]] = {
    "1.1": ("recipient-gone", "user-unknown"),
    "1.2": ("recipient-gone", "host-unknown"),
    "1.3": ("recipient-gone", "bad-address"),
    "1.6": ("recipient-gone", "moved"),
    "1.10": ("recipient-gone", "null-mx"),
    "1.7": ("sender-side", "sender-address"),
    "1.8": ("sender-side", "sender-address"),
    "2.1": ("recipient-gone", "disabled"),
    "2.2": ("mailbox-full", "mailbox-full"),
    "2.3": ("recipient-policy", "message-too-big"),
    "3.4": ("recipient-policy", "message-too-big"),
    "4.4": ("recipient-gone", "host-unknown"),
    "4.7": ("temporary", "expired"),
    "7.8": ("sender-side", "authentication"),
    "7.9": ("sender-side", "authentication"),
    "7.11": ("sender-side", "authentication"),
    "7.14": ("sender-side", "authentication"),
    "7.13": ("recipient-gone", "disabled"),
    "7.17": ("recipient-gone", "moved"),
    "7.18": ("sender-side", "relaying-denied"),
    "7.20": ("sender-side", "dkim"),
    "7.21": ("sender-side", "dkim"),
    "7.22": ("sender-side", "dkim"),
    "7.23": ("sender-side", "spf"),
    "7.24": ("sender-side", "spf"),
    "7.25": ("sender-side", "reverse-dns"),
    "7.26": ("sender-side", "dmarc"),
    "7.27": ("sender-side", "sender-address"),
}
# Subjects whose other details say enough: system, network, content, security or policy.
_SUBJECTS: dict[str, tuple[Category, str]] = {
    "3": ("temporary", "system"),
    "4": ("temporary", "network"),
    "6": ("recipient-policy", "content"),
    "7": ("recipient-policy", "policy"),
}


# Wordings that settle a failure even when the server that gave up reported a 4.x.x code.
_DEFINITIVE = ("no-such-user", "null-mx")


@dataclass(frozen=True)
class FailureReason:
    category: Category
    reason: str
    evidence: str  # status and matched wording, as shown to the user and stored with a suppression
    status: str = ""  # the enhanced status code found, e.g. "5.1.1"

    @property
    def suppresses(self) -> bool:
        return self.category == "recipient-gone"


def normalise_text(text: str) -> str:
    return _SPACES.sub(" ", text.translate(_QUOTES)).strip().lower()[:_MAX_TEXT]


def find_status(*texts: str) -> str:
    """The first enhanced status code in the texts ('' if none); 2.0.0 and 4/5.0.0 are kept."""
    for text in texts:
        m = _ENHANCED.search(text or "")
        if m:
            return ".".join(m.groups())
    return ""


def _status_rule(status: str) -> tuple[Category, str] | None:
    parts = status.split(".")
    if len(parts) != 3 or parts[1] == "0":
        return None  # x.0.0 says only "permanent" or "temporary"
    found = _DETAILS.get(f"{parts[1]}.{parts[2]}")
    if found:
        return found
    if parts[1] == "7" and 500 <= int(parts[2]) < 800:
        return ("sender-side", "blocklisted")  # Microsoft 365 refuses the sending IP, domain or tenant
    return _SUBJECTS.get(parts[1])


def _match_wording(text: str, rules: BounceRules) -> tuple[Category, str, str] | None:
    for wording in rules.wordings:
        m = wording.pattern.search(text)
        if m:
            return wording.category, wording.reason, m.group(0)
    return None


def classify_wording(text: str, rules: BounceRules) -> tuple[Category, str, str] | None:
    """The first failure wording of the rules found in a text: (category, reason, phrase)."""
    return _match_wording(normalise_text(text), rules)


def passing_trouble(prose: str, rules: BounceRules) -> FailureReason | None:
    """The notice's own words, when they tell only of a passing trouble (a full mailbox, a
    temporary failure) and nowhere that the recipient is gone.

    A report whose fields say "user unknown" while its prose says "not enough disk space"
    contradicts itself; a suppression is for good, so such a report is read as the passing
    trouble (counted towards a suspension) rather than as a dead address.
    """
    text = normalise_text(prose)
    if not text:
        return None
    found = [(w.category, w.reason, m.group(0)) for w in rules.wordings if (m := w.pattern.search(text))]
    if not found or any(category == "recipient-gone" for category, _, _ in found):
        return None
    category, reason, phrase = found[0]
    if category not in ("mailbox-full", "temporary"):
        return None
    evidence = f'{category} ({reason}); the notice says "{phrase}" although its report says the recipient is gone'
    return FailureReason(category, reason, evidence[:200], "")


def classify_failure(
    status: str, diagnostic: str, rules: BounceRules, action: str = "", context: str = ""
) -> FailureReason | None:
    """The category of one recipient's failure, or None when the report says it was delivered.

    ``status`` is the DSN's Status field (may be empty), ``diagnostic`` the remote server's
    answer (Diagnostic-Code or the lines of a plain-text notice next to the address), and
    ``context`` the reporting server's own wording, read only when the diagnostic says nothing.
    """
    action = action.strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    text = normalise_text(diagnostic)
    code = find_status(status, diagnostic)
    specific = find_status(diagnostic)
    if code.split(".")[1:2] == ["0"] and specific[:1] == code[:1] and specific.split(".")[1:2] != ["0"]:
        code = specific  # "Status: 5.0.0" with the remote server's 5.1.1 in the diagnostic
    reply = _REPLY.search(text)
    code_class = code[0] if code else (reply.group(1) if reply else "")
    if code_class == "2" and action not in ("failed", "delayed"):
        return None
    found = _match_wording(text, rules) if text else None
    if context and (found is None or found[0] == "recipient-policy") and code.split(".")[1:2] in ([], ["0"], ["1"]):
        # The notice's own summary ("the address couldn't be found") beats a bare "rejected"
        summary = _match_wording(normalise_text(context), rules)
        if summary is not None and (found is None or summary[0] != "recipient-policy"):
            found = summary
    by_status = _status_rule(code) if code and code_class == "5" else None
    label = f"Status: {code}" if code else (f"SMTP {reply.group(0)}" if reply else "")

    def result(category: Category, reason: str, phrase: str = "") -> FailureReason:
        evidence = "; ".join(p for p in (label, f"{category} ({reason})", f'"{phrase}"' if phrase else "") if p)
        return FailureReason(category, reason, evidence[:200], code)

    if code_class == "4" or action == "delayed":
        if found and found[0] in ("sender-side", "mailbox-full", "temporary"):
            return result(*found)
        if found and found[1] in _DEFINITIVE and action == "failed":
            return result(*found)  # the server gave up after days of "no such user" or a null MX
        return result("temporary", "temporary", found[2] if found else "")
    if found:
        category, reason, phrase = found
        # Sendmail reports a recipient domain's null MX as 5.7.27, the code for the sender's
        if by_status and by_status[0] == "sender-side" and category != "sender-side" and reason != "null-mx":
            return result(*by_status, phrase)
        if by_status and by_status[0] in ("recipient-gone", "mailbox-full") and category == "recipient-policy":
            return result(*by_status, phrase)
        return result(category, reason, phrase)
    if by_status:
        return result(*by_status)
    return result("unknown", "permanent" if code_class == "5" or action == "failed" else "unexplained")
