"""Footer texts (rules/footers.yaml) and their rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy.config.settings import SenderConfig
from proxy.relay.pipeline import RecipientPlan
from proxy.relay.steps.footer import footer_values, sender_values
from proxy.rules.footers import KINDS, FooterRules, render_footer
from proxy.rules.ruleset import SHIPPED_RULES, RulesError, load_rules
from proxy.rules.sources import SourceRules, describe
from proxy.schema import SchemaError, load_file, load_text

RULES_FILE = Path(__file__).parent.parent / "rules" / "footers.yaml"
SHIPPED = load_file(RULES_FILE, FooterRules)
VALUES = {
    "sender_name": "Jonas Weber",
    "company": "Acme Analytics GmbH",
    "privacy_policy_url": "https://acme-analytics.eu/privacy",
    "opt_out_address": "privacy@acme-analytics.eu",
    "source": "the speaker list of LogiMAT 2026",
    "reason": "Head of Logistics",
}
OPT_OUT_WORDS = {
    "en": "No thanks",
    "fr": "Non merci",
    "de": "Nein danke",
    "pl": "Nie, dziękuję",
    "it": "No grazie",
    "es": "No gracias",
    "ar": "لا شكرا",
}


def test_seven_languages_shipped() -> None:
    assert set(SHIPPED.languages) == set(OPT_OUT_WORDS)
    assert SHIPPED.languages["ar"].direction == "rtl"
    assert all(f.direction == "ltr" for code, f in SHIPPED.languages.items() if code != "ar")


@pytest.mark.parametrize("language", sorted(OPT_OUT_WORDS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_footer_discloses_what_it_must(language: str, kind: str) -> None:
    footer = render_footer(SHIPPED, language, kind, VALUES)  # type: ignore[arg-type]
    assert footer.language == language
    for text in (footer.text, " ".join(footer.html.split())):
        assert OPT_OUT_WORDS[language] in text
        assert "STOP" in text
        for name in ("company", "opt_out_address", "privacy_policy_url"):
            assert VALUES[name] in text
        if kind != "consent":
            assert VALUES["reason"] in text
        else:  # consent is the legal basis here, never legitimate interest
            assert VALUES["reason"] not in text and "6(1)(f)" not in text and "lit. f" not in text
        if kind == "first_contact":
            assert VALUES["sender_name"] in text
            assert VALUES["source"] in text
    assert "{" not in footer.text
    assert footer.html.startswith('<div class="gdpr-mail-proxy-footer" dir="')
    assert f'lang="{language}"' in footer.html
    assert '<a href="mailto:privacy@acme-analytics.eu"' in footer.html
    assert '<a href="https://acme-analytics.eu/privacy"' in footer.html
    if kind == "first_contact":
        # Paragraphs of the text become paragraphs of the HTML.
        assert footer.html.count("<p ") == footer.text.count("\n\n") + 1
    elif kind == "follow_up":
        assert len(footer.text) < len(render_footer(SHIPPED, language, "first_contact", VALUES).text)


def test_arabic_is_right_to_left() -> None:
    footer = render_footer(SHIPPED, "ar", "follow_up", VALUES)
    assert 'dir="rtl"' in footer.html
    assert "direction:rtl" in footer.html
    assert "text-align:right" in footer.html


def test_language_fallback_and_regional_codes() -> None:
    assert render_footer(SHIPPED, "nl", "follow_up", VALUES).language == "en"
    assert render_footer(SHIPPED, "de-AT", "follow_up", VALUES).language == "de"
    assert render_footer(SHIPPED, "PT_br", "follow_up", VALUES).language == "en"


def test_hostile_values_are_escaped_and_cannot_add_lines() -> None:
    values = dict(VALUES)
    values["sender_name"] = '<script>alert("x")</script>'
    values["company"] = "Acme\r\nBcc: victim@example.org\x00\u2028\u202e"
    values["reason"] = "\"quoted\" & 'single'"
    values["privacy_policy_url"] = 'https://acme.example/p" onmouseover="alert(1)'
    values["source"] = "javascript:alert(1)"
    footer = render_footer(SHIPPED, "en", "first_contact", values)
    flat = " ".join(footer.html.split())
    assert "<script>" not in footer.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in flat
    assert "&quot;quoted&quot; &amp; &#x27;single&#x27;" in flat
    assert 'onmouseover="' not in footer.html
    assert '<a href="https://acme.example/p"' in footer.html
    assert 'href="javascript' not in footer.html
    assert "Acme Bcc: victim@example.org" in footer.text
    for text in (footer.text, footer.html):
        assert "\r" not in text
        assert not re.search("[\x00-\x08\u2028\u202e]", text)
    # Only the template's own line breaks remain.
    assert footer.text.count("\n") == SHIPPED.languages["en"].first_contact.strip().count("\n")


def test_html_lines_stay_short() -> None:
    for language in OPT_OUT_WORDS:
        footer = render_footer(SHIPPED, language, "first_contact", VALUES)
        assert max(len(line) for line in footer.html.splitlines()) < 400


def test_missing_value_is_an_error() -> None:
    values = {k: v for k, v in VALUES.items() if k != "reason"}
    with pytest.raises(ValueError, match="reason"):
        render_footer(SHIPPED, "en", "follow_up", values)


def test_schema_reports_unknown_placeholders_with_line_and_key() -> None:
    text = """languages:
  en:
    name: English
    first_contact: "Hello from {compnay}"
    follow_up: "{company} {reason!r} {0}"
  deu:
    name: Deutsch
    first_contact: "x {"
    follow_up: "{company} {opt_out_address}"
