"""Footer texts (rules/footers.yaml) and their rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy.rules.footers import KINDS, FooterRules, render_footer
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
        for name in ("company", "reason", "opt_out_address", "privacy_policy_url"):
            assert VALUES[name] in text
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
    else:
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
    follow_up: "ok"
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
