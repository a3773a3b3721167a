"""What a person asks for, read per sentence: the mechanisms that let new wordings through and keep leads."""

from __future__ import annotations

import functools

import pytest

from proxy.classify.classifier import classify
from proxy.classify.htmltext import html_to_text
from proxy.classify.quotes import strip_quoted
from proxy.classify.reply_rules import ReplyRules
from proxy.classify.words import tokens, within_one_edit
from proxy.rules.replies import load_reply_words
from proxy.rules.ruleset import SHIPPED_RULES

FOOTER = ['Reply "No thanks" or STOP and you will be removed']


@functools.lru_cache(maxsize=1)
def rules() -> ReplyRules:
    return ReplyRules.compile(load_reply_words(SHIPPED_RULES / "replies"))


def verdict(body: str, ctype: str = "text/plain", subject: str = "Re: Offer", headers: str = ""):
    raw = (
        f"From: Anna <anna@acme.example>\r\nTo: jane@seller.example\r\nSubject: {subject}\r\n{headers}"
        f"Content-Type: {ctype}; charset=utf-8\r\n\r\n{body}"
    ).encode()
    return classify(raw, rules(), FOOTER)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # inflection, politeness and word order: none of these sentences is in a rule file
        ("Bitte tragen Sie uns aus Ihrer Kontaktliste aus.", "opt-out"),
        ("Könnten Sie meinen Kollegen bitte aus dem Verteiler entfernen?", "opt-out"),
        ("Nous vous prions de ne plus nous solliciter.", "opt-out"),
        ("Nous ne sommes pas intéressés par votre offre.", "opt-out"),
        ("Vi preghiamo di non contattarci ulteriormente.", "opt-out"),
        ("Por favor, sáquennos de su base de datos.", "opt-out"),
        ("Prosimy o usunięcie naszego adresu z listy mailingowej.", "opt-out"),
        ("Kérjük, ne küldjenek több ajánlatot.", "opt-out"),
        # third person: an assistant or a colleague
        ("Please remove him from your mailing list, he asked me to tell you.", "opt-out"),
        ("Merci de retirer son adresse de votre liste.", "opt-out"),
        # missing accents, typos, lower case
        ("merci de ne plus m'ecrire", "opt-out"),
        ("pls unsubscibe me", "opt-out"),
        ("bitte loeschen sie meine daten", "erasure"),
        # apostrophes are kept: elided French and Italian articles
        ("Je vous demande d'effacer mes données, conformément à l'article 17.", "erasure"),
        ("Ai sensi dell'art. 17 GDPR chiedo la cancellazione dei miei dati.", "erasure"),
        # objection and complaints to the authority are opt-outs
        ("I object to the processing of my data for marketing (Art. 21 GDPR).", "opt-out"),
        ("If this happens again I will report you to the ICO.", "opt-out"),
        ("Noch eine solche Mail und ich melde das der Datenschutzbehörde.", "opt-out"),
        # a long polite reply with a request in the middle is still a request
        (
            "Dear Jane,\n\nthank you for reaching out and for the detailed overview. We reviewed it with the "
            "finance team last week. As we have just renewed our contract with another provider, we would "
            "appreciate it if you could take us off your mailing list.\n\nKind regards,\nAnna",
            "opt-out",
        ),
    ],
)
def test_requests_in_peoples_own_words(body: str, kind: str) -> None:
    v = verdict(body)
    assert v.verdict == kind, v.as_json()
    assert v.evidence and v.reason and v.language


@pytest.mark.parametrize(
    "body",
    [
        "Please don't remove me, I read every one of your mails.",
        "Bitte nicht abmelden, ich lese das gern.",
        "Ne me désinscrivez surtout pas, c'est très utile.",
        "Don't hesitate to contact me next week.",
        "We stopped working with our old provider, so the timing is good.",
        "Ich habe Ihre letzte Mail versehentlich gelöscht, können Sie sie noch einmal schicken?",
        "Your mail landed in my spam folder, but I'd like to hear more.",
        "Stop by our booth at the fair!",
        "Not now, but write to me again in the spring.",
        "Pas pour le moment, recontactez-moi l'année prochaine.",
        "I'm not the right person, please contact jan.kowalski@acme.example instead.",
    ],
)
def test_leads_and_statements_are_not_requests(body: str) -> None:
    assert verdict(body).verdict == "none", verdict(body).as_json()


