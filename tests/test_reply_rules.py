"""The reply word lists as data: per-language files, a user's additions and removals, and their checks."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from proxy.classify.classifier import classify
from proxy.classify.reply_rules import ReplyRules
from proxy.cli.commands import main as gdpr_proxy
from proxy.rules.replies import LanguageWords, UserLanguageFile, load_reply_words, merge, reply_rules_report
from proxy.rules.ruleset import SHIPPED_RULES
from proxy.schema import SchemaError, load_text
from tests.harness import write_config

SHIPPED = SHIPPED_RULES / "replies"
LANGUAGES = sorted(p.stem for p in SHIPPED.glob("*.yaml") if p.name != "quoting.yaml")


def mail(body: str) -> bytes:
    return (
        "From: Anna <anna@acme.example>\r\nTo: jane@seller.example\r\nSubject: Re: Offer\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


@functools.lru_cache(maxsize=1)
def shipped_rules() -> ReplyRules:
    return ReplyRules.compile(load_reply_words(SHIPPED))


def compiled(user: Path | None = None) -> ReplyRules:
    return shipped_rules() if user is None else ReplyRules.compile(load_reply_words(SHIPPED, user))


def first_refusal(code: str) -> str:
    data = yaml.safe_load((SHIPPED / f"{code}.yaml").read_text(encoding="utf-8"))
    return str(data["refusal"][0])


def test_all_29_languages_are_shipped() -> None:
    assert set(LANGUAGES) == set(
        "bg hr cs da nl en et fi fr de el hu ga it lv lt mt pl pt ro sk sl es sv ar tr ru uk no".split()  # noqa: SIM905
    )


@pytest.mark.parametrize("code", LANGUAGES)
def test_each_language_knows_its_refusal_and_reads_nothing_into_a_greeting(code: str) -> None:
    rules = compiled()
    assert classify(mail(first_refusal(code)), rules).verdict == "opt-out", code
    assert classify(mail("Hello"), rules).verdict == "none"


def test_a_user_file_adds_one_phrase_and_every_shipped_language_keeps_working(tmp_path: Path) -> None:
    (tmp_path / "de.yaml").write_text("add:\n  request: [schluss mit den mails]\n", encoding="utf-8")
    shipped, mine = compiled(), compiled(tmp_path)
    # the shipped rules do not list it (the reply model, which would send it to review, is not asked)
    assert classify(mail("Schluss mit den Mails!"), shipped, second_signal=False).verdict == "none"
    assert classify(mail("Schluss mit den Mails!"), mine).verdict == "opt-out"
    for code in LANGUAGES:
        text = first_refusal(code)
        assert classify(mail(text), mine).verdict == classify(mail(text), shipped).verdict == "opt-out", code


def test_a_user_file_removes_a_shipped_word(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("remove:\n  refusal: [not for us]\n", encoding="utf-8")
    assert classify(mail("Not for us."), compiled()).verdict == "opt-out"
    assert classify(mail("Not for us."), compiled(tmp_path)).verdict == "none"


def test_a_user_file_for_an_unshipped_language_adds_it(tmp_path: Path) -> None:
    (tmp_path / "is.yaml").write_text("add:\n  refusal: [nei takk fyrir]\n", encoding="utf-8")
    words = load_reply_words(SHIPPED, tmp_path)
    assert "is" in words.languages and len(words.languages) == len(LANGUAGES) + 1
    assert classify(mail("Nei takk fyrir"), ReplyRules.compile(words)).language == "is"


def test_merge_reports_what_changed_and_removals_of_words_not_shipped() -> None:
    shipped = LanguageWords(refusal=("no thanks", "not for us"), stop=("stop",))
    user = UserLanguageFile(add=LanguageWords(refusal=("nope",)), remove=LanguageWords(refusal=("No Thanks", "nah")))
    merged, changes, problems = merge(shipped, user)
    assert merged.refusal == ("not for us", "nope") and merged.stop == ("stop",)
    assert [(c.key, c.added, c.removed) for c in changes] == [("refusal", ("nope",), ("no thanks",))]
    assert problems == [("remove.refusal[1]", "'nah' is not in the shipped list, so nothing is removed")]


def test_every_problem_of_a_user_file_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "de.yaml").write_text("add:\n  remove: [entfern*]\n  colour: [blue]\n", encoding="utf-8")
    (tmp_path / "gr.yaml").write_text("add:\n  refusal: [ochi]\n", encoding="utf-8")
    (tmp_path / "fr.yaml").write_text("add:\n  refusal:\n    - non merci\n    - '!!'\n", encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        load_reply_words(SHIPPED, tmp_path)
    found = {(Path(e.file).name, e.line, e.key) for e in info.value.errors}
    text = "\n".join(str(e) for e in info.value.errors)
    assert ("de.yaml", 3, "add.colour") in found, text
    assert ("fr.yaml", 4, "add.refusal[1]") in found and "no letters or digits" in text, text
    assert ("gr.yaml", None, "") in found and "ISO 639-1" in text, text
    # Removals are checked against the shipped lists once the file itself reads.
    for name in ("de.yaml", "gr.yaml", "fr.yaml"):
        (tmp_path / name).unlink()
    (tmp_path / "de.yaml").write_text("remove:\n  refusal:\n    - nein danke\n    - gibt es nicht\n", encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        load_reply_words(SHIPPED, tmp_path)
    assert [(e.line, e.key) for e in info.value.errors] == [(4, "remove.refusal[1]")]


def test_shipped_lists_validate_repeats_and_short_stems() -> None:
    with pytest.raises(SchemaError) as info:
        load_text("refusal: [no thanks, No Thanks!]\nremove: [re*]\n", "xx.yaml", LanguageWords)
    messages = "\n".join(str(e) for e in info.value.errors)
    assert "xx.yaml:1: refusal[1]: 'No Thanks!' repeats refusal[0]" in messages
    assert "xx.yaml:2: remove[0]: 're*': a stem needs at least three letters" in messages


def test_rules_check_says_what_a_user_file_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {})
    mine = tmp_path / "user-rules" / "replies"
    mine.mkdir(parents=True)
    (mine / "fr.yaml").write_text("add:\n  request: [arrêtez ce cirque]\nremove:\n  refusal: [non merci]\n")
    (tmp_path / "user-rules" / "optout.yaml").write_text("languages: {}\n")
    assert gdpr_proxy(["-c", str(config), "rules", "check"]) == 0
    out = capsys.readouterr().out
    assert f"{mine / 'fr.yaml'}: OK (yours" in out
    assert "fr request: adds 1: arrêtez ce cirque" in out
    assert "fr refusal: removes 1: non merci" in out
    assert "optout.yaml: no longer read" in out


def test_report_without_user_files_names_the_shipped_lists() -> None:
    lines = reply_rules_report(load_reply_words(SHIPPED), None)
    assert lines == [f"reply word lists: {len(LANGUAGES)} languages from {len(LANGUAGES) + 1} shipped file(s): OK"]
