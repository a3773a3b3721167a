"""The reply corpus itself: text files valid, every rendered message readable and faithful, split stable."""

from __future__ import annotations

import email
import email.message
import html
import io
import re
import subprocess
import tarfile
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.corpus import public
from tests.corpus.replies import build

TEXT_FILES = sorted(build.TEXTS_DIR.glob("*.yaml"))
AUTO_REPLY_HEADERS = ("auto-submitted", "x-autoreply", "x-autorespond", "precedence", "x-auto-response-suppress")
REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "MIME-Version")


@cache
def corpus() -> tuple[build.Case, ...]:
    return tuple(build.iter_corpus("all"))


@cache
def parsed() -> tuple[tuple[build.Case, email.message.Message], ...]:
    return tuple((case, email.message_from_bytes(case.raw)) for case in corpus())


@cache
def text_files() -> tuple[build.TextFile, ...]:
    return tuple(build.load_text_files())


@cache
def threads() -> dict[str, build.Thread]:
    footers = build.load_footers()
    return {f.language: build.make_thread(f, footers) for f in text_files()}


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
    for case, msg in parsed():
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
    quoting = set(build.REPLY_SHAPES) - {"plain"}
    for case, msg in parsed():
        thread = threads()[case.language]
        assert thread.message_id in msg["References"], case.id
        if case.shape in quoting:
            _, text = first_text(msg)
            assert squash(thread.objection_sentence) in squash(unquote(text)), case.id
            assert "STOP" in thread.objection_sentence or thread.language not in footers


def test_auto_replies_carry_auto_reply_headers_only_in_their_own_kind() -> None:
    with_headers = 0
    for case, msg in parsed():
        present = [h for h in AUTO_REPLY_HEADERS if msg[h]]
        if case.kind == "out-of-office-headers":
            assert msg["Auto-Submitted"] == "auto-replied", case.id
            assert case.expect == "auto-reply"
            with_headers += 1
        else:
            assert present == [], case.id
    assert with_headers > 0


def test_traps_are_made_and_hold_what_makes_them_traps() -> None:
    texts = {r.id: r for f in text_files() for r in f.replies}
    kinds = Counter(c.kind for c in corpus())
    assert kinds["trap-out-of-office-quoting"] > 0 and kinds["trap-footer-quoted"] > 0
    for case, msg in parsed():
        if case.kind == "trap-out-of-office-quoting":
            opt_out = texts[case.text_id]
            assert opt_out.expect == "opt-out" and case.expect == "auto-reply"
            assert build.part_of(opt_out.id) == case.part
            notices = [r for r in texts.values() if r.language == case.language and r.text == case.text]
            assert any(r.kind == "out-of-office" and build.part_of(r.id) == case.part for r in notices), case.id
            _, text = first_text(msg)
            assert squash(opt_out.text) in squash(unquote(text)), case.id
            assert squash(text).startswith(squash(case.text)), case.id
        if case.kind == "trap-footer-quoted":
            assert case.expect == "none" and texts[case.text_id].kind in build.POSITIVE_KINDS
            _, text = first_text(msg)
            sentence = squash(threads()[case.language].objection_sentence)
            assert sentence in squash(unquote(text)), case.id


def test_shapes_charsets_and_encodings_are_all_used() -> None:
    shapes: Counter[str] = Counter()
    charsets: set[str] = set()
    encodings: set[str] = set()
    flowed = html_only = 0
    for case, msg in parsed():
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


def test_split_is_by_text_id_stable_and_disjoint() -> None:
    parts: dict[str, set[str]] = defaultdict(set)
    for case in corpus():
        assert case.part == build.part_of(case.text_id), case.id
        parts[case.text_id].add(case.part)
    assert all(len(p) == 1 for p in parts.values())
    # Rendering one part again gives exactly that part's messages, byte for byte: nothing
    # depends on what was rendered before or on the run.
    evaluation = [(c.id, c.raw) for c in build.iter_corpus("evaluation")]
    assert evaluation == [(c.id, c.raw) for c in corpus() if c.part == "evaluation"]
    assert 0 < len(evaluation) < len(corpus())
    # The split of an id never changes: the corpus's evaluation part must stay unseen.
    sample = "".join("e" if build.part_of(f"xx-{n:03d}") == "evaluation" else "t" for n in range(1, 31))
    assert sample == "ttetteettetttetettettetttteett", sample
    assert all(sample[i : i + 3].count("e") == 1 for i in range(0, 30, 3))  # one of each block of three


