"""The reply model (proxy/classify/model.py): the second signal beside the rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from proxy.classify import model as reply_model
from proxy.classify.classifier import classify
from proxy.classify.intent import Judgement, judge
from proxy.classify.reply_rules import ReplyRules
from proxy.rules.ruleset import load_rules

FOOTER_SENTENCE = 'You can object at any time: simply reply "No thanks" or STOP and you will be removed from our list.'
# Requests to stop worded in ways the reply rules did not list when this was written: the
# test wants at least one of them that the rules answer none and the model flags.
UNLISTED_REQUESTS = (
    "Spare me these emails in future.",
    "Spare me any more of these mails.",
    "Please spare me these messages from now on.",
)
NEUTRAL = "Thanks, the call on Tuesday works for me."


@pytest.fixture(scope="module")
def shipped() -> tuple[ReplyRules, tuple[str, ...]]:
    rules = load_rules()
    return rules.reply_rules, tuple(rules.footer_fingerprints)


@pytest.fixture(scope="module")
def model() -> reply_model.ReplyModel:
    found = reply_model.shipped_model()
    assert found is not None, "the shipped reply model did not load"
    return found


def mail(body: str, subject: str = "Re: Cutting failed deliveries at Harrow Freight") -> bytes:
    return (
        "From: Anna Example <Anna@Acme.example>\r\nTo: jane@seller.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <r1@acme.example>\r\n"
        "In-Reply-To: <m1@seller.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def test_shipped_file_matches_its_header() -> None:
    header, values = reply_model.read_file()  # checks magic, format, checksum and length
    assert header["spec"] == reply_model.Spec().as_json()
    assert len(values) == reply_model.Spec().buckets
    assert header["nonzero"] == sum(1 for v in values if v) > 1000
    assert 0.5 <= header["flag"] <= 1.0
    assert 0.0 <= header["veto"] < 0.5
    assert header["counts"]["texts"] > header["counts"]["requests"] > 0
    assert len(header["train_sha256"]) == 64
    assert reply_model.DATA_FILE.stat().st_size < 3_000_000


def test_scores_are_deterministic_and_the_fast_path_matches_the_features(model: reply_model.ReplyModel) -> None:
    text = "Bitte nehmen Sie mich aus Ihrem Verteiler, danke. Grüße aus Köln"
    again = reply_model.ReplyModel.load()
    assert model.score(text) == again.score(text) == again.score(text)
    weights = [v * model.scale for v in model.values]
    words = reply_model.words_of(text)
    slow = reply_model.predict(model.bias, weights, reply_model.features(words))
    assert model.score(text) == pytest.approx(slow, abs=1e-9)


def test_an_unlisted_request_scores_above_a_neutral_reply(model: reply_model.ReplyModel) -> None:
    neutral = model.score(NEUTRAL)
    assert neutral < 0.5
    for text in (*UNLISTED_REQUESTS, "Kindly strike my address off whatever distribution you keep."):
        assert model.score(text) > neutral + 0.4, text


def test_a_wording_the_rules_miss_goes_to_a_person(
    shipped: tuple[ReplyRules, tuple[str, ...]], model: reply_model.ReplyModel
) -> None:
    rules, fingerprints = shipped
    missed = [t for t in UNLISTED_REQUESTS if judge("", t, rules).outcome == "none" and model.score(t) >= model.flag]
    assert missed, "the rules now read every one of UNLISTED_REQUESTS: add a wording they miss"
    for text in missed:
        verdict = classify(mail(text), rules, fingerprints)
        assert verdict.verdict == "uncertain"
        assert verdict.reason.startswith("no rule matched, but the wording reads like a request to stop (model ")
        assert verdict.evidence == text
        assert verdict.addresses == ("anna@acme.example",)
        # the rules alone say nothing
        assert classify(mail(text), rules, fingerprints, second_signal=False).verdict == "none"


def test_the_model_never_decides_a_request_by_itself(
    shipped: tuple[ReplyRules, tuple[str, ...]], model: reply_model.ReplyModel
) -> None:
    rules, _ = shipped
    eager = dataclasses.replace(model, flag=1e-9, veto=0.0)
    none = Judgement("none", language="en")
    for text in (NEUTRAL, *UNLISTED_REQUESTS):
        found, score = reply_model.second_opinion(none, text, rules, eager)
        assert found.outcome == "uncertain" and score is not None
    # words the rules read (a negated request, a question about others) are left to them
    for text in ("Please do not unsubscribe me, I read every issue.", "Can my team unsubscribe themselves?"):
        assert reply_model.second_opinion(none, text, rules, eager)[0] == none, text
    # a request in so many words stands, whatever the model says
    doubtful = dataclasses.replace(model, veto=0.999)
    explicit = judge("", "Please take me off your list.", rules)
    assert explicit.outcome == "opt-out" and explicit.explicit
    assert reply_model.second_opinion(explicit, "Please take me off your list.", rules, doubtful)[0] == explicit
    # so does a refusal, which our footer asks for ("No thanks")
    refusal = judge("", "No thanks.", rules)
    assert refusal.outcome == "opt-out" and not reply_model.vetoable(refusal)
    assert reply_model.second_opinion(refusal, "No thanks.", rules, doubtful)[0] == refusal
    # one the rules infer stands unless the model is sure there is none
    inferred = dataclasses.replace(refusal, reason="does not want our mail", explicit=False)
    assert reply_model.vetoable(inferred)
    assert reply_model.second_opinion(inferred, "I do not read these mails.", rules, model)[0] == inferred
    found, _ = reply_model.second_opinion(inferred, NEUTRAL, rules, doubtful)
    assert found.outcome == "uncertain" and "the rules read opt-out" in found.reason
    # a request in the subject is the rules' alone
    subject = dataclasses.replace(inferred, where="subject")
    assert reply_model.second_opinion(subject, NEUTRAL, rules, doubtful)[0] == subject


@pytest.mark.parametrize("below", [True, False])
def test_a_positive_reply_quoting_our_footer_stays_none(
    shipped: tuple[ReplyRules, tuple[str, ...]], model: reply_model.ReplyModel, below: bool
) -> None:
    rules, fingerprints = shipped
    positive = "Sounds good, let's talk on Thursday at 10. Could you bring the pricing?"
    quoted = f"> {FOOTER_SENTENCE}"
    body = f"{positive}\n\n{quoted}\n" if below else f"{quoted}\n\n{positive}\n"
    verdict = classify(mail(body), rules, fingerprints)
    assert verdict.verdict == "none", verdict
    assert model.score(FOOTER_SENTENCE) > model.score(positive)  # the quote would have counted


TINY = (
    ("please remove me from your list", 1),
    ("unsubscribe me now", 1),
    ("stop emailing me", 1),
    ("delete my data please", 1),
    ("take me off the mailing list", 1),
    ("sounds great, call me on monday", 0),
    ("thanks, send the brochure", 0),
    ("i am out of the office until friday", 0),
    ("who else should we talk to", 0),
    ("please send me the price list", 0),
)


def test_retraining_is_deterministic(tmp_path: Path) -> None:
    spec = reply_model.Spec(bits=12)
    examples = [(reply_model.features(reply_model.words_of(t, spec), spec), y) for t, y in TINY]
    files = []
    for name in ("a.bin", "b.bin"):
        bias, weights = reply_model.fit(examples, spec, epochs=20)
        scale, values = reply_model.quantise(weights)
        header = {"spec": spec.as_json(), "bias": bias, "scale": scale, "flag": 0.9, "veto": 0.0}
        reply_model.dump(tmp_path / name, header, values)
        files.append((tmp_path / name).read_bytes())
    assert files[0] == files[1]
    tiny = reply_model.ReplyModel.load(tmp_path / "a.bin")
    assert tiny.spec == spec
    for text, y in TINY:
        assert (tiny.score(text) >= 0.5) == bool(y), text
    assert reply_model.fit(examples, spec, epochs=20, seed=2) != reply_model.fit(examples, spec, epochs=20)


@pytest.mark.parametrize("text", ["Tak for din mail. Det lyder godt.", "Here is another email", "Danke für Ihre Mail!"])
def test_a_reply_that_only_mentions_mail_is_never_flagged(
    shipped: tuple[ReplyRules, tuple[str, ...]], model: reply_model.ReplyModel, text: str
) -> None:
    rules, _ = shipped
    eager = dataclasses.replace(model, flag=1e-9)
    none = Judgement("none", language=None)
    assert reply_model.second_opinion(none, text, rules, eager)[0] == none
    # while a wording that holds a word of a request is
    flagged, _ = reply_model.second_opinion(none, "I have had enough of your list.", rules, eager)
    assert flagged.outcome == "uncertain"
