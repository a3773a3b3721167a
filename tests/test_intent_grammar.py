"""What a person asks of us, not what they report or ask about: the grammar's limits, in several languages."""

from __future__ import annotations

import pytest

from proxy.classify import intent
from proxy.classify.reply_rules import ReplyRules
from proxy.rules.replies import load_reply_words
from proxy.rules.ruleset import SHIPPED_RULES
from tests.test_intent import rules


def judged(body: str) -> str:
    """The grammar's own answer (``judge``), without the classifier's bounce and absence readers."""
    return intent.judge("Re: Offer", body, rules()).outcome


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a complaint that happened, told in the past, is a report, not a threat
        (
            "Wir haben letztes Jahr eine Beschwerde bei der Datenschutzbehörde gegen einen Lieferanten eingereicht.",
            "none",
        ),
        (
            "Nous avons porté plainte auprès de la CNIL contre un autre prestataire l'an dernier.",
            "none",
        ),
        (
            "Vorig jaar hebben we een klacht ingediend bij de Autoriteit Persoonsgegevens, dus dit komt goed uit.",
            "none",
        ),
        ("W zeszłym roku złożyliśmy skargę do UODO na innego dostawcę, więc temat jest pilny.", "none"),
        ("Loni jsme podali stížnost na ÚOOÚ kvůli jinému dodavateli, takže to řešíme.", "none"),
        (
            "L'anno scorso abbiamo presentato un reclamo al Garante contro un altro fornitore, mi mandi l'offerta.",
            "none",
        ),
        ("El año pasado presentamos una reclamación ante la AEPD contra otro proveedor, envíeme la oferta.", "none"),
        # a threat, or a past complaint about our mail, still counts
        ("If you write again I will complain to the ICO.", "opt-out"),
        ("Noch eine Mail und ich beschwere mich bei der Datenschutzbehörde.", "opt-out"),
        ("I have already complained to the ICO about your mails.", "opt-out"),
        ("Ich habe mich wegen Ihrer Mails schon bei der Datenschutzbehörde beschwert.", "opt-out"),
    ],
)
def test_a_complaint_reported_in_the_past_is_no_threat(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a removal from a thread, a copy or a document is no removal from our mailing
        ("Please remove item 3 from the offer, we don't need it, the rest is fine.", "none"),
        ("Take my colleague off this conversation, he is not involved. Can we talk tomorrow?", "none"),
        ("Bitte entfernen Sie Position 4 aus dem Angebot, die brauchen wir nicht.", "none"),
        ("Nehmen Sie meinen Kollegen bitte aus dem Verlauf, er ist nicht zuständig.", "none"),
        ("Haal mijn collega uit deze mailwisseling, hij is niet betrokken. Kunnen we morgen bellen?", "none"),
        ("Proszę usunąć z oferty pozycję szkolenie, reszta jest w porządku.", "none"),
        ("Odstraňte prosím z nabídky školení, to nepotřebujeme.", "none"),
        ("Odstráňte, prosím, z cenovej ponuky položku školenie, tú nepotrebujeme.", "none"),
        ("Αφαιρέστε παρακαλώ την εκπαίδευση από την προσφορά, δεν τη χρειαζόμαστε.", "none"),
        # a list, an address, data or our other mail beside it keeps the request
        ("Please remove my colleague from your mailing list.", "opt-out"),
        ("Please remove me from this thread and from your mailing list.", "opt-out"),
        ("Bitte entfernen Sie mich aus Ihrem Verteiler und schicken Sie keine Angebote mehr.", "opt-out"),
        ("Proszę usunąć mój adres z oferty i z listy mailingowej.", "opt-out"),
    ],
)
def test_a_removal_from_a_thread_or_a_document_is_no_opt_out(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a question word asks how the product works, even naming the person's team or a list
        ("Can my team unsubscribe contacts in bulk?", "none"),
        ("How do your customers handle deletion requests from their own contacts?", "none"),
        ("Kann mein Team Kontakte gesammelt abmelden?", "none"),
        ("Können unsere Mitarbeiter ihre Daten selbst löschen?", "none"),
        ("Kan mijn team contacten in bulk afmelden?", "none"),
        ("Czy nasi pracownicy mogą sami usunąć swoje dane z listy?", "none"),
        ("Může můj tým odhlásit kontakty hromadně?", "none"),
        ("Môže môj tím odhlásiť kontakty hromadne?", "none"),
        ("Μπορεί η ομάδα μου να διαγράψει επαφές από τη λίστα;", "none"),
        # asked of us, or with "please", a question is still the request
        ("Can you remove me from your list?", "opt-out"),
        ("Can my team please be removed from your list?", "opt-out"),
        ("Können Sie mich bitte aus dem Verteiler nehmen?", "opt-out"),
    ],
)
def test_a_question_about_how_the_product_works_asks_nothing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negated contact that leads its sentence, with "any more", is addressed to us
        ("Don't send any more offers.", "opt-out"),
        ("Schicken Sie keine weiteren Angebote.", "opt-out"),
        ("Nie wysyłajcie więcej ofert.", "opt-out"),
        ("Neposílejte už další nabídky.", "opt-out"),
        # a wish not to receive any more, with or without our mail named
        ("Ich will das nicht mehr bekommen.", "opt-out"),
        ("I don't want to get this any more.", "opt-out"),
        ("Je n'en veux plus.", "opt-out"),
        ("Ich will nichts mehr davon.", "opt-out"),
        # no more of something else is no refusal of our mail
        ("We don't want to pay more for licences. What does your plan cost?", "none"),
        ("Wir wollen nicht mehr so viel für Lizenzen zahlen. Was kostet Ihr Paket?", "none"),
    ],
)
def test_no_more_of_our_mail_and_no_more_of_something_else(body: str, kind: str) -> None:
    assert judged(body) == kind


