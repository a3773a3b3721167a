"""HOOK: reply-watcher benchmark (target: classification of at least 1,000 replies/s).

The reply watcher (proxy/watcher/) is being built by other engineers.  When its classifier
has a stable entry point, fill in ``run`` below: build a corpus of realistic replies
(plain "No thanks", quoted HTML replies from Outlook/Thunderbird, auto-replies, bounces, in
the footer languages), classify them all in a loop, and return rows for the table, e.g.
``[("replies classified per second", "3,400"), ("target", ">= 1,000")]``.  ``bench.run``
calls it after the relay benchmarks and prints whatever it returns; ``None`` prints a
"not measured yet" line instead.  Keep it in-process (no IMAP server): the IMAP fetch is
I/O, the classification is the CPU cost the target is about.
"""

from __future__ import annotations

TARGET = "at least 1,000 replies/s"


def run(quick: bool, repeat: int) -> list[tuple[str, str]] | None:
    """Rows (label, figure) for the reply-watcher section, or None while there is no benchmark."""
    return None