"""
    with pytest.raises(SchemaError) as exc:
        load_text(text, "footers.yaml", FooterRules)
    errors: dict[tuple[int | None, str], str] = {}
    for e in exc.value.errors:
        errors[(e.line, e.key)] = errors.get((e.line, e.key), "") + e.message + "\n"
    assert "unknown placeholder {compnay}" in errors[(4, "languages.en.first_contact")]
    assert "without a format or conversion" in errors[(5, "languages.en.follow_up")]
    assert "unknown placeholder {0}" in errors[(5, "languages.en.follow_up")]
    assert "two-letter" in errors[(7, "languages.deu")]
    assert "literal brace" in errors[(8, "languages.deu.first_contact")]


def test_schema_requires_english() -> None:
    text = "languages:\n  de:\n    name: Deutsch\n    first_contact: a\n    follow_up: b\n"
    with pytest.raises(SchemaError, match="needs an entry for 'en'"):
        load_text(text, "f.yaml", FooterRules)


# -- what every footer must say, and the words for sources and reasons -------------------------

VOCABULARY = load_file(RULES_FILE.parent / "sources.yaml", SourceRules)
SENDER = SenderConfig(
    name="Jonas Weber",
    company="Acme Analytics GmbH",
    privacy_policy_url="https://acme-analytics.eu/privacy",
    opt_out_address="privacy@acme-analytics.eu",
)
# Words shared by English and a footer language that are that language's own words too
# (or names of no language): the scan below may not count them.
SHARED = {
    "fr": {"source", "services", "stop", "mail", "art"},
    "de": {"stop", "mail", "art", "in", "an", "was", "name", "website"},  # German says "Website" too
    "pl": {"stop", "mail", "art", "by", "to"},
    "it": {"stop", "mail", "art", "no", "in", "privacy", "gdpr"},  # Italian says "privacy" and "GDPR"
    "es": {"stop", "mail", "art", "no"},
    "ar": {"stop"},
}


def english_words() -> set[str]:
    """Every word the English footers and the English source and reason wordings use."""
    english = SHIPPED.languages["en"]
    texts = [english.first_contact, english.follow_up, english.consent]
    for vocabulary in (VOCABULARY.sources, VOCABULARY.reasons):
        texts += [term.words["en"] for term in vocabulary.values()]
    texts += [VOCABULARY.detail_not_recorded["en"]]
    return {w.lower() for text in texts for w in re.findall(r"[^\W\d_]+", re.sub(r"\{\w+\}", " ", text))}


def words_of(text: str, values: dict[str, str]) -> set[str]:
    for value in values.values():  # the sender's name, company and addresses are no language's words
        text = text.replace(value, " ")
    return {w.lower() for w in re.findall(r"[^\W\d_]{2,}", text)}  # single letters: "E-Mail", "lit. f"


def test_rules_check_refuses_a_footer_that_hides_who_where_why_or_how_to_object() -> None:
    text = """languages:
  en:
    name: English
    first_contact: "Hello, we found you somewhere. Privacy policy: {privacy_policy_url}"
    follow_up: "{company} again."
