"""The classifier's message parser: the stdlib's tree, built faster, and answers that follow edits."""

from __future__ import annotations

import email
import itertools
import re
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest

from proxy.classify import mimeparse
from proxy.classify.htmltext import html_to_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STDLIB_BOUNDARY = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"


def shape(msg: Message) -> list[tuple[object, ...]]:
    """Everything the parser decides, part by part."""
    out: list[tuple[object, ...]] = []
    for part in msg.walk():
        payload = part.get_payload()
        out.append(
            (
                list(part._headers),  # type: ignore[attr-defined]
                payload if isinstance(payload, str) else len(payload),
                part.preamble,
                part.epilogue,
                [type(d).__name__ for d in part.defects],
                part.get_unixfrom(),
                part.get_default_type(),
            )
        )
    return out


def multipart(boundary: str, body: str, head: str = "") -> bytes:
    return (f'From: a@example.org\n{head}Content-Type: multipart/mixed; boundary="{boundary}"\n\n{body}').encode()


TRICKY = [
    multipart("b(1)+.*?", "pre\n--b(1)+.*?\nContent-Type: text/plain\n\nhello\n--b(1)+.*?--\nepilogue\n"),
    multipart("x", "--x  \t\nhello\n--x\n\n--x\nsecond\n--x--  \n"),  # blank part, trailing blanks
    multipart("x", "--x\r\nhello\r\n--x--\r\n"),
    multipart("x", "--x\rhello\r--x--\r"),  # bare CR line endings
    multipart("x", "--x\nhello\n--xy\nstill hello\n--x-- tail\n--x--"),  # near-boundaries are text
    multipart("x", "--x\nhello, never closed\n"),
    multipart("x", "--x\n--x\n--x\nafter repeated boundaries\n--x--\n"),
    multipart("x", "no boundary at all\n"),
    multipart(
        "out",
        "--out\nContent-Type: multipart/alternative; boundary=in\n\n--in\n\nplain\n--in\n"
        "Content-Type: text/html\n\n<p>html</p>\n--in--\n--out\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; b@example.org\nAction: failed\n--out--\n",
    ),
    multipart("d", "--d\n\nFrom: c@example.org\n\ndigest entry\n--d--\n", "Subject: digest\n").replace(
        b"multipart/mixed", b"multipart/digest"
    ),
    multipart("x", "--x\n" + "long line " * 2000 + "\n--x--\n"),  # lines across the parser's 8192-char chunks
]


@pytest.mark.parametrize("raw", TRICKY, ids=range(len(TRICKY)))
def test_the_tree_is_the_stdlib_parsers(raw: bytes) -> None:
    assert shape(mimeparse.parse(raw)) == shape(email.message_from_bytes(raw))


def outcome(parse: Callable[[bytes], Message], raw: bytes) -> object:
    try:
        return shape(parse(raw))
    except RecursionError:  # a fixture nests parts deeper than the stdlib parser can follow
        return "too deep"


def test_every_fixture_parses_as_the_stdlib_parses_it() -> None:
    files = sorted(FIXTURES.rglob("*.eml"))
    assert files
    for path in files:
        raw = path.read_bytes()
        assert outcome(mimeparse._parse, raw) == outcome(email.message_from_bytes, raw), path.name


@pytest.mark.parametrize("separator", ["--abc", "--a.b(c)+d*?", "--x y", "--back\\slash"])
def test_boundary_lines_match_as_the_stdlib_pattern_matches(separator: str) -> None:
    stdlib = re.compile("(?P<sep>" + re.escape(separator) + STDLIB_BOUNDARY)
    ours = mimeparse._BoundaryRe.compile("(?P<sep>" + re.escape(separator) + STDLIB_BOUNDARY)
    assert isinstance(ours, mimeparse._BoundaryLine)  # the pattern was recognised, not compiled
    pieces = ["", "-", "--", " ", "\t", "\r", "\n", "x", separator]
    for combination in itertools.product(pieces, repeat=4):
        for line in (separator + "".join(combination), "".join(combination)):
            theirs, mine = stdlib.match(line), ours.match(line)
            assert (theirs is None) == (mine is None), repr(line)
            if theirs is not None and mine is not None:
                for group in ("sep", "end", "ws", "linesep"):
                    assert mine.group(group) == theirs.group(group), (repr(line), group)