def test_a_word_the_replys_own_language_says_asks_nothing_is_read_by_no_other() -> None:
    # German "Spam-Ordner" is a one-word not-request entry; Polish or Czech "spam*" do not read it
    assert (
        judged("leider habe ich Ihre Mail erst jetzt gesehen, sie war im Spam-Ordner. Können wir telefonieren?")
        == "none"
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a wish to stop something of one's own, told in the next clause, asks nothing of us
        ("Szeretnénk abbahagyni, hogy éjjel fél kettőkor én válaszolgatok a vásárlóknak.", "none"),
        # a bare stop, or one with a threat after it, still asks
        ("Kérem, hagyják abba.", "opt-out"),
        ("Okamžite to zastavte, inak podám sťažnosť.", "opt-out"),
        ("Stop it, please.", "opt-out"),
    ],
)
def test_a_wish_to_stop_ones_own_work_is_no_request(body: str, kind: str) -> None:
    assert judged(body) == kind


def test_tags_are_kept_for_a_second_reader_and_dropped_with_new_word_lists() -> None:
    sentence = intent.sentences("Please remove me from your list.")[0]
    lex = rules().lexicon
    first = intent.tag(sentence, lex, None, "en")
    assert intent.tag(sentence, lex, None, "en") is first
    assert intent.tag(sentence, lex, None, "de") is not first
    other = ReplyRules.compile(load_reply_words(SHIPPED_RULES / "replies")).lexicon
    assert intent.tag(sentence, other, None, "en") is not first
    assert intent.tag(sentence, other, None, "en").at == first.at


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a removal negated, however the "off" is said, asks to stay
        ("Nehmen Sie uns bitte nicht von der Liste, wir lesen mit.", "none"),
        ("Schrap ons niet uit de lijst, we lezen mee.", "none"),
        ("Ta inte bort mig från listan, jag läser den gärna.", "none"),
        ("Please don't take us off the list, we like the updates.", "none"),
        ("Nie usuwajcie nas z listy, to jest przydatne.", "none"),
        # "not X but Y": what to send or to whom, corrected
        ("Don't send me the brochure, but the price list.", "none"),
        ("Niet naar mij sturen, maar naar de inkoop.", "none"),
        ("Nepište mně, ale kolegovi z nákupu.", "none"),
        ("Schicken Sie mir die Unterlagen bitte nicht per Post, sondern per Mail.", "none"),
        # no more of it, or a request after the "but", is no correction
        ("Please don't send me any more emails, but thank you for the offer.", "opt-out"),
        ("Please don't write to me again, but I wish you luck.", "opt-out"),
        ("Schicken Sie mir keine Werbung, sondern löschen Sie meine Adresse.", "opt-out"),
    ],
)
def test_a_negated_removal_and_not_x_but_y_ask_nothing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a wish to be removed, the person unnamed
        ("I'd like to be removed.", "opt-out"),
        ("We wish to be removed.", "opt-out"),
        ("Ich möchte gelöscht werden.", "opt-out"),
        ("Ik wil graag verwijderd worden.", "opt-out"),
        ("Chciałbym zostać usunięty.", "opt-out"),
        ("Chtěl bych být odstraněn.", "opt-out"),
        # a wish to remove a thing
        ("I would like to remove the duplicates in our CRM before the import.", "none"),
        ("We want to delete it.", "none"),
        ("Ich möchte das Feld löschen.", "none"),
        ("Wir möchten alte Rechnungen automatisch löschen.", "none"),
    ],
)
def test_a_wish_to_be_removed_needs_no_me(body: str, kind: str) -> None:
    assert judged(body) == kind


