"""Why an address is suppressed: the one list of reasons, with the words the sender reads for each."""

# reason -> what a refusal tells the sender (ASCII: it goes into SMTP replies)
REASON_WORDS: dict[str, str] = {
    "opt-out": 'reply "No thanks"',
    "erasure": "asked for erasure of their data",
    "bounce": "address no longer exists (bounce)",
    "complaint": "reported our mail as spam (complaint)",
    "suspended": "mail to this address failed several times; suspended for a while (bounces)",
    "manual": "added by hand",
    "import": "imported list",
    "unsubscribe": "unsubscribe request",
    "review": "reply waiting for your review: gdpr-proxy review",
}

REASONS: tuple[str, ...] = tuple(REASON_WORDS)
