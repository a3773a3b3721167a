"""Footer truthfulness over every kind of contact record: foreign words and invented sources, per language.

    .venv/bin/python -m bench.footers

For each footer language, kind and policy it renders the footer for every combination of what
a contact record may hold (source as a key, an alias, the user's own words or nothing; a
detail or not; a reason, a role or nothing) and counts footers that carry a word of the
English footer that is not also a word of the language, and footers that name a source
although nothing was recorded.  The shipped rules are read; nothing else is needed.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import replace

from proxy.config.settings import SenderConfig
from proxy.relay.pipeline import RecipientPlan
from proxy.relay.steps.footer import footer_values, sender_values
from proxy.rules.footers import KINDS, render_footer
from proxy.rules.ruleset import load_rules

SENDER = SenderConfig(
    name="Anna Nowak",
    company="Nordlicht Software GmbH",
    privacy_policy_url="https://nordlicht.example/privacy",
    opt_out_address="optout@nordlicht.example",
    default_source="company_website",
    default_reason="role",
)
# Words both English and the language use (loan words, short function words, names of laws).
SHARED = {
    "fr": {"source", "services", "stop", "mail", "art"},
    "de": {"stop", "mail", "art", "in", "an", "was", "name", "website"},  # German says "Website" too
    "pl": {"stop", "mail", "art", "by", "to"},
    "it": {"stop", "mail", "art", "no", "in", "privacy", "gdpr"},
    "es": {"stop", "mail", "art", "no"},
    "ar": {"stop"},
}
SOURCES = [None, "trade_fair", "Messe", "purchased_list", "not_recorded"]
DETAILS = [None, "LogiMAT 2026"]
REASONS = [(None, None), ("role", None), (None, "Leiter Einkauf")]


def words(text: str) -> set[str]:
    for value in sender_values(SENDER).values():
        text = text.replace(value, " ")
    text = re.sub(r"LogiMAT 2026|Leiter Einkauf", " ", text)  # the user's recorded particulars
    return {w.lower() for w in re.findall(r"[^\W\d_]{2,}", text)}


def main() -> None:
    rules = load_rules()
    english_texts = [rules.footers.languages["en"].template(k) for k in KINDS]
    for vocabulary in (rules.vocabulary.sources, rules.vocabulary.reasons):
        english_texts += [t.words["en"] for t in vocabulary.values()]
    english = words(re.sub(r"\{\w+\}", " ", " ".join(english_texts)))
    started = time.perf_counter()
    print(f"{'language':8} {'footers':>8} {'foreign words':>14} {'invented source':>16}")
    total = foreign_total = invented_total = 0
    for language in sorted(SHARED):
        rendered = foreign = invented = 0
        for policy in ("warn", "default"):
            footers = replace(rules.footers, missing_source=policy, missing_reason=policy)
            for source, detail, (reason, role) in itertools.product(SOURCES, DETAILS, REASONS):
                contact = {"source": source, "source_detail": detail, "reason": reason, "role": role}
                plan = RecipientPlan("p@firma.example", "p@firma.example", "firma.example", contact, language=language)
                values = footer_values(plan, SENDER, footers, rules.vocabulary)
                nothing_recorded = not source and not detail
                if nothing_recorded and policy == "warn" and values["source"] != not_recorded(rules, language):
                    invented += 1
                for kind in KINDS:
                    text = render_footer(footers, language, kind, values).text
                    rendered += 1
                    if (words(text) & english) - SHARED[language]:
                        foreign += 1
        print(f"{language:8} {rendered:8} {foreign:14} {invented:16}")
        total, foreign_total, invented_total = total + rendered, foreign_total + foreign, invented_total + invented
    took = time.perf_counter() - started
    print(f"{'all':8} {total:8} {foreign_total:14} {invented_total:16}   ({total / took:,.0f} footers/s)")


def not_recorded(rules, language: str) -> str:  # type: ignore[no-untyped-def]
    return str(rules.vocabulary.sources["not_recorded"].words[language])


if __name__ == "__main__":
    main()