def test_a_request_next_to_a_meeting_question_goes_to_review() -> None:
    v = verdict("Please remove me from your list. Actually, wait - could we talk on Tuesday about the price?")
    assert v.verdict == "uncertain"
    assert "remove" in v.reason and "Tuesday" in v.reason


def test_evidence_is_the_deciding_sentence_with_language_and_reason() -> None:
    v = verdict("Guten Tag,\n\nwir sind gut versorgt. Bitte nehmen Sie mich aus Ihrem Verteiler.\n\nGrüße\nM.")
    assert (v.verdict, v.language, v.where) == ("opt-out", "de", "body line 3")
    assert v.evidence == "Bitte nehmen Sie mich aus Ihrem Verteiler."
    assert v.reason == "asks to be removed from the list"
    assert "wir sind gut versorgt" in v.text and "Grüße" in v.text


def test_signature_and_disclaimer_are_not_read() -> None:
    body = (
        "Thanks, we will look at it.\n\nBest regards\nAnna\nUnsubscribe Ltd, 1 Stop Street\n\n"
        "This email and any attachments are confidential. If you are not the intended recipient, please "
        "delete it and remove all copies from your system.\n"
    )
    assert verdict(body).verdict == "none"


def test_absence_notice_without_headers_is_read_from_the_body() -> None:
    v = verdict("Ich bin bis 30.11. nicht im Büro und lese meine E-Mails nicht. In dringenden Fällen: 040 123.")
    assert (v.verdict, v.where, v.language) == ("auto-reply", "body", "de")
    ticket = verdict("Thank you for contacting us. Your ticket number is 4711. Please do not reply to this message.")
    assert ticket.verdict == "auto-reply"


@pytest.mark.parametrize(
    "attribution",
    [
        "W dniu śr., 12 lis 2026 o 10:42 Jane Seller <jane@seller.example> napisał(a):",
        "Dne st 12. 11. 2026 v 10:42 odesílatel Jane Seller <jane@seller.example> napsal:",
        "Jane Seller <jane@seller.example> ezt írta (időpont: 2026. nov. 12., Sze 10:42):",
        "Jane Seller (jane@seller.example) kirjoitti 12.11.2026 klo 10.42:",
        "În mie., 12 nov. 2026 la 10:42, Jane Seller <jane@seller.example> a scris:",
        "في الأربعاء، 12 نوفمبر 2026 في 10:42 ص، كتب Jane Seller <jane@seller.example>:",
        "12.11.2026 10:42, Jane Seller пишет:",
    ],
)
def test_attribution_lines_are_found_by_shape_in_any_language(attribution: str) -> None:
    text = f"Great, let's talk.\n\n{attribution}\n> Reply No thanks or STOP and you will be removed.\n"
    assert strip_quoted(text, rules().quoting, FOOTER) == "Great, let's talk."


def test_a_quoted_header_block_is_found_by_shape_whatever_its_labels() -> None:
    text = (
        "Sounds good.\n\nKimden: Jane Seller <jane@seller.example>\nGönderildi: 12 Kasım 2026 Çarşamba 10:42\n"
        "Kime: anna@acme.example\nKonu: Offer\n\nReply No thanks or STOP\n"
    )
    assert strip_quoted(text, rules().quoting) == "Sounds good."


def test_word_html_quote_starts_at_the_top_bordered_div() -> None:
    html = (
        "<html><body><div class=WordSection1><p>Sounds good, call me.</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        "<p><b>From:</b> Jane</p><p>Reply No thanks or STOP</p></div></div></body></html>"
    )
    assert html_to_text(html) == "Sounds good, call me."


def test_words_keep_elisions_and_split_clitics() -> None:
    assert tokens("D’arrêter, retirez-moi; dell'art. 17, don't") == [
        "d'", "arreter", "retirez", "moi", "dell'", "art", "17", "dont"
    ]  # fmt: skip