def test_the_body_is_read_once_for_a_second_reader() -> None:
    text = "Please remove me from your list.\n\nBest regards,\nAnna Berg\n+44 20 7946 0000"
    body, guess = intent.read_body(text, rules())
    assert [s.text for s in body] == ["Please remove me from your list."] and guess == "en"
    assert intent._read_body(text, rules())[1] is intent._read_body(text, rules())[1]
    body.clear()  # the reader's own copy
    assert intent.read_body(text, rules())[0] and judged(text) == "opt-out"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # "call me" right after a negation, or a request carrying one, is forbidden, not offered
        ("Ärge helistage mulle enam.", "opt-out"),
        ("Älä soita minulle.", "opt-out"),
        # in another clause or sentence it is still interest
        ("No, call me tomorrow.", "none"),
        ("Take me off your list, but call me next week about the demo.", "uncertain"),
    ],
)
def test_a_sign_of_interest_right_after_a_negation_is_forbidden(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negated wish with words of its own does not reach the next clause
        ("Nem akarok tovább éjjel válaszolni a vásárlóknak, küldjenek árat.", "none"),
        ("Ich möchte nicht, dass Sie mir weiter schreiben.", "opt-out"),
        ("Nem akarom, hogy tovább írjanak nekem.", "opt-out"),
        # please, the person, a list, a negation and "any more": kept out, whatever the verb
        ("Vă rog să nu mă mai includeți în campaniile dumneavoastră.", "opt-out"),
        ("Please don't put me in your campaigns any more.", "opt-out"),
        ("Bitte fügen Sie mich nicht mehr zu Ihren Kampagnen hinzu.", "opt-out"),
    ],
)
def test_what_a_negated_wish_reaches_and_being_kept_out_of_a_list(body: str, kind: str) -> None:
    assert judged(body) == kind


