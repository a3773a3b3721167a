"""The lexicon's lookups: shortcuts that never change what a word or phrase means."""

from __future__ import annotations

from proxy.classify.textnorm import fold
from proxy.classify.words import Entry, Lexicon, parse_entry, romanized, tokens


def test_stems_of_every_length_are_found_and_other_beginnings_stop_early() -> None:
    lex = Lexicon.build({"de": {"remove": ["entf*", "entfern*"], "list": ["verteilerliste*"]}}, ())
    assert lex.senses("entfernen") == (("de", "remove"),)
    assert lex.senses("entfalten") == (("de", "remove"),)
    assert lex.senses("verteilerlisten") == (("de", "list"),)
    assert lex.senses("verteiler") == ()
    lex.stems.setdefault("abmelde", []).append(("de", "unsubscribe"))  # added later, of a known length
    assert lex.senses("abmelden") == (("de", "unsubscribe"),)


def test_phrases_starting_with_a_stem_are_found_from_any_longer_word() -> None:
    lex = Lexicon.build({"de": {"remove": ["entfern* sie mich", "nehm* ... raus"]}}, ())
    words = ["entfernen", "sie", "mich", "bitte", "nehmen", "uns", "raus"]
    assert [e.text for _, _, e in lex.phrase_hits(words, 0)] == ["entfern* sie mich"]
    assert [e.text for _, _, e in lex.phrase_hits(words, 4, frozenset(words))] == ["nehm* ... raus"]
    assert lex.phrase_hits(words, 1) == []


def test_starts_phrase_knows_exact_first_words_and_stem_heads() -> None:
    lex = Lexicon.build({"de": {"remove": ["entfern* sie mich", "bitte ... raus"]}}, ())
    assert lex.starts_phrase("entfernen") and lex.starts_phrase("entfern") and lex.starts_phrase("bitte")
    assert not lex.starts_phrase("entfer") and not lex.starts_phrase("bitten") and not lex.starts_phrase("sie")


def test_prefix_variants_apply_to_the_words_of_their_language_only() -> None:
    lex = Lexicon.build({"ga": {"remove": ["bain*"], "prefix_variants": ["mb > b"]}, "en": {"remove": ["mbain*"]}}, ())
    assert lex.senses("mbaint") == (("en", "remove"),)
    assert lex.senses("mbainim") == (("en", "remove"),)
    lex2 = Lexicon.build({"ga": {"remove": ["bain*"], "prefix_variants": ["mb > b"]}}, ())
    assert lex2.senses("mbaint") == (("ga", "remove"),)


def test_word_parts_are_no_entries_of_their_own() -> None:
    words = {"ru": {"remove": ["удал*"], "negation_prefixes": ["не"], "past_endings": ["ли"]}}
    assert romanized(words) == {"ru": {"remove": ["udal*"]}}
    assert Lexicon.build(words, ()).senses("ли") == ()


def test_fold_of_ascii_text_is_lower_case_with_backticks_as_apostrophes() -> None:
    assert fold("Don`t STOP") == "don't stop"
    assert fold("Ärger ŁÓDŹ") == "arger lodz"


def _typo_keys_by_all_deletions(lex: Lexicon, word: str) -> set[str]:
    """Every beginning of the word (from 4 letters on), with and without one letter left out."""
    keys = set()
    for n in range(4, len(word) + 1):
        head = word[:n]
        keys.add(head)
        keys.update(head[:i] + head[i + 1 :] for i in range(n))
    return {k for k in keys if k in lex.fuzzy}


def test_the_typo_walk_finds_every_key_that_trying_all_deletions_finds() -> None:
    lex = Lexicon.build(
        {"de": {"unsubscribe": ["abmelden", "austragen*"]}, "en": {"unsubscribe": ["unsubscribe*", "unsubscribing"]}},
        ("unsubscribe",),
    )
    for word in ("abmleden", "abmeldne", "austargen", "ustragen", "unsubscirbe", "unsbscribe", "unsubscribeing",
                 "abmelden", "zzzzzzzz", "unsubscribingg", "aabmelden"):  # fmt: skip
        assert set(lex._typo_keys(word)) == _typo_keys_by_all_deletions(lex, word), word
    assert lex.senses("abmleden") == (("de", "unsubscribe"),)
    assert lex.senses("unsbscribe") == (("en", "unsubscribe"),)


