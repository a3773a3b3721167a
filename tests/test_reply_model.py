"""The learned second opinion on replies: its features, how it turns the grammar's verdict, the shipped file."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest

from proxy.classify.intent import Judgement
from proxy.classify.model import (
    MODEL_FILE,
    ReplyModel,
    features,
    model_from_json,
    second_opinion,
    shipped_model,
)
from proxy.classify.reply_rules import ReplyRules
from proxy.rules.replies import load_reply_words
from proxy.rules.ruleset import SHIPPED_RULES

REPO = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def rules() -> ReplyRules:
    return ReplyRules.compile(load_reply_words(SHIPPED_RULES / "replies"))


def test_features_are_the_concepts_of_each_sentence_in_any_language():
    lex = rules()
    german = features("Hallo Herr Berger,\nbitte entfernen Sie mich aus Ihrem Verteiler.", lex)
    french = features("Merci de me retirer de votre liste.", lex)
    # the same combination whatever the words: what is learnt in one language counts in the other
    assert "remove" in german and "remove" in french
    assert any("list" in f and "remove" in f and "&" in f for f in german & french)
    assert not any(w in german for w in ("entfernen", "verteiler"))  # words are not features


def test_a_negation_near_a_concept_is_its_own_feature():
    lex = rules()
    assert "not contact" in features("Bitte kontaktieren Sie mich nicht mehr.", lex)
    assert "not contact" not in features("Bitte kontaktieren Sie mich am Montag.", lex)


def _model(**weights: float) -> ReplyModel:
    return ReplyModel(dict(weights), -2.0, 0.8, 0.2)


def test_the_grammar_finding_nothing_where_the_model_reads_a_request_goes_to_a_person():
    lex = rules()
    text = "Hello Anna,\nThanks for your mail.\nPlease take me off your list.\nBest, Tom"
    model = _model(**{f: 3.0 for f in features("Please take me off your list.", lex) if "&" in f})
    found = second_opinion(Judgement("none"), text, lex, model)
    assert found.outcome == "uncertain"
    assert found.evidence == "Please take me off your list."  # the sentence that read most like a request
    assert "reads like a request" in found.reason


def test_a_request_the_model_finds_nowhere_goes_to_a_person_and_one_it_backs_stands():
    lex = rules()
    asked = Judgement("opt-out", "Remove me.", "body line 1", "en", "asks to be removed", True)
    unsure = second_opinion(asked, "Remove me.", lex, _model())  # p = sigmoid(-2) = 0.12 <= 0.2
    assert unsure.outcome == "uncertain" and unsure.reason.startswith("asks to be removed, but")
    backed = second_opinion(asked, "Remove me.", lex, _model(remove=5.0))
    assert backed == asked


def test_a_request_in_the_subject_and_a_verdict_already_uncertain_are_left_as_they_are():
    lex = rules()
    subject = Judgement("opt-out", "unsubscribe", "subject", "en", "asks to be unsubscribed", True)
    assert second_opinion(subject, "", lex, _model()) == subject
    review = Judgement("uncertain", "x", "body line 1", "en", "a request beside a meeting")
    assert second_opinion(review, "x", lex, _model()) == review


def test_the_shipped_model_reads_requests_and_plain_replies_apart():
    lex = rules()
    model = shipped_model()
    assert 0.5 < model.review_none_above < 1 and 0 < model.review_request_below < 0.5
    request, _, _ = model.read("Bitte nehmen Sie mich aus Ihrem Verteiler und schreiben Sie mir nicht mehr.", lex)
    meeting, _, _ = model.read("Sounds good, can we have a call on Tuesday at 10? Best regards, Tom", lex)
    assert request > 0.9 and meeting < 0.5


def test_a_broken_model_file_is_named_with_what_is_wrong():
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="format"):
        model_from_json({**data, "format": 99}, "reply_model.json")
    with pytest.raises(ValueError, match="no weights"):
        model_from_json({**data, "weights": {}}, "reply_model.json")


def test_training_is_deterministic_and_learns_from_the_labels():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import reply_model
    finally:
        sys.path.remove(str(REPO / "bench"))
    rows = [(f"x-{i}", frozenset({"remove", "self", "remove&self"}), 1) for i in range(20)]
    rows += [(f"y-{i}", frozenset({"positive", "self"}), 0) for i in range(20)]
    first, second = reply_model.train(rows), reply_model.train(rows)
    assert first == second
    assert first.probability({"remove", "self", "remove&self"}) > 0.8
    assert first.probability({"positive", "self"}) < 0.2