def test_a_request_phrase_of_words_side_by_side_does_not_reach_over_a_comma() -> None:
    from proxy.classify.words import Lexicon

    lex = Lexicon.build(
        {"pt": {"request": ["não voltem a"], "refusal": ["não obrigado"], "remove": ["tirem ... da"]}}, ()
    )

    def concepts(text: str) -> dict[str, list[int]]:
        return intent.tag(intent.sentences(text)[0], lex).at.get("pt", {})

    assert "request" not in concepts("Agora não, voltem a contactar em setembro.")
    assert "request" in concepts("Não voltem a contactar.")
    assert "refusal" in concepts("Não, obrigado.")  # a refusal may
    assert "remove" in concepts("Tirem-me, por favor, da lista.")  # and so may a phrase with a gap


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # what the person will do themselves is no request to us
        ("I will delete my old account once we switch to you.", "none"),
        ("We will unsubscribe our team from the old vendor's newsletter next week.", "none"),
        ("We plan to delete our old mailing list and start fresh with your tool.", "none"),
        ("Ich werde meinen alten Account löschen, sobald wir wechseln.", "none"),
        ("We gaan onze oude mailinglijst verwijderen en willen met uw tool beginnen.", "none"),
        # "please", a conditional wish or "no more" keep the request
        ("We will be glad if you remove us from your list.", "opt-out"),
        ("Ich werde Sie bitten, mich aus dem Verteiler zu nehmen.", "opt-out"),
        ("I will delete any further emails unread, stop writing.", "opt-out"),
        ("I will report you to the ICO if this continues.", "opt-out"),
    ],
)
def test_what_the_person_will_do_themselves_is_no_request(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # another way or thing offered after a refused one is a preference
        ("Please don't phone me, e-mail is fine.", "none"),
        ("Bitte rufen Sie mich nicht an, schreiben Sie mir lieber eine Mail.", "none"),
        ("Don't send me the contract by post, a scan is enough.", "none"),
        ("Bel me niet, stuur liever een mail.", "none"),
        ("Proszę do mnie nie dzwonić, wolę maila.", "none"),
        # ... not when nothing is offered, "any more" is said or a refusal stands in its own clause
        ("Don't call me or write to me.", "opt-out"),
        ("Don't call or write.", "opt-out"),
        ("Don't call me, write to me.", "none"),
        ("Don't email me any more, e-mail is not fine.", "opt-out"),
        ("Please don't call me, I am not interested, e-mail is fine.", "opt-out"),
        ("Bitte rufen Sie mich nicht an, es reicht.", "opt-out"),
        # the same contact verb towards someone else hands the matter over
        ("Don't write to me about this, write to Olga in purchasing.", "none"),
        ("Не пишите мне по этому вопросу, пишите Ольге из закупок.", "none"),
        ("Не ми пишете по този въпрос, пишете на Олга.", "none"),
        ("Don't write to me any more, write to Olga.", "opt-out"),
        # a lone stop word has had enough; inside a sentence it says nothing
        ("Genug!", "opt-out"),
        ("Enough!", "opt-out"),
        ("Good enough for us, send the contract.", "none"),
        # a tie of short words goes to the language that reads more of the text
        ("Dezabonați-mă de la newsletter.", "opt-out"),
    ],
)
def test_preferences_hand_overs_and_lone_words(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a complaint after "again / one more" and our mail is the threat that follows the condition
        ("If you email me again I will report you.", "opt-out"),
        ("One more email and I will report you.", "opt-out"),
        ("Если вы ещё раз напишете, я на вас пожалуюсь.", "opt-out"),
        # not a complaint told before it, nor one passed on
        ("Our clients complain more and more about phishing emails.", "none"),
        ("I will report this to my manager and get back to you.", "none"),
    ],
)
def test_a_complaint_after_one_more_mail_is_a_threat(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # an authority that is the subject of a statement is a mention, one turned to a threat
        ("Die Datenschutzbehörde verlangt von uns Schulungen. Bieten Sie sowas an?", "none"),
        ("The ICO requires us to train our staff. What do you offer?", "none"),
        ("Ich gehe zur Datenschutzbehörde.", "opt-out"),
        ("I will go to the ICO.", "opt-out"),
        # "rather" inside a phrase still offers another way; Romanian "mai bine" holds no "more"
        ("Nu-mi trimiteți oferta pe fax, mai bine pe e-mail.", "none"),
        ("Nu-mi mai trimiteți oferte.", "opt-out"),
        # the Finnish negative imperative is the same verb as the positive one
        ("Älkää kirjoittako minulle, kirjoittakaa Jukalle.", "none"),
        ("Don't contact me, contacting is useless.", "opt-out"),
        # thanks, but no
        ("Thanks, but no.", "opt-out"),
        ("Merci, mais non.", "opt-out"),
        ("Obrigado, mas não posso terça, pode ser quarta?", "none"),
    ],
)
def test_mentions_preferences_and_thanks_but_no(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a request asked in its own clause is not taken back by a past told in the next
        ("Vi prego di cancellarmi, ho deciso di non ricevere più proposte.", "opt-out"),
        # a "please" of another clause does not make a negated mail a request, nor a plan one
        ("Nu găsesc mailul, îl puteți retrimite? Mă interesează.", "none"),
        ("Nous allons supprimer les factures papier l'an prochain, pouvez-vous nous aider ?", "none"),
        ("Bitte keine Mails.", "opt-out"),
    ],
)
def test_a_clause_asks_for_itself(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a thing refused and another asked for in the next clause refuses the thing, not us
        ("Nie potrzebujemy prezentacji, proszę od razu przesłać ofertę.", "none"),
        ("Δεν χρειαζόμαστε demo, στείλτε μας απευθείας προσφορά.", "none"),
        ("Nie potrzebujemy prezentacji.", "opt-out"),
        ("Kein Interesse an einer Demo, danke.", "opt-out"),
    ],
)
def test_a_thing_declined_beside_another_asked_for(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # whoever asks for a price list after refusing something wants mail, named or not
        ("No call needed, just send me the price list for ten users.", "none"),
        ("Einen Termin brauchen wir nicht, schicken Sie uns einfach die Preisliste.", "none"),
        ("No need for a call, please remove me from your list.", "opt-out"),
        ("Kein Interesse, bitte schicken Sie keine Angebote mehr.", "opt-out"),
    ],
)
def test_a_refusal_before_asking_for_an_offer_refuses_a_thing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a question led by a condition of the person's own asks what would happen
        ("If we cancel the contract, will you delete our data automatically?", "none"),
        ("Wenn wir kündigen, werden unsere Daten dann gelöscht?", "none"),
        ("Si résilions l'abonnement, nos données seront-elles supprimées ?", "none"),
        # a condition without words of its own, or about our mail, still asks
        ("If possible, can you remove me from your list?", "opt-out"),
        ("If you can, could you delete my data?", "erasure"),
    ],
)
def test_a_question_led_by_a_condition_asks_nothing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # an address removed and a new one given corrects what is kept
        ("Please delete our old delivery address and use the new one: 4 Mill Lane, Leeds.", "none"),
        ("Löschen Sie bitte die alte Lieferadresse und tragen Sie die neue ein.", "none"),
        # but not when the person or the list is removed and something else is new
        ("Remove me from your list, we have a new supplier.", "opt-out"),
        ("Delete me, we have a new provider.", "opt-out"),
    ],
)
def test_an_address_replaced_is_a_correction(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a complaint of the past about someone else, because of spam, is what happened
        ("Last year we complained to the ICO about another company because of spam.", "none"),
        ("Letztes Jahr haben wir uns bei der Datenschutzbehörde über eine andere Firma wegen Spam beschwert.", "none"),
        ("If you send me one more email I will report you to the ICO.", "opt-out"),
    ],
)
def test_a_complaint_told_of_the_past_is_no_threat(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negation reaches a contact further on when nothing else stands between
        ("Pyydän, ettei minuun oteta tämän tarjouksen tiimoilta enää koskaan yhteyttä.", "opt-out"),
        ("Palun minuga enam ühendust mitte võtta.", "opt-out"),
        # Maltese negation closing a verb whose stem is listed
        ("Tibgħatx aktar messaġġi.", "opt-out"),
        ("Tibgħat il-katalogu, jekk jogħġbok.", "none"),
        # a negation in a German phrase of staying keeps the person on the list
        ("Bitte nehmen Sie mich nicht aus dem Verteiler, ich lese alles.", "none"),
        ("Lassen Sie mich bitte künftig damit in Ruhe.", "opt-out"),
        ("Wir bitten darum, uns von Ihren Mailings auszunehmen.", "opt-out"),
    ],
)
def test_negations_that_reach_and_verbs_that_close_them(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negated wish negates the removing verb it governs: the person wants to stay
        ("I don't want to unsubscribe, just change my address.", "none"),
        ("No quiero darme de baja, solo cambiar la dirección.", "none"),
        ("Nem szeretnék leiratkozni, csak a címet módosítsák.", "none"),
        ("Bültenden çıkmak istemiyorum, sadece adresimi güncelleyin.", "none"),
        # a negated wish of our mail still refuses it
        ("I don't want your emails, unsubscribe me.", "opt-out"),
        ("No quiero recibir más correos, denme de baja.", "opt-out"),
        # the "can" of a question about the product is no "please"; a real "please" still asks
        ("¿Los trabajadores pueden darse de baja de los avisos ellos mismos?", "none"),
        ("Can my team please be removed from your list?", "opt-out"),
    ],
)
def test_a_wish_not_to_leave_and_questions_with_can(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # "not now and not later either" is no invitation to come back
        ("Not now and not later either. No follow-ups needed.", "opt-out"),
        ("Not now, but try again next year.", "none"),
        # asking for details after refusing something else shows interest
        ("Nie interesuje nas moduł kadrowy, ale księgowy tak. Proszę o szczegóły.", "uncertain"),
    ],
)
def test_a_negated_later_and_asking_for_details(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negation with a verb of its own ends at "and": what follows is said for itself
        ("Согласия я не давал и возражаю против обработки моих данных.", "opt-out"),
        ("Nigdy nie wyrażałem zgody i sprzeciwiam się przetwarzaniu moich danych.", "opt-out"),
        ("Ich kenne Sie nicht und möchte keine Werbung.", "opt-out"),
        # "don't call and don't write" keeps both negations
        ("Please don't call and don't write.", "opt-out"),
        # and a negation with nothing of its own still reaches past "and"
        ("We are not interested and never will be.", "opt-out"),
    ],
)
def test_and_ends_a_negation_that_has_its_own_verb(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # an asking word negated ("I do not ask") leaves the removal it governs unasked
        ("Dobrý den, jaké údaje o mně máte? Nežádám o smazání, jen o informaci.", "none"),
        ("Неправда, что я прошу удалить. Удалять не прошу, хочу просто понимать.", "none"),
        ("Laba diena. Neprašau jų ištrinti, tiesiog noriu žinoti, iš kur juos gavote.", "none"),
        ("Prosím, vymažte mé údaje.", "erasure"),
        # a "no" that answers before "please" and a removal; a negative imperative still negates
        ("No please remove me", "opt-out"),
        ("Tere! Ärge palun mulle rohkem kirju saatke.", "opt-out"),
        # the word of having had enough, with thanks beside it
        ("Užteks. Ačiū", "opt-out"),
        ("Good enough. Thanks", "none"),
    ],
)
def test_negated_asking_answers_and_enough_with_thanks(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a condition may lead a later clause, after a greeting or "and"
        ("Une question : si nous partons, comment se passe la suppression de nos fichiers chez vous ?", "none"),
        ("És ha egy kolléga leiratkozik a hírlevélről, azt a rendszer magától átvezeti?", "none"),
        ("Can you remove me, if that is possible?", "opt-out"),
        # a removal refused with "only" something else asked refuses the removal
        ("Nem kérem a törlést, csak tudni szeretném, honnan van a címem.", "none"),
        ("I am not asking for deletion, only for a copy of what you hold.", "none"),
        ("Not interested remove me", "opt-out"),
        # deleting data is erasure even beside a list
        ("cancellate i miei dati e toglietemi dalle vostre liste", "erasure"),
    ],
)
def test_conditions_in_later_clauses_and_removals_refused(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # where our mail landed, or nearly did, is no complaint about it
        ("I nearly deleted your mail as spam, but the figures are interesting.", "none"),
        ("Jeg var lige ved at slette mailen som spam, men prisen lyder godt.", "none"),
        ("Ihre Mail war im Spam gelandet, ich habe sie erst heute gefunden. Rufen Sie mich an.", "none"),
        # spam said of our mail now, or reported, still is
        ("Your emails are spam.", "opt-out"),
        ("I have reported your mails as spam.", "opt-out"),
    ],
)
def test_where_our_mail_landed_is_no_complaint(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a refusal inside a clause of condition of a question is what might be
        ("Si al final no nos interesa, ¿darse de baja es fácil o hay permanencia?", "none"),
        ("If in the end it does not suit us, can we cancel anytime?", "none"),
        ("Not interested. Can we stop here?", "opt-out"),
    ],
)
def test_a_refusal_in_a_condition_is_what_might_be(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a mobile client's line ends what the person wrote, in every language
        ("Užteks. Ačiū\n\nIšsiųsta iš mano iPhone", "opt-out"),
        ("Genug.\n\nVon meinem Samsung Galaxy gesendet", "opt-out"),
        ("Does it work on Android phones too?", "none"),
    ],
)
def test_a_mobile_signature_ends_the_text(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # what someone asked of the person is their task, not a request to us
        ("Our auditors asked us to delete old CVs after six months; does your tool do that?", "none"),
        ("My boss asked me to ask you to remove him from your list.", "opt-out"),
        ("Gelieve mij uit te schrijven.", "opt-out"),
        # "a.u.b." does not end a sentence
        ("Verwijder a.u.b. de oude offerte, de nieuwe volgt vandaag.", "none"),
        ("Verwijder mij a.u.b. uit uw bestand.", "opt-out"),
        # where did you get my data is a question
        ("¿Qué datos tienen sobre mí y de dónde los sacaron?", "none"),
    ],
)
def test_tasks_of_the_person_abbreviations_and_where_from(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # asked not to receive our mail, not in a question
        ("Les pedimos que ninguno de nuestros buzones vuelva a recibir correos suyos.", "opt-out"),
        ("Dá sa v aplikácii vypnúť, aby vodiči nedostávali upozornenia mailom?", "none"),
        # a verb that ends its clause takes the list in front of it
        ("bi zahmet listeden silin artik", "opt-out"),
        ("You can list the keys and delete them one at a time.", "none"),
        # a negated wish with "any more" in front of it
        ("Nu mai vreau să aud de voi în inbox-ul meu.", "opt-out"),
    ],
)
def test_receiving_refused_and_verbs_at_the_end(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # "without" and "nothing" negate the deletion they govern
        ("Katere podatke o meni imate? Prosim za vpogled, brez izbrisa.", "none"),
        ("Vad har ni för uppgifter om mig? Radera ingenting ännu.", "none"),
        ("Radera mina uppgifter.", "erasure"),
        # a company's own data protection officer is no supervisory authority
        ("Nos lo preguntará el delegado de protección de datos, seguro.", "none"),
        # a wish of others asked about in a question
        ("Si può disattivare il report per i capiturno che non lo vogliono ricevere?", "none"),
        # a condition about the future with "ever" in it
        ("Küsimus: kui leping kunagi lõpeb, kas te kustutate meie kliendiandmed?", "none"),
    ],
)
def test_without_nothing_officers_and_wishes_of_others(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        # a line typed all in lower case starts its sentences in lower case too
        ("no ta. stop sending me these pls", 2),
        ("ok. pls remove me", 2),
        # abbreviations in a line written with capitals, and dotted or one-letter ones anywhere
        ("Siehe z. B. die Liste bzw. die Tabelle.", 1),
        ("Ca. zwei Wochen, bzw. drei.", 1),
        ("see e.g. the list", 1),
    ],
)
def test_a_short_word_with_a_dot_ends_a_sentence_in_a_line_typed_in_lower_case(text: str, pieces: int) -> None:
    assert len(intent.sentences(text)) == pieces