def test_one_typo_is_forgiven() -> None:
    assert within_one_edit("unsubscibe", "unsubscribe") and within_one_edit("afmleden", "afmelden")
    assert not within_one_edit("remote", "remove", substitute=False)
    assert not within_one_edit("contract", "contact ")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("udalite menya iz rassylki pozhaluysta", "opt-out"),
        ("iztriyte mi dannite ot bazata si", "erasure"),
        ("vidpyshit mene bud laska", "opt-out"),
        ("Privet, davayte vstretimsya v chetverg", "none"),
    ],
)
def test_cyrillic_typed_in_latin_letters(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_compound_endings_are_found_in_words_of_any_length_and_in_entries_added_later() -> None:
    from proxy.classify.words import Lexicon

    lex = Lexicon.build({"de": {"list": ["*liste"], "mail": ["*post*"]}}, ())
    assert ("de", "list") in lex.senses("korrespondenzliste")
    assert ("de", "mail") in lex.senses("werbepostsendung")
    assert lex.senses("listenpreis") == ()
    lex.inner.append(("*verteiler", "de", "list"))
    assert ("de", "list") in lex.senses("kundenverteiler")


@pytest.mark.parametrize(
    "body",
    [
        "Jūsu e-pasts nonāca surogātpastā un es to izdzēsu pirms izlasīju.",
        "Teie kiri sattus rämpsposti ja kustutasin selle enne lugemist.",
        "Jūsų laiškas pateko į šlamštą ir aš jį ištryniau neperskaitęs.",
    ],
)
def test_a_mail_that_landed_in_spam_and_was_deleted_is_a_report_not_a_complaint(body: str) -> None:
    assert verdict(body + "\nCould you send the offer again?").verdict == "none"


def test_a_request_to_take_us_out_of_business_mail_still_counts_when_its_verb_looks_past() -> None:
    body = "Nemáme zájem. Žádám, abyste mě vyřadili z obchodní komunikace."
    assert verdict(body).verdict == "opt-out"


def test_an_irish_report_of_a_deleted_mail_after_a_past_verb_is_not_an_opt_out() -> None:
    body = "Chuaigh do theachtaireacht amú agus scrios mé í. An féidir leat í a sheoladh arís?"
    assert verdict(body).verdict == "none"
    assert verdict("Scrios mé ó do liosta, le do thoil.").verdict == "opt-out"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # "I/we want" in front of a negated contact, whoever the negation attaches to
        ("We do not want to be contacted.", "opt-out"),
        ("Wir möchten nicht kontaktiert werden.", "opt-out"),
        ("Nie chcemy być kontaktowani.", "opt-out"),
        ("Vi ønsker ikke å bli kontaktet.", "opt-out"),
        ("Vi vill inte bli kontaktade.", "opt-out"),
        ("Non vogliamo essere contattati.", "opt-out"),
    ],
)
def test_a_wish_not_to_be_contacted_is_a_request_in_every_language(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # Cyrillic typed in Latin letters whose short words are also words of other languages
        ("ne prisylaite mne bolshe eti predlozheniya", "opt-out"),
        ("ne nadsylaite meni bilshe tsi propozytsii", "opt-out"),
        # whatever language its short words suggest ("me", "si" are Irish and Spanish too)
        ("mahnete me ot spisaka si, blagodarya", "opt-out"),
        ("Thanks, see you at the demo on Tuesday, Ivan.", "none"),
        # a Swedish or German sentence is never read as transliterated Russian
        ("Tack för infon! Återkommer efter styrelsemötet.", "none"),
        ("Die richtige Fassung kommt morgen, dann können wir über den Piloten reden.", "none"),
    ],
)
def test_latin_typed_cyrillic_is_read_only_where_it_can_be(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_a_phrase_shared_by_two_languages_keeps_both_readings_and_the_others_words() -> None:
    # Croatian and Slovenian both list "nas ne zanima": the Croatian reading keeps its refusal
    v = verdict("Nas ne zanima, hvala.")
    assert (v.verdict, v.language) == ("opt-out", "hr"), v.as_json()
    # ... and asking for a price list in the next clause declines a thing, not us
    v = verdict("Trenutačno nas ne zanima, ali možete mi ipak poslati cjenik da ga imam za kasnije?")
    assert v.verdict == "none", v.as_json()
    # a Norwegian phrase does not take the Danish words of the same sentence away
    assert verdict("Send ikke flere mails til mig.").verdict == "opt-out"


@pytest.mark.parametrize(
    "body",
    [
        # questions about what others can do with the product ask nothing
        "Can employees unsubscribe themselves from the reminder emails?",
        "Kunnen medewerkers zich zelf afmelden voor de herinneringsmails uit het systeem?",
        "Czy kontrahenci mogą sami wypisać się z powiadomień mailowych wysyłanych przez system?",
        "Kann man einzelne Mitarbeiter auf Wunsch wieder austragen lassen?",
        # deleting a thing the person sent by mistake is no request about them
        "Please delete the attachment I sent you by mistake yesterday, it had customer data in it.",
        "Pardon, j'ai joint par erreur un fichier interne dans mon précédent mail, pourriez-vous le supprimer ?",
        "Desculpe, o ficheiro que seguiu no meu email anterior foi por engano, agradeço que o elimine.",
        # things, not colleagues or a mailing list
        "You can list the keys for the bucket and call delete for each. Or you can delete them one at a "
        "time (without calling list first.) To delete all the keys, you'll need to delete them individually.",
        # stopping something of one's own, with contact in another clause
        "We stopped working with our old agency, so feel free to email me the details.",
        "We are stopping our current provider in January, so the timing is good.",
    ],
)
def test_questions_about_the_product_and_deleting_things_are_not_requests(body: str) -> None:
    assert verdict(body).verdict == "none", verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("Can you remove me from your list?", "opt-out"),
        ("Could you please stop emailing me?", "opt-out"),
        ("Potresti eliminare questo indirizzo dalle prossime comunicazioni?", "opt-out"),
        ("Okamžite to zastavte, inak to rieši náš právnik.", "opt-out"),
        ("x favore toglietemi dalla lista grazie", "opt-out"),
        ("Θέλω να διαγραφώ από τη λίστα.", "opt-out"),
    ],
)
def test_requests_asked_as_questions_or_without_a_pronoun_still_count(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_commas_and_sentence_marks_of_other_scripts_end_clauses_and_sentences() -> None:
    from proxy.classify.intent import sentences

    arabic = sentences("شكرا على العرض، لا أريد الاتصال الآن؛ أرسل لي الأسعار")
    assert len(arabic) == 2 and len(set(arabic[0].clause)) == 2
    assert len({c for s in sentences("ありがとう、でも結構です。また連絡します") for c in s.clause}) == 2
    assert len(sentences('It said "stop." Then it went on.')) == 2


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a referral to someone else is no opt-out
        ("Please don't write to me, write to my colleague Anna instead.", "none"),
        ("Please don't email me about this, email anna.berg@acme.example instead.", "none"),
        ("Bitte schreiben Sie nicht mir, sondern meiner Kollegin Frau Weber.", "none"),
        ("Please write to my colleague instead.", "none"),
        # a colleague who has left, then her mail that is not read
        ("Hej, Emma Sandberg har slutat här. Hennes mail läses inte längre.", "none"),
        # still requests
        ("Please don't write to me again.", "opt-out"),
        ("Please don't contact me or my colleagues again.", "opt-out"),
    ],
)
def test_referrals_and_people_who_left_are_not_opt_outs(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # polite past conditionals: the verb of leaving a job before "sending" is stopping it
        ("Jeg ville sette pris på om dere sluttet å sende meg e-post.", "opt-out"),
        ("Jag skulle uppskatta om ni slutade skicka mejl till mig.", "opt-out"),
        ("Hej, Emma har slutat här. Kontakta gärna växeln.", "none"),
        # an English not-request phrase does not take a Polish reply's own reading away
        ("Nie wiem, skąd macie mój adres. To spam.", "opt-out"),
        ("Thanks. Went to spam, but found it.", "none"),
        # a first name under the text is no word of another language
        ("Dimos de baja a nuestro antiguo proveedor, así que llegas en buen momento. Hablemos.\n\nSilvia", "none"),
        ("Thanks for the info.\n\nStop", "opt-out"),
    ],
)
def test_conditionals_phrases_of_other_languages_and_names(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_a_one_word_not_request_entry_silences_its_language_only() -> None:
    from proxy.classify.intent import Sentence, tag
    from proxy.classify.words import Lexicon

    lex = Lexicon.build(
        {"et": {"not_request": ["vajadusel"], "interest": ["vaja*"]}, "fi": {"interest": ["vajadus*"]}}, ()
    )
    tagged = tag(Sentence("vajadusel", 1, ("vajadusel",), (0,)), lex)
    assert "et" not in tagged.at and tagged.at["fi"] == {"interest": [0]}
    assert tag(Sentence("vajame", 1, ("vajame",), (0,)), lex).at["et"] == {"interest": [0]}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # interest conceded before a "but" is no sign of interest
        (
            "Your tool sounds interesting, but we just signed with another vendor. Please remove me from your list.",
            "opt-out",
        ),
        (
            "Ratkaisunne kuulostaa kiinnostavalta, mutta meillä on juuri allekirjoitettu sopimus toisen toimittajan "
            "kanssa. Toivoisin, että poistatte minut listaltanne.",
            "opt-out",
        ),
        ("Please remove me from your list. But actually, could we meet on Tuesday?", "uncertain"),
        # "in the spring" in a report of the past is no "write again later"
        (
            "Wir hatten im Frühjahr einen Fall mit einer gefälschten Rechnung. Bitte schreiben Sie mir nicht mehr.",
            "opt-out",
        ),
        # a correction of the channel or the recipient after "but"
        ("Schicken Sie mir die Unterlagen bitte nicht per Post, sondern per Mail.", "none"),
        ("Stuur het voorstel niet naar mij maar naar mijn collega.", "none"),
        ("Please don't send me any more emails, but thank you for the offer.", "opt-out"),
        (
            "Non mi scriva più a questo indirizzo, però se ha un listino me lo mandi: magari ci sentiamo lunedì?",
            "uncertain",
        ),
    ],
)
def test_conceded_interest_past_seasons_and_corrections(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("Kann man die Simulationen so einstellen, dass die Geschäftsführung nicht angeschrieben wird?", "none"),
        ("Can you stop emailing our director?", "opt-out"),
        ("otpishete me mersi", "opt-out"),
        ("ne treba meni vashyh lystiv dyakuyu", "opt-out"),
    ],
)
def test_questions_naming_a_role_and_short_latin_typed_replies(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_a_negation_reaches_a_sign_of_interest_with_nothing_between() -> None:
    body = (
        "Por isso não faz qualquer sentido continuarmos a conversar. "
        "Peço-lhe que retire o meu contacto das vossas listas."
    )
    assert verdict(body).verdict == "opt-out", verdict(body).as_json()
    # a request next to a real sign of interest still goes to review
    assert verdict("Peço-lhe que retire o meu contacto das vossas listas. Podemos conversar na terça?").verdict == (
        "uncertain"
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # interest in a past report or a refusing clause, or conceded by the next sentence's "but"
        (
            "Ihr Ansatz ist sicher interessant. Wir sind aber vertraglich gebunden. "
            "Streichen Sie uns bitte aus Ihrer Liste.",
            "opt-out",
        ),
        (
            "Wir hatten im letzten Jahr ein Gespräch mit einem ähnlichen Anbieter, die Preise waren für uns nicht "
            "darstellbar. Streichen Sie uns bitte aus Ihrer Liste.",
            "opt-out",
        ),
        ("Een demo heeft dus geen zin. Haal ons alstublieft van uw lijst.", "opt-out"),
        ("Your demo looks interesting. But we just signed with someone else. Please take us off your list.", "opt-out"),
        # interest still shown
        ("Your demo looks interesting. Please take us off your list for now.", "uncertain"),
        ("Please take us off your list. Actually, could we have a demo? But only next month.", "uncertain"),
    ],
)
def test_interest_reported_refused_or_conceded_does_not_hold_a_request_back(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a Turkish verb negated inside ("-mama-") negates the need in front of it
        ("Şu an böyle bir çözüme ihtiyacımız olmamaktadır.", "opt-out"),
        ("Bu hizmete ihtiyacımız var, toplantı yapalım.", "none"),
        # "not what we need" across a comma
        ("Это не то, что нам нужно, не пишите больше.", "opt-out"),
        ("Це не те, що нам потрібно, не пишіть більше.", "opt-out"),
        ("Ne, potřebujeme to, pošlete nabídku.", "none"),
        ("Y no hace falta que me quites de ninguna lista, me interesa.", "none"),
    ],
)
def test_negations_that_reach_a_need_outside_their_word_or_clause(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("Don't send it to my personal email address, use my work address.", "none"),
        ("Please don't email my private address, use my work email instead.", "none"),
        ("Don't send offers to this address, delete my address.", "opt-out"),
        ("Please don't email me, my address is private.", "opt-out"),
    ],
)
def test_a_redirect_to_another_address_of_the_person_is_no_opt_out(body: str, kind: str) -> None:
    assert verdict(body).verdict == kind, verdict(body).as_json()


def test_the_subject_reading_is_kept_per_word_lists_and_starts_afresh_with_new_ones() -> None:
    from proxy.classify import intent

    first = intent.judge("unsubscribe", "Thanks.", rules())
    again = intent.judge("unsubscribe", "Thanks.", rules())
    assert (first.outcome, first.where) == (again.outcome, again.where) == ("opt-out", "subject")
    assert intent.judge("Re: Stop losing deals", "Thanks.", rules()).outcome == "none"
    fresh = ReplyRules.compile(load_reply_words(SHIPPED_RULES / "replies"))
    assert intent.judge("unsubscribe", "Thanks.", fresh).outcome == "opt-out"
    assert intent._SUBJECTS.lexicon is fresh.lexicon
