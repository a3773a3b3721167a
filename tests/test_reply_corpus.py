"""The reply corpus itself: text files valid, every rendered message readable and faithful, split stable."""

from __future__ import annotations

import email
import email.message
import html
import re
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.corpus.replies import build

TEXT_FILES = sorted(build.TEXTS_DIR.glob("*.yaml"))
AUTO_REPLY_HEADERS = ("auto-submitted", "x-autoreply", "x-autorespond", "precedence", "x-auto-response-suppress")
REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "MIME-Version")


@cache
def corpus() -> tuple[build.Case, ...]:
    return tuple(build.iter_corpus("all"))


def squash(text: str) -> str:
    return " ".join(text.split())


def unflow(text: str) -> str:
    """Undo format=flowed (RFC 3676): join soft-broken lines of the same quote depth."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = -1
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # the stuffing space (or the one after the quote marks)
        if pending is not None and depth == pending_depth:
            content = pending + content
        elif pending is not None:
            out.append(">" * pending_depth + pending)
        pending = None
        if content.endswith(" ") and content != "-- ":
            pending, pending_depth = content, depth
        else:
            out.append(">" * depth + (" " if depth and content else "") + content)
    if pending is not None:
        out.append(">" * pending_depth + pending)
    return "\n".join(out)


def unquote(text: str) -> str:
    return re.sub(r"(?m)^[> ]+", "", text)


def html_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(style|head)\b.*?</\1>", " ", markup)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def decoded(part: email.message.Message) -> str:
    """The part's text, decoded strictly with the charset it declares."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "us-ascii")


def first_text(msg: email.message.Message) -> tuple[str, str]:
    """The text a mail reader shows: the plain part, or the HTML made text when there is none."""
    parts = [p for p in msg.walk() if p.get_content_maintype() == "text"]
    plain = [p for p in parts if p.get_content_subtype() == "plain"]
    if plain:
        text = decoded(plain[0])
        if plain[0].get_param("format") == "flowed":
            text = unflow(text)
        return "plain", text
    assert parts, "no text part"
    return "html", html_text(decoded(parts[0]))