def test_a_request_after_a_lower_case_thanks_is_read() -> None:
    assert judged("no ta. stop sending me thsee pls") == "opt-out"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # who does it, or whether it happens by itself: how the product works
        ("Can drivers stop a route mid-way if a customer cancels? And can we remove drops ourselves?", "none"),
        ("¿Se borran automáticamente o lo tenemos que pedir nosotros?", "none"),
        ("Ali lahko zaposleni sam zahteva izbris svojih podatkov v aplikaciji, ali moramo to narediti mi?", "none"),
        ("Och kan vi själva ta bort användare som har slutat, utan att gå via er support?", "none"),
        ("Est-ce qu'on peut effacer les données d'un fournisseur nous-mêmes dans l'outil ?", "none"),
        # a request asked as a question still counts
        ("Can you remove me from your list?", "opt-out"),
        ("Could you stop emailing us?", "opt-out"),
    ],
)
def test_a_question_about_doing_it_oneself_or_automatically_asks_nothing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # the passive: a participle after "be" is no past tense, and its subject is the person
        ("Can I be removed from your list?", "opt-out"),
        ("Please can we be removed.", "opt-out"),
        ("Can my colleague be removed from your list?", "opt-out"),
        ("Can my details be deleted?", "erasure"),
        ("Kann ich aus Ihrem Verteiler gestrichen werden?", "opt-out"),
        ("¿Podemos ser eliminados de su lista?", "opt-out"),
        ("Podemos ser removidos da vossa lista?", "opt-out"),
        # a passive about things, or one in the past, asks nothing
        ("Can duplicates be removed?", "none"),
        ("Old entries can be deleted after a year.", "none"),
        ("I was removed from your list by mistake yesterday.", "none"),
    ],
)
def test_a_passive_removal_names_its_subject(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # spam named in a reply that shows interest is some other mail's
        (
            "Gerade gestern hat eine Kollegin auf eine Spam-Mail geklickt, also ja, Thema ist akut. "
            "Können Sie mir einen Termin am Donnerstag vorschlagen?",
            "none",
        ),
        ("Vos concurrents m'ont spammée tout l'automne. Du coup, oui, je veux bien un échange en visio.", "none"),
        # alone, or beside a request, it still counts
        ("This is spam.", "opt-out"),
        ("This is spam. Remove me, I am not interested in a call.", "opt-out"),
    ],
)
def test_spam_beside_interest_is_no_name_for_our_mail(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # the answer no as a sentence of its own
        ("No.", "opt-out"),
        ("Nee. Ook niet over een halfjaar, ook niet als er een nieuwe versie uitkomt.", "opt-out"),
        ("Hayır.", "opt-out"),
        ("Tak, men nej.", "opt-out"),
        # a no that ends a longer clause: "not now", a choice
        ("Adesso proprio no, abbiamo l'audit a fine mese. Mi ricontatti dopo Pasqua.", "none"),
        ("Let me know if it is a yes or a no.", "none"),
        # a later refused beside "not now" refuses that too
        ("Nej. Inte nu, inte efter nyår och inte när ni har en ny kampanj.", "opt-out"),
        # a question, a no that goes on, a later still asked for
        ("No?", "none"),
        ("No, we don't use Excel. What does it cost?", "none"),
        ("No thanks. Not before spring, write to me in March.", "none"),
        ("No. I mean yes, Tuesday works.", "uncertain"),
    ],
)
def test_the_answer_no_refuses_and_a_refused_later_is_no_later(body: str, kind: str) -> None:
    assert judged(body) == kind


