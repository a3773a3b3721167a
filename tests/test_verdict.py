"""classify(): what a reply asks for, with precision as much as recall."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.classify.classifier import Verdict, classify
from proxy.rules.optout import OptoutRules, load_optout_rules

ROOT = Path(__file__).resolve().parent.parent
RULES_FILE = ROOT / "rules" / "optout.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "replies"
FOOTER = ['Reply "No thanks" or STOP and you will be removed']


@pytest.fixture(scope="module")
def rules() -> OptoutRules:
    return load_optout_rules(RULES_FILE)


def mail(body: str, subject: str = "Re: Your month-end close", headers: str = "") -> bytes:
    return (
        "From: Anna Example <Anna@Acme.example>\r\nTo: jane@seller.example\r\n"
        f"Subject: {subject}\r\n{headers}Message-ID: <r1@acme.example>\r\n"
        "In-Reply-To: <m1@seller.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def verdict_of(body: str, rules: OptoutRules, **kw: str) -> Verdict:
    return classify(mail(body, **kw), rules, FOOTER)


# ---- realistic replies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "language", "where"),
    [
        ("gmail_en_positive_quotes_footer.eml", "none", "en", ""),
        ("gmail_de_positive_quotes_footer.eml", "none", "de", ""),
        ("outlook_it_da_inviato_positive.eml", "none", "it", ""),
        ("outlook_en_html_positive_appendonsend.eml", "none", None, ""),
        ("thunderbird_en_flowed_positive.eml", "none", "en", ""),
        ("gmail_de_nein_danke_top_posted.eml", "opt-out", "de", "body line 1"),
        ("outlook_fr_from_sent_block.eml", "opt-out", "fr", "body line 1"),
        ("outlook_pl_od_wyslano.eml", "opt-out", "pl", "body line 1"),
        ("outlook_de_urspruengliche_nachricht.eml", "opt-out", "de", "body line 1"),
        ("thunderbird_de_original_message.eml", "opt-out", "de", "body line 1"),
        ("outlook_en_html_only_divRplyFwdMsg.eml", "opt-out", "en", "body line 1"),
        ("apple_it_blockquote_cite.eml", "opt-out", "it", "body line 1"),
        ("apple_es_html_only.eml", "opt-out", "es", "body line 1"),
        ("thunderbird_en_flowed_stop.eml", "opt-out", "en", "body line 1"),
        ("thunderbird_pl_iso8859_2_flowed.eml", "opt-out", "pl", "body line 1"),
        ("outlook_cs_windows1250_base64.eml", "opt-out", "cs", "body line 1"),
        ("gmail_ar_windows1256_qp.eml", "opt-out", "ar", "body line 1"),
        ("gmail_fr_erasure.eml", "erasure", "fr", "body line 3"),
        ("gmail_it_erasure.eml", "erasure", "it", "body line 1"),
        ("outlook_de_erasure.eml", "erasure", "de", "body line 1"),
        ("outlook_es_erasure.eml", "erasure", "es", "body line 3"),
        ("gmail_en_uncertain_later.eml", "none", "en", ""),  # "not now, check back in spring"
        ("ooo_en_exchange_quotes_footer.eml", "auto-reply", None, "header Auto-Submitted"),
        ("ooo_exchange_headers_only.eml", "auto-reply", None, "header X-MS-Exchange-Generated-Message-Source"),
        ("ooo_fr_subject_only.eml", "auto-reply", "fr", "subject"),
        ("ooo_de_subject.eml", "auto-reply", "de", "subject"),
    ],
)
def test_fixtures(name: str, kind: str, language: str | None, where: str, rules: OptoutRules) -> None:
    v = classify((FIXTURES / name).read_bytes(), rules, FOOTER)
    assert (v.verdict, v.language, v.where) == (kind, language, where), v.as_json()
    if kind in ("opt-out", "erasure", "uncertain"):
        assert v.addresses == (v.sender,) and "@" in v.sender
    else:
        assert v.addresses == ()


def test_opt_out_records_phrase_sender_and_thread(rules: OptoutRules) -> None:
    v = classify((FIXTURES / "gmail_de_nein_danke_top_posted.eml").read_bytes(), rules, FOOTER)
    assert v.as_json() == {
        "verdict": "opt-out",
        "addresses": ["j.mueller@beispiel.example"],
        "evidence": "Nein danke.",
        "where": "body line 1",
        "language": "de",
        "in_reply_to": ["20250303100000.5678@seller.example"],
        "temporary_failures": [],
        "sender": "j.mueller@beispiel.example",
        "reason": "refuses: is not interested",
        "text": "Nein danke.",
    }


# ---- short replies and the traps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", "opt-out"),
        ("stop.", "opt-out"),
        ("No thanks", "opt-out"),
        ("No, thanks!", "opt-out"),
        ("Hi Jane,\n\nplease remove me from your mailing list.\n\nBest regards,\nAnna Example\nCFO, Acme\n"
         "+49 30 1234567\nacme.example", "opt-out"),
        ("Not interested, thanks.", "opt-out"),
        ("Nein danke", "opt-out"),
        ("Bitte melden Sie mich sofort ab.", "opt-out"),
        ("Non merci", "opt-out"),
        ("Merci de me desinscrire", "opt-out"),  # typed without the accent
        ("Désinscrivez moi svp", "opt-out"),  # hyphen typed as a space
        ("Nie, dziękuję", "opt-out"),
        ("nie dziekuje", "opt-out"),
        ("No grazie", "opt-out"),
        ("No gracias", "opt-out"),
        ("لا شكرا", "opt-out"),
        ("لا، شكراً", "opt-out"),  # Arabic comma and tanween
        ("الغاء الاشتراك", "opt-out"),  # alef without hamza
        ("Nee bedankt", "opt-out"),
        ("Não, obrigado", "opt-out"),
        ("Nej tack", "opt-out"),
        ("Ne, děkuji", "opt-out"),
        ("löschen Sie bitte meine Daten", "erasure"),
        ("Please delete all my personal data (Art. 17 GDPR).", "erasure"),
        ("I invoke my right to be forgotten.", "erasure"),
        ("usuńcie moje dane", "erasure"),
        ("احذفوا بياناتي", "erasure"),
        ("Where did you get my address? Delete my data.", "erasure"),  # questions are normal here
        # Precision: a hot lead is never suppressed.
        ("Sounds good, no thanks needed, call me Tuesday", "none"),
        ("please don't stop sending", "none"),
        ("Non-stop support is what we need.", "none"),
        ("We could meet at the bus stop near our office.", "none"),
        ("Stop by our booth at the fair!", "none"),
        ("I unsubscribed from the newsletter but want your offer", "none"),
        ("Thanks, that sounds great.", "none"),
        ("", "none"),
        # An opt-out phrase with signs of interest goes to a person.
        ("No, thanks for asking — yes I'm interested", "uncertain"),
        ("No thanks. Actually, call me next week.", "uncertain"),
        ("Stop? Why would I, let's talk.", "uncertain"),
        ("Please do not unsubscribe me", "none"),  # the negation is scoped to its clause
        ("We looked at the market and decided that for this year, and probably the next, we are "
         "not interested in changing our finance tooling at all.", "opt-out"),  # a refusal, however long
        ("Don't delete my data, I want to stay in touch.", "none"),
        ("Nein danke, aber rufen Sie mich im Herbst an.", "none"),  # not now: call again in autumn
    ],
)  # fmt: skip
def test_short_replies(body: str, kind: str, rules: OptoutRules) -> None:
    v = verdict_of(body, rules)
    assert v.verdict == kind, v.as_json()


def test_uncertain_says_why(rules: OptoutRules) -> None:
    v = verdict_of("No thanks. Call me on Tuesday", rules)
    assert (v.verdict, v.evidence) == ("uncertain", "No thanks.")
    assert v.reason == "is not interested, but shows interest: 'Call me on Tuesday'"
    assert v.addresses == ("anna@acme.example",)


def test_where_names_the_line(rules: OptoutRules) -> None:
    v = verdict_of("Hello Jane,\n\nthanks for the note.\nUnsubscribe\n", rules)
    assert (v.verdict, v.where) == ("opt-out", "body line 4")


def test_subject_unsubscribe_counts(rules: OptoutRules) -> None:
    v = verdict_of("", rules, subject="unsubscribe")
    assert (v.verdict, v.where, v.evidence) == ("opt-out", "subject", "unsubscribe")
    assert verdict_of("Sent from my iPhone", rules, subject="Re: Unsubscribe").verdict == "opt-out"


def test_subject_containing_stop_is_not_an_opt_out(rules: OptoutRules) -> None:
    # Our own subject line comes back in "Re:"; only a subject that is the request counts.
    assert verdict_of("Great, send it over.", rules, subject="Re: Stop losing deals").verdict == "none"


def test_subject_opt_out_with_interest_in_body_is_reviewed(rules: OptoutRules) -> None:
    v = verdict_of("Actually, could we schedule a demo?", rules, subject="unsubscribe")
    assert v.verdict == "uncertain"


def test_quoted_footer_never_counts(rules: OptoutRules) -> None:
    body = "Let me think about it.\n\n> --\n> Reply No thanks or STOP and you will be removed.\n"
    assert verdict_of(body, rules).verdict == "none"


def test_top_posted_opt_out_above_quoted_footer(rules: OptoutRules) -> None:
    body = "Nein danke\n\n> Reply No thanks or STOP and you will be removed.\n"
    v = verdict_of(body, rules)
    assert (v.verdict, v.language) == ("opt-out", "de")


# ---- auto-replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated; owner-email=x@y.example\r\n",
        "X-Autoreply: yes\r\n",
        "X-Autorespond: on\r\n",
        "Precedence: bulk\r\n",
        "Precedence: auto_reply\r\n",
        "Precedence: junk\r\n",
        "Precedence: list\r\n",
        "X-Autogenerated: Reply\r\n",
        "X-Auto-Response-Suppress: All\r\nX-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent\r\n",
    ],
)
def test_auto_reply_headers_win_over_opt_out_words(headers: str, rules: OptoutRules) -> None:
    v = verdict_of("STOP\n> Reply No thanks or STOP", rules, headers=headers)
    assert v.verdict == "auto-reply"
    assert v.where.startswith("header ")


@pytest.mark.parametrize(
    "headers", ["Auto-Submitted: no\r\n", "X-Auto-Response-Suppress: All\r\n", "Precedence: first-class\r\n"]
)
def test_ordinary_mail_headers_are_not_auto_reply(headers: str, rules: OptoutRules) -> None:
    assert verdict_of("No thanks", rules, headers=headers).verdict == "opt-out"


@pytest.mark.parametrize(
    ("subject", "language"),
    [
        ("Out of Office: Re: Your month-end close", "en"),
        ("Automatic reply: Your month-end close", "en"),
        ("Abwesenheitsnotiz: Ihr Monatsabschluss", "de"),
        ("Automatische Antwort: Ihr Monatsabschluss", "de"),
        ("Réponse automatique : Votre clôture", "fr"),
        ("Absence", "fr"),
        ("Odpowiedź automatyczna: Zamknięcie", "pl"),
        ("Risposta automatica: Chiusura", "it"),
        ("Fuori sede: Chiusura", "it"),
        ("Respuesta automática: Cierre", "es"),
        ("Fuera de la oficina: Cierre", "es"),
        ("رد تلقائي: منصتنا", "ar"),
        ("Re: Automatic reply: x", "en"),
    ],
)
def test_out_of_office_subjects(subject: str, language: str, rules: OptoutRules) -> None:
    v = verdict_of("I am away.\n\nReply No thanks or STOP", rules, subject=subject)
    assert (v.verdict, v.language, v.where) == ("auto-reply", language, "subject")


def test_subject_word_absence_inside_our_topic_is_not_an_absence_notice(rules: OptoutRules) -> None:
    v = verdict_of("No thanks", rules, subject="Re: Absence management for your team")
    assert v.verdict == "opt-out"


# ---- robustness ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000))
def test_never_raises_on_random_bytes(raw: bytes, rules: OptoutRules) -> None:
    assert classify(raw, rules, FOOTER).verdict in ("none", "uncertain", "opt-out", "bounce", "auto-reply", "erasure")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(sorted(FIXTURES.glob("*.eml"))),
    at=st.integers(0, 4000),
    junk=st.binary(min_size=1, max_size=40),
)
def test_never_raises_on_damaged_fixtures(path: Path, at: int, junk: bytes, rules: OptoutRules) -> None:
    raw = path.read_bytes()
    classify(raw[:at] + junk + raw[at + len(junk) :], rules, FOOTER)


def test_huge_reply_is_bounded(rules: OptoutRules) -> None:
    v = verdict_of("Let's talk. " + "blah " * 200_000 + "\nSTOP", rules)
    assert v.verdict == "uncertain" or v.verdict == "none"
