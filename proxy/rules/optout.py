"""Loading the reply rules from a path, for callers that name a file or folder directly (tests, tools)."""

from __future__ import annotations

from pathlib import Path

from proxy.classify.reply_rules import ReplyRules
from proxy.rules.replies import REPLIES_DIR, cached_reply_words

OptoutRules = ReplyRules  # the name used before the rules were split per language


def load_optout_rules(path: str | Path) -> ReplyRules:
    """The reply rules of a replies folder, of the rules folder holding one, or of the
    folder where the single optout.yaml used to be.  Raises SchemaError."""
    p = Path(path)
    if p.suffix == ".yaml":
        p = p.parent
    if (p / REPLIES_DIR).is_dir():
        p = p / REPLIES_DIR
    from proxy.rules.ruleset import compiled_reply_rules

    return compiled_reply_rules(cached_reply_words(p))