def test_a_list_named_no_is_not_read_as_false_by_yaml() -> None:
    # YAML 1.1 reads a bare key "no" as false: the list of the answer no is "answer_no"
    words = load_reply_words(SHIPPED_RULES / "replies")
    assert "no" in words.languages["en"].answer_no and "nein" in words.languages["de"].answer_no


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # consent withdrawn, in the person's own words and word order
        ("If I ever gave you consent, I withdraw it.", "opt-out"),
        ("Hvis jeg har krydset af i en boks ved en messe, så trækker jeg samtykket tilbage hermed.", "opt-out"),
        ("Võtan tagasi igasuguse nõusoleku, mida ma võisin kunagi anda.", "opt-out"),
        ("Согласие отзываю.", "opt-out"),
        # the use of the person's own data refused, not wished or not permitted
        ("I do not allow you to use my data for marketing.", "opt-out"),
        ("Mina uppgifter ska inte användas till marknadsföring från er.", "opt-out"),
        ("Ik wil niet dat jullie mijn gegevens nog gebruiken om mij iets te verkopen.", "opt-out"),
        ("Использовать мои контакты для рекламы не разрешаю.", "opt-out"),
        ("Bio bih Vam zahvalan kada moju adresu ubuduće ne biste koristili za slanje ponuda.", "opt-out"),
        # a question about consent, a use that names no data of the person's
        ("Can customers withdraw their consent in the app?", "none"),
        ("We don't use Excel any more.", "none"),
    ],
)
def test_consent_withdrawn_and_a_use_refused_are_objections(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # work done by hand or automatically, told without a wish or "please"
        (
            "Hola Lucía, me interesa. Lo que más nos duele es que los encargados tienen que borrar a mano "
            "los fichajes duplicados.",
            "none",
        ),
        ("Super, że to usuwa ręczne przepisywanie. Proszę o ofertę dla 3 spółek.", "none"),
        # a request asked with "please" still counts
        ("Please remove me manually from every list you have.", "opt-out"),
    ],
)
def test_work_done_by_hand_or_automatically_asks_nothing(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # an asking word that leads its clause asks
        ("Mam dość, proszę mnie usunąć.", "opt-out"),
        # one inside a clause reports what others asked of the person
        ("Our auditors asked us to delete old CVs, so we are looking at tools.", "none"),
    ],
)
def test_an_asking_word_leading_its_clause_asks(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a question led by a question word asks how something is done
        ("What happens to our data if we cancel the contract, is it deleted?", "none"),
        ("Who deletes the records when an employee leaves, you or us?", "none"),
        ("Was passiert mit unseren Daten nach Vertragsende, werden sie gelöscht?", "none"),
        ("Comment se passe la suppression de nos données si nous résilions ?", "none"),
        ("¿Qué pasa con nuestros datos si cancelamos, se borran?", "none"),
        ("Vad händer med vår data om vi säger upp avtalet, raderas den?", "none"),
        # one about a list or our mail is the person wanting out; a yes/no question asks
        ("How can I get off your list?", "opt-out"),
        ("Kas te saate mind eemaldada?", "opt-out"),
        ("Can you delete my data?", "erasure"),
    ],
)
def test_a_question_led_by_a_question_word_asks_for_information(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # the mailbox of someone who left is being closed
        ("Lars Haugen har sluttet hos oss, og e-postkontoen hans blir slettet i løpet av uka.", "none"),
        ("Anna has left the company and her mailbox will be deleted next week.", "none"),
        # "please", a list or an imperative still asks
        ("Anna has left the company. Please take her off the list.", "opt-out"),
        ("Anna has left the company, remove her from your list.", "opt-out"),
    ],
)
def test_a_mailbox_closed_after_someone_left_is_no_request(body: str, kind: str) -> None:
    assert judged(body) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # a negated removal reaches the removal joined to it by "or"
        ("Please don't delete or unsubscribe me, I only want to know where you got my address.", "none"),
        ("Ich möchte nicht gelöscht oder ausgetragen werden, sondern nur wissen, welche Daten Sie haben.", "none"),
        ("Jag vill inte bli borttagen eller avregistrerad, jag vill bara veta vilka uppgifter ni har om mig.", "none"),
        # a wish or refusal that ends its clause governs the verb behind the word that joins them
        ("Я не хочу, чтобы вы меня удаляли, просто скажите, какие данные у вас есть.", "none"),
        ("Nem kérem, hogy töröljenek vagy leiratkoztassanak, csak tudni szeretném, milyen adataim vannak.", "none"),
        # an imperative that opens its own clause is asked on its own
        ("v-am zis ca nu vreau, stergeti-ma odata din lista aia!!", "opt-out"),
        ("I don't want that, remove me.", "opt-out"),
        ("Don't delete my data, unsubscribe me.", "opt-out"),
    ],
)
def test_a_negated_removal_reaches_the_one_joined_to_it(body: str, kind: str) -> None:
    assert judged(body) == kind
