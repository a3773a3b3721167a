"""The reply word lists compiled once per rule set into what classify() looks things up in."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.classify.quotes import QuoteRules
from proxy.classify.textnorm import fold, normalize
from proxy.classify.words import Lexicon, romanized, tokens
from proxy.rules.replies import CONCEPT_KEYS, ReplyWords

# Concepts where one typo is forgiven in words of seven letters or more.
TYPO_CONCEPTS = ("unsubscribe", "remove", "delete", "interest", "erasure", "authority", "object", "data", "list")
MAX_TEXT_CHARS = 20_000  # opt-outs are short; only the beginning of a long text is read


def _folded_alternation(phrases: Iterable[str]) -> str:
    return "|".join(r"\s+".join(re.escape(w) for w in fold(p).split()) for p in phrases if p.strip())


@dataclass(frozen=True)
class ReplyRules:
    """Everything classify() needs, compiled once per rule set."""

    lexicon: Lexicon
    signoffs: re.Pattern[str] | None
    notices: Lexicon  # the words of absence notices, ticket systems and company disclaimers
    latin: Lexicon  # the Cyrillic words as typed in Latin letters (looked up by words.skeleton)
    out_of_office: tuple[tuple[str, re.Pattern[str]], ...]
    reply_prefix: re.Pattern[str] | None
    common_words: dict[str, tuple[str, ...]]
    quoting: QuoteRules
    languages: tuple[str, ...]

    @classmethod
    def compile(cls, words: ReplyWords) -> ReplyRules:
        langs = words.languages
        lexicon = Lexicon.build(
            {
                code: {
                    **{k: getattr(lang, k) for k in CONCEPT_KEYS},
                    "past_endings": lang.past_endings,
                    "prefix_variants": lang.prefix_variants,
                }
                for code, lang in langs.items()
            },
            TYPO_CONCEPTS,
        )
        signoff_res = [
            r"(?: \S+){0,3}".join(re.escape(normalize(part)) for part in re.split(r"\.\.\.|…", p) if normalize(part))
            for lang in langs.values()
            for p in lang.signoffs
        ]
        signoff_res = [r for r in signoff_res if r]
        common: dict[str, list[str]] = {}
        for code, lang in langs.items():
            for w in lang.common:
                for t in tokens(w):
                    common.setdefault(t, []).append(code)
        ooo = []
        for code, lang in langs.items():
            alt = _folded_alternation(lang.auto_reply_subjects)
            if alt:
                # At the start of the subject and followed by ":" or nothing, so that a reply
                # to a mail about "absence management" is not taken for an absence notice.
                ooo.append((code, re.compile(rf"^\W{{0,3}}(?:{alt})\s*(?:[\]):\-–|]|$)")))
        alt = _folded_alternation(p for lang in langs.values() for p in lang.reply_prefixes)
        prefix = re.compile(rf"^\s*(?:(?:{alt})\s*(?:\[\d+\])?\s*[:：]\s*)+") if alt else None
        q = words.quoting
        quoting = QuoteRules.build(
            attribution=[p for lang in q.languages.values() for p in lang.attribution],
            attribution_line=[p for lang in q.languages.values() for p in lang.attribution_line],
            separators=q.separators,
            header_from=[k for lang in q.languages.values() for k in lang.header_from],
            header_sent=[k for lang in q.languages.values() for k in lang.header_sent],
        )
        return cls(
            lexicon=lexicon,
            signoffs=re.compile("|".join(signoff_res)) if signoff_res else None,
            latin=Lexicon.build(
                romanized({code: {k: getattr(lang, k) for k in CONCEPT_KEYS} for code, lang in langs.items()}), ()
            ),
            notices=Lexicon.build(
                {
                    code: {"auto_reply": lang.auto_reply, "disclaimers": lang.disclaimers}
                    for code, lang in langs.items()
                },
                (),
            ),
            out_of_office=tuple(ooo),
            reply_prefix=prefix,
            common_words={w: tuple(c) for w, c in common.items()},
            quoting=quoting,
            languages=tuple(langs),
        )