def test_answers_follow_changes_to_the_message() -> None:
    msg = mimeparse.parse(b"From: a@example.org\nSubject: first\nContent-Type: text/plain; charset=utf-8\n\nbody\n")
    assert (mimeparse.header(msg, "Subject"), msg.get_content_type(), msg.get_content_charset()) == (
        "first",
        "text/plain",
        "utf-8",
    )
    assert mimeparse.part_text(msg) == "body\n"
    msg.replace_header("Subject", "second")
    msg.replace_header("Content-Type", "text/html; charset=iso-8859-1")
    assert (mimeparse.header(msg, "Subject"), msg.get_content_type(), msg.get_content_charset()) == (
        "second",
        "text/html",
        "iso-8859-1",
    )
    del msg["Content-Type"]
    msg["Content-Type"] = "text/x-other"
    msg["X-New"] = "added"
    assert (msg.get_content_type(), mimeparse.header(msg, "X-New")) == ("text/x-other", "added")
    msg.set_payload("other body")
    assert mimeparse.part_text(msg) == "other body"
    params = msg.get_params()
    assert params is not None
    params.append(("changed", "by the caller"))
    assert ("changed", "by the caller") not in (msg.get_params() or [])


def test_html_text_is_converted_again_for_another_string() -> None:
    first = "<p>" + "one" + "</p>"
    second = "<p>" + "two" + "</p>"
    assert html_to_text(first) == "one"
    assert html_to_text(second) == "two"
    assert html_to_text(first) == "one"


LINE_PARSER_CASES = [
    b"From: a@example.org\nSubject: plain\n\nhello\n",
    b"From: a@example.org\r\nSubject: folded\r\n  twice\r\n\r\nhello\r\n",
    b"From: a@example.org\nno blank line before the body\n",
    b" continuation first\nFrom: a@example.org\n\nbody\n",
    b"From b@example.org Mon Jan  1 00:00:00 2026\nFrom: a@example.org\n\nbody\n",
    b"From: a@example.org\n: no name\n\nbody\n",
    b"Subject: only headers",
    multipart("x", "--x--\nclosed before it opened\n"),
    multipart("x", "--x\nhello\n--x--\r\n\r\nepilogue\r\n"),
    multipart("x", "--x\nhello\n--x--"),
    multipart("x", "--x\nhello\n--x\n"),  # a boundary line last
    multipart(
        "o", "--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\ninner\n--o--\n"
    ),  # inner never closed
    multipart("o", "--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--i--\n\n--o--\n"),
    multipart("o", "--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--i--\ninner epilogue\n--o--\n"),
    multipart("o", "--o\nContent-Type: multipart/alternative; boundary=o2\n\n--o2\n\na\n--o2--\n--o--\n"),
    multipart("o", "--o\nSubject: part\n--o\n\nnext\n--o--\n"),  # a boundary among a part's headers
    multipart("x", "--x\n\nbody\n--x--\n", "Content-Transfer-Encoding: base64\n"),
    multipart("x", "pre\r\namble\r\n--x\r\n\r\nbody\r\n--x--\r\n"),
    b"Content-Type: multipart/mixed\n\nno boundary parameter\n",
    b"Content-Type: message/rfc822\n\nFrom: inner@example.org\n\ninner body\n",
]


@pytest.mark.parametrize("raw", LINE_PARSER_CASES, ids=range(len(LINE_PARSER_CASES)))
def test_the_line_parser_builds_the_stdlib_tree_or_leaves_the_message_to_it(raw: bytes) -> None:
    assert shape(mimeparse._parse(raw)) == shape(email.message_from_bytes(raw))


def test_ordinary_messages_take_the_line_parser() -> None:
    raw = multipart("x", "--x\nContent-Type: text/plain\n\nhello\n--x\nContent-Type: text/html\n\n<p>hi</p>\n--x--\n")
    msg, ctype = mimeparse._LineParser(raw.decode()).message(None)
    assert ctype == "multipart/mixed" and shape(msg) == shape(email.message_from_bytes(raw))
    with pytest.raises(mimeparse._Unusual):
        mimeparse._LineParser("Content-Type: message/rfc822\n\nFrom: x@example.org\n\nhi\n").message(None)