def test_evaluation_holds_at_least_a_quarter_of_every_language() -> None:
    for text_file in text_files():
        ids = [r.id for r in text_file.replies]
        in_evaluation = sum(build.part_of(i) == "evaluation" for i in ids)
        assert in_evaluation * 4 >= len(ids), (text_file.language, in_evaluation, len(ids))


def make_sdist(folder: Path, top: str, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / f"{top}.tar.gz", "w:gz") as tar:
        for name, data in {"PKG-INFO": b"Name: x\n", **files}.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


GMAIL_REPLY = (
    b"From: Megan One <megan@example.com>\r\nTo: bob@example.com\r\nSubject: Re: Test\r\n"
    b"Message-ID: <1@example.com>\r\nContent-Type: text/plain\r\n\r\nHello\r\n\r\n> Hi\r\n"
)


def test_public_fixtures_come_from_the_cached_sdists_and_from_a_repository_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdists = tmp_path / "cache" / "sdists"
    make_sdist(
        sdists,
        "talon-1.4.4",
        {
            "tests/fixtures/standard_replies/gmail.eml": GMAIL_REPLY,
            "tests/fixtures/standard_replies/iphone_reply_text": b"the expected output, not a message",
            "tests/fixtures/html_replies/hotmail.html": b"<html><body><p>Sounds good</p></body></html>",
            "tests/fixtures/signature/emails/stripped/long_body": b"a part of a message",
            "tests/test_quotations.py": b"print()",
        },
    )
    make_sdist(sdists, "mail_parser_reply-1.36", {"mailparser_reply/__init__.py": b""})
    checkout = tmp_path / "email-reply-parser"
    (checkout / "test" / "emails").mkdir(parents=True)
    (checkout / "test" / "emails" / "email_1_1.txt").write_bytes(
        "Fine by me, Zoë\n\nOn Tue, Bob wrote:\n> Hi\n".encode()
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # nothing may be fetched here: every sdist is in the cache

    corpus = public.load_public(tmp_path / "cache", {"email-reply-parser": checkout})

    assert [c.id for c in corpus.cases] == [
        "talon/html_replies/hotmail.html",
        "talon/standard_replies/gmail.eml",
        "email-reply-parser/email_1_1.txt",
    ]
    assert [p.split(":")[0] for p in corpus.problems] == ["mail-parser-reply==1.36"]
    assert "--repo mail-parser-reply=PATH" in corpus.problems[0]
    by_id = {c.id: c for c in corpus.cases}
    assert by_id["talon/standard_replies/gmail.eml"].raw == GMAIL_REPLY
    wrapped = email.message_from_bytes(by_id["email-reply-parser/email_1_1.txt"].raw)
    assert wrapped.get_content_type() == "text/plain" and wrapped["From"] and wrapped["Message-ID"]
    assert decoded(wrapped).startswith("Fine by me, Zoë")
    html_part = email.message_from_bytes(by_id["talon/html_replies/hotmail.html"].raw)
    assert html_part.get_content_type() == "text/html" and "Sounds good" in decoded(html_part)
    assert all(c.expect == "not-opt-out" for c in corpus.cases)


def test_public_fixtures_read_from_a_git_directory(tmp_path: Path) -> None:
    work = tmp_path / "mail-parser-reply"
    (work / "test" / "emails").mkdir(parents=True)
    (work / "test" / "emails" / "email_danish_1.txt").write_text("Tak for det.\n", encoding="utf-8")
    (work / "test" / "test_email_reply_parser.py").write_text("", encoding="utf-8")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for step in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "fixtures"]):
        subprocess.run([*git, *step], check=True)
    source = next(s for s in public.SOURCES if s.name == "mail-parser-reply")
    assert public.files_in_repository(source, work / ".git") == {"email_danish_1.txt": b"Tak for det.\n"}


def test_a_download_that_cannot_be_made_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as offline: pip finds no package anywhere
    source = next(s for s in public.SOURCES if s.name == "email-reply-parser")
    with pytest.raises(LookupError, match=re.escape("email-reply-parser==0.5.12: pip download failed")):
        public.fetch_sdist(source, tmp_path)
