"""The lexicon's lookups: shortcuts that never change what a word or phrase means."""

from __future__ import annotations

from proxy.classify.textnorm import fold
from proxy.classify.words import Lexicon, romanized


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