"""
    with pytest.raises(SchemaError) as exc:
        load_text(text, "footers.yaml", FooterRules)
    messages = "\n".join(f"{e.key}: {e.message}" for e in exc.value.errors)
    assert "first_contact: must say who is writing: {company} is missing" in messages
    assert "first_contact: must say where the address came from: {source} is missing" in messages
    assert "first_contact: must say why the person is contacted: {reason} is missing" in messages
    assert "first_contact: must say how to object: {opt_out_address} is missing" in messages
    assert "follow_up: must say how to object: {opt_out_address} is missing" in messages


def test_every_footer_language_has_words_for_every_source(tmp_path: Path) -> None:
    assert VOCABULARY.missing_languages(SHIPPED.languages) == []
    user = tmp_path / "rules"
    user.mkdir()
    # a user adds Dutch footers but no Dutch words for the sources: refused, with the key
    footers = (RULES_FILE.read_text() + "\n  nl:\n    name: Nederlands\n"
               "    first_contact: '{company} {source} {reason} {opt_out_address}'\n"
               "    follow_up: '{company} {opt_out_address}'\n")
    (user / "footers.yaml").write_text(footers)
    with pytest.raises(RulesError) as exc:
        load_rules(user, SHIPPED_RULES)
    assert any(e.key == "sources.trade_fair.words" and "'nl'" in e.message for e in exc.value.errors)


@pytest.mark.parametrize("language", sorted(SHARED))
def test_nothing_recorded_means_a_footer_wholly_in_the_persons_language(language: str) -> None:
    english = english_words()
    plan = RecipientPlan("jan@firma.example", "jan@firma.example", "firma.example", contact={}, language=language)
    values = footer_values(plan, SENDER, SHIPPED, VOCABULARY)
    assert values["source"] == VOCABULARY.sources["not_recorded"].words[language]
    assert values["reason"] == VOCABULARY.reasons["not_recorded"].words[language]
    for kind in KINDS:
        footer = render_footer(SHIPPED, language, kind, values)
        assert footer.language == language
        found = (words_of(footer.text, sender_values(SENDER)) & english) - SHARED[language]
        assert found == set(), f"English in the {language} {kind} footer: {sorted(found)}"


def test_the_english_scan_would_see_the_old_english_defaults() -> None:
    """The scan above can fail: the defaults the footers once carried are caught."""
    values = {**sender_values(SENDER), "source": "public professional sources (company website)", "reason": "your role"}
    footer = render_footer(SHIPPED, "de", "first_contact", values)
    assert {"professional", "website", "your", "role"} <= words_of(
        footer.text, sender_values(SENDER)
    ) & english_words()


def test_recorded_source_and_detail_in_the_persons_language() -> None:
    contact = {"source": "Trade fair", "source_detail": "LogiMAT 2026", "role": "Leiter Logistik"}
    plan = RecipientPlan("jan@firma.de", "jan@firma.de", "firma.de", contact=contact, language="de")
    values = footer_values(plan, SENDER, SHIPPED, VOCABULARY)
    assert values["source"] == "eine Messe oder Veranstaltung (LogiMAT 2026)"
    assert values["reason"] == "Leiter Logistik"  # no reason recorded: the recorded role says why
    bought = describe(VOCABULARY, "sources", "fr", "purchased_list")
    assert bought is not None and bought.text.endswith("(nom non enregistré)")  # never an invented provider
    assert describe(VOCABULARY, "sources", "pl", "  ") is None
    assert describe(VOCABULARY, "sources", "pl", "Targi Poznańskie").text == "Targi Poznańskie"  # the user's words


def test_default_source_only_by_policy_and_only_as_a_key() -> None:
    plan = RecipientPlan("jan@firma.fr", "jan@firma.fr", "firma.fr", contact={}, language="fr")
    by_default = FooterRules(languages=SHIPPED.languages, missing_source="default", missing_reason="default")
    keyed = SenderConfig(**{**SENDER.__dict__, "default_source": "company_website", "default_reason": "role"})
    values = footer_values(plan, keyed, by_default, VOCABULARY)
    assert values["source"] == "le site web de votre entreprise"
    assert values["reason"] == VOCABULARY.reasons["role"].words["fr"]
    english = SenderConfig(**{**SENDER.__dict__, "default_source": "public professional sources"})
    assert footer_values(plan, english, by_default, VOCABULARY)["source"] == "non enregistrée" + VOCABULARY.sources[
        "not_recorded"
    ].words["fr"].removeprefix("non enregistrée")
    assert footer_values(plan, keyed, SHIPPED, VOCABULARY)["source"].startswith("non enregistrée")  # policy warn


def test_blank_sender_fields_never_make_empty_sentences() -> None:
    blank = SenderConfig(name="  ", company="", privacy_policy_url=" ", opt_out_address="")
    footer = render_footer(SHIPPED, "de", "first_contact", {**sender_values(blank), "source": "x", "reason": "y"})
    assert "von , ." not in footer.text and ", ." not in footer.text
    assert "[sender.name], [sender.company]" in footer.text