@pytest.mark.parametrize("path", TEXT_FILES, ids=[p.stem for p in TEXT_FILES])
def test_text_file_is_valid(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert build.text_file_problems(data) == []
    assert data["language"] == path.stem


def test_every_language_of_the_corpus_is_known() -> None:
    assert TEXT_FILES, "no text files in tests/corpus/replies/texts"
    assert {p.stem for p in TEXT_FILES} <= set(build.LANGUAGES)


def test_problems_are_reported_for_a_broken_file() -> None:
    broken = {
        "language": "de",
        "client_strings": {"gmail_attribution": "x"},
        "original": {"subject": "s", "text": "t"},
        "replies": [
            {"id": "de-001", "expect": "maybe", "kind": "short", "text": "x"},
            {"id": "de-001", "expect": "none", "kind": "chatty", "text": ""},
        ],
    }
    problems = " | ".join(build.text_file_problems(broken))
    for wanted in (
        "client_strings.apple_attribution",
        "expect 'maybe'",
        "id used twice",
        "kind 'chatty'",
        "text missing",
    ):
        assert wanted in problems


def test_every_message_parses_and_its_text_decodes_to_what_the_person_wrote() -> None:
    for case in corpus():
        msg = email.message_from_bytes(case.raw)
        assert not msg.defects, (case.id, msg.defects)
        for name in REQUIRED_HEADERS:
            assert msg[name], (case.id, name)
        _, text = first_text(msg)
        assert squash(case.text) in squash(text), case.id
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                decoded(part)  # every part, not only the one shown, is in its declared charset


def test_replies_answer_our_original_and_quote_its_footer() -> None:
    footers = build.load_footers()
    threads = {f.language: build.make_thread(f, footers) for f in build.load_text_files()}
    quoting = set(build.REPLY_SHAPES) - {"plain"}
    for case in corpus():
        thread = threads[case.language]
        msg = email.message_from_bytes(case.raw)
        assert thread.message_id in msg["References"], case.id
        if case.shape in quoting:
            _, text = first_text(msg)
            assert squash(thread.objection_sentence) in squash(unquote(text)), case.id
            assert "STOP" in thread.objection_sentence or thread.language not in footers


def test_auto_replies_carry_auto_reply_headers_only_in_their_own_kind() -> None:
    with_headers = 0
    for case in corpus():
        msg = email.message_from_bytes(case.raw)
        present = [h for h in AUTO_REPLY_HEADERS if msg[h]]
        if case.kind == "out-of-office-headers":
            assert msg["Auto-Submitted"] == "auto-replied", case.id
            assert case.expect == "auto-reply"
            with_headers += 1
        else:
            assert present == [], case.id
    assert with_headers > 0


def test_traps_are_made_and_hold_what_makes_them_traps() -> None:
    cases = corpus()
    texts = {r.id: r for f in build.load_text_files() for r in f.replies}
    kinds = Counter(c.kind for c in cases)
    assert kinds["trap-out-of-office-quoting"] > 0 and kinds["trap-footer-quoted"] > 0
    footers = build.load_footers()
    threads = {f.language: build.make_thread(f, footers) for f in build.load_text_files()}
    for case in cases:
        if case.kind == "trap-out-of-office-quoting":
            opt_out = texts[case.text_id]
            assert opt_out.expect == "opt-out" and case.expect == "auto-reply"
            _, text = first_text(email.message_from_bytes(case.raw))
            assert squash(opt_out.text) in squash(unquote(text)), case.id
            assert squash(text).startswith(squash(case.text)), case.id
        if case.kind == "trap-footer-quoted":
            assert case.expect == "none" and texts[case.text_id].kind in build.POSITIVE_KINDS
            _, text = first_text(email.message_from_bytes(case.raw))
            sentence = squash(threads[case.language].objection_sentence)
            assert sentence in squash(unquote(text)), case.id


def test_shapes_charsets_and_encodings_are_all_used() -> None:
    shapes: Counter[str] = Counter()
    charsets: set[str] = set()
    encodings: set[str] = set()
    flowed = html_only = 0
    for case in corpus():
        msg = email.message_from_bytes(case.raw)
        shapes[case.shape] += 1
        html_only += msg.get_content_type() == "text/html"
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                charsets.add(str(part.get_content_charset()))
                encodings.add(str(part["Content-Transfer-Encoding"]))
                flowed += part.get_param("format") == "flowed"
    assert set(build.REPLY_SHAPES) <= set(shapes)
    assert {"7bit", "8bit", "quoted-printable", "base64"} <= encodings
    assert "utf-8" in charsets and len(charsets - {"utf-8"}) >= 3, charsets
    assert flowed > 0 and html_only > 0


def test_the_corpus_is_the_same_on_every_run() -> None:
    again = tuple(build.iter_corpus("all"))
    assert [(c.id, c.raw) for c in again] == [(c.id, c.raw) for c in corpus()]


def test_split_is_by_text_id_stable_and_disjoint() -> None:
    parts: dict[str, set[str]] = defaultdict(set)
    for case in corpus():
        assert case.part == build.part_of(case.text_id), case.id
        parts[case.text_id].add(case.part)
    assert all(len(p) == 1 for p in parts.values())
    train = {c.id for c in build.iter_corpus("train")}
    evaluation = {c.id for c in build.iter_corpus("evaluation")}
    assert train and evaluation and not train & evaluation
    assert train | evaluation == {c.id for c in corpus()}
    # The split of an id never changes: the corpus's evaluation part must stay unseen.
    sample = "".join("e" if build.part_of(f"xx-{n:03d}") == "evaluation" else "t" for n in range(1, 31))
    assert sample == "ttetteettetttetettettetttteett", sample
    assert build.part_of("de-017") == build.part_of("de-017")


def test_evaluation_holds_at_least_a_quarter_of_every_language() -> None:
    for text_file in build.load_text_files():
        ids = [r.id for r in text_file.replies]
        in_evaluation = sum(build.part_of(i) == "evaluation" for i in ids)
        assert in_evaluation * 4 >= len(ids), (text_file.language, in_evaluation, len(ids))
