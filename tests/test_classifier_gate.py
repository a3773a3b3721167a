"""classify() spares a person's reply the complaint and bounce readers, and answers as if it had run them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from proxy.classify import classifier
from proxy.classify.classifier import Verdict, classify
from proxy.rules.ruleset import RuleSet, load_rules
from tests import bounce_messages
from tests.corpus.replies import build

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "replies"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def both_ways(raw: bytes, rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> tuple[Verdict, Verdict]:
    """The verdict as classify() gives it, and with every reader run."""
    gated = classify(raw, rules.reply_rules, rules.footer_fingerprints)
    with monkeypatch.context() as patch:
        patch.setattr(classifier, "could_be_report", lambda msg: True)
        ungated = classify(raw, rules.reply_rules, rules.footer_fingerprints)
    return gated, ungated


def mail(body: str, ctype: str = "text/plain; charset=utf-8", headers: str = "", encoding: str = "8bit") -> bytes:
    return (
        "From: Anna <anna@acme.example>\r\nTo: jane@seller.example\r\nSubject: Re: Offer\r\n"
        f"Message-ID: <r1@acme.example>\r\n{headers}Content-Type: {ctype}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{body}"
    ).encode()


NOTICE = '{"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "gone@acme.example", "status": "5.1.1"}]}}'  # noqa: E501
REPORTS = {
    "postfix report": bounce_messages.postfix_dsn("gone@acme.example", "5.1.1", "550 5.1.1 unknown user", "m1@x"),
    "exim text": bounce_messages.exim_text("gone@acme.example", "550 5.1.1 unknown user", "m1@x"),
    "feedback report": bounce_messages.arf_complaint("anna@acme.example", "m1@x"),
    "JSON notice in base64": mail(base64.b64encode(NOTICE.encode()).decode(), "application/json", encoding="base64"),
    "report written as HTML entities": mail(
        "<p>&#70;inal-Recipient: rfc822; gone@acme.example<br>Action: failed<br>Status: 5.1.1</p>",
        "text/html; charset=utf-8",
    ),
    "one-click unsubscribe": mail("Unsubscribe", headers="X-Apple-Unsubscribe: true\r\n"),
}


@pytest.mark.parametrize("name", REPORTS)
def test_reports_reach_the_readers(name: str, rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    gated, ungated = both_ways(REPORTS[name], rules, monkeypatch)
    assert gated == ungated
    assert gated.verdict in ("bounce", "complaint", "opt-out"), gated


def test_fixtures_answer_as_with_every_reader(rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(FIXTURES.glob("*.eml"))
    assert files
    for path in files:
        gated, ungated = both_ways(path.read_bytes(), rules, monkeypatch)
        assert gated == ungated, path.name


def test_corpus_replies_answer_as_with_every_reader(rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = list(build.iter_corpus("train"))[::7]  # every shape and language, a seventh of the time
    assert cases
    for case in cases:
        gated, ungated = both_ways(case.raw, rules, monkeypatch)
        assert gated == ungated, case.id


def test_a_persons_reply_is_no_report(rules: RuleSet) -> None:
    from proxy.classify import mimeparse

    assert not classifier.could_be_report(mimeparse.parse(mail("No thanks, please remove me.")))