def test_many_phrases_of_one_first_word_come_in_the_word_lists_order() -> None:
    phrases = [f"take ... off word{k}" for k in range(40)]
    phrases[20] = "take me off"  # needs no word but the ones of its start
    lex = Lexicon.build({"en": {"remove": phrases}}, ())
    words = ["take", "me", "off", "word3", "word30"]
    found = [e.text for _, _, e in lex.phrase_hits(words, 0, frozenset(words))]
    assert found == [e.text for _, _, e in lex.phrase_hits(words, 0)]
    assert found == ["take ... off word3", "take me off"]
    words = ["take", "them", "off", "word30"]
    assert [e.text for _, _, e in lex.phrase_hits(words, 0, frozenset(words))] == ["take ... off word30"]


def test_a_one_word_elision_entry_meets_the_elided_word_of_a_text() -> None:
    assert parse_entry("negation", "n'") == Entry("negation", ("n'",), "n'")
    assert parse_entry("self", "m’") == Entry("self", ("m'",), "m’")
    assert parse_entry("please", "tista'") == Entry("please", ("tista",), "tista'")  # a word, not an elision
    assert tokens("N'envoyez plus rien") == ["n'", "envoyez", "plus", "rien"]


def test_a_turkish_case_ending_after_an_apostrophe_leaves_the_name() -> None:
    assert tokens("KVKK'ya aykırı, KVKK’ye göre") == ["kvkk", "aykiri", "kvkk", "gore"]
    assert tokens("e-posta'yı silin") == ["e-posta", "silin"]
    assert tokens("cos'è, dov'è, l'article, quelqu'un") == ["cos'", "e", "dov'", "e", "l'", "article", "quelquun"]


def test_a_pronoun_fused_to_a_request_verb_is_the_person_it_is_about() -> None:
    lex = Lexicon.build(
        {
            "it": {"remove": ["togli*", "rimuov*"], "delete": ["elimin*"], "contact": ["scriv*"]},
            "es": {"delete": ["borr*"], "contact": ["escrib*"]},
            "ro": {"remove": ["scoate*"], "delete": ["șterge*"]},
        },
        (),
    )
    assert ("it", "self") in lex.senses("toglimi")
    assert ("it", "self") in lex.senses("eliminatemi")
    assert ("it", "them") in lex.senses("rimuovetelo")
    assert ("es", "self") in lex.senses(tokens("bórrame")[0])
    assert ("es", "self") in lex.senses("escribirnos")
    assert ("ro", "self") in lex.senses(tokens("scoateți-mă")[0])
    assert ("ro", "self") in lex.senses(tokens("ștergeți-ne")[0])
    assert ("ro", "them") in lex.senses(tokens("scoateți-l")[0])
    assert lex.senses("eliminare") == (("it", "delete"),)  # no pronoun ending
    assert ("it", "self") not in lex.senses("togliamo")


def test_a_short_stem_does_not_read_a_word_another_language_knows_as_something_else() -> None:
    lex = Lexicon.build(
        {"tr": {"delete": ["sil*"]}, "fi": {"but": ["silti"], "later": ["silloin"]}, "lv": {"data": ["dat*"]},
         "es": {"data": ["datos"]}},
        (),
    )  # fmt: skip
    assert lex.senses("silti") == (("fi", "but"),)
    assert lex.senses("silloin") == (("fi", "later"),)
    assert lex.senses("silin") == (("tr", "delete"),)
    assert lex.senses("datos") == (("es", "data"), ("lv", "data"))  # the same concept: both readings stand


def test_a_stem_missing_its_last_letter_reads_its_own_endings_not_every_longer_word() -> None:
    lex = Lexicon.build({"cs": {"remove": ["vyhod*"]}, "bg": {"delete": ["заличи*"]}}, ("remove", "delete"))
    assert lex.senses("заличени") == (("bg", "delete"),)  # "заличен-и": the stem's other ending
    assert lex.senses("vyhovuje") == ()  # "it suits": only its beginning is alike
    assert lex.senses("vyhodte") == (("cs", "remove"),)  # the stem itself: any ending follows
    assert lex.senses("vyhdote") == (("cs", "remove"),)  # two letters swapped: a typo
