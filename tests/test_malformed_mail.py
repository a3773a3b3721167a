"""Malformed mail through the running relay: never a crash, a hang or a corrupted message.

The torture corpus (tests/fixtures/torture/) and random MIME trees go through a real relay
to the recording server.  What arrives must parse with Python's email package whenever the
original did, keep every original header field and every non-text part byte for byte, and
a message the relay cannot modify follows rules/policies.yaml ``unmodifiable_messages``:
byte-identical with send_unchanged, 554 5.6.0 with refuse.
"""

from __future__ import annotations

import email
import itertools
import logging
import re
import smtplib
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import RelayThread, upstream_settings, write_config
from tests.upstream import RecordingServer

TORTURE = Path(__file__).parent / "fixtures" / "torture"
CORPUS = sorted(TORTURE.glob("*.eml"))
FROM = "anna@nordlicht.example"
TO = "jan@kunde.example"
UNMODIFIABLE_LOG = "cannot be modified safely"


class Setup:
    def __init__(self, tmp: Path, unmodifiable: str):
        self.upstream = RecordingServer().start()
        rules = tmp / "user-rules"
        rules.mkdir(parents=True)
        (rules / "policies.yaml").write_text(f"unmodifiable_messages: {unmodifiable}\n")
        self.relay = RelayThread(write_config(tmp, upstream_settings(self.upstream.port, timeout_seconds=2))).start()

    def send(self, message: bytes) -> tuple[int, bytes, float]:
        """(reply code, reply text, seconds); the upstream's record is cleared first."""
        self.upstream.handler.received.clear()
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as client:
            client.ehlo()
            try:
                client.sendmail(FROM, [TO], message)
                code, text = 250, b""
            except smtplib.SMTPDataError as exc:
                code, text = exc.smtp_code, exc.smtp_error
        return code, text, time.monotonic() - started

    def close(self) -> None:
        self.relay.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def unchanged_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    setup = Setup(tmp_path_factory.mktemp("send_unchanged"), "send_unchanged")
    yield setup
    setup.close()


@pytest.fixture(scope="module")
def refuse_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    setup = Setup(tmp_path_factory.mktemp("refuse"), "refuse")
    yield setup
    setup.close()


# --- what "not corrupted" means ---


def parses(data: bytes) -> bool:
    """Parse and walk every part, decoding each leaf: what a mail client does to show it."""
    try:
        message = email.message_from_bytes(data, policy=policy.default)
        for part in message.walk():
            if not part.is_multipart():
                part.get_payload(decode=True)
    except RecursionError:
        return False
    return True


_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")


def header_fields(data: bytes) -> list[bytes]:
    """Raw header fields (with their folding) of the top-level header block.

    The block ends at the first line that is not a header field, as in mail readers.
    """
    end = data.find(b"\r\n\r\n")
    block = data if end < 0 else data[: end + 2]
    fields = []
    for field in re.split(rb"\r\n(?![ \t])", block):
        if not _FIELD.match(field):
            break
        fields.append(field)
    return fields


def non_text_leaves(data: bytes) -> list[bytes]:
    """Raw bodies of leaf parts the relay must never touch (anything but text/plain, text/html)."""
    try:
        message = email.message_from_bytes(data, policy=policy.compat32)
        leaves = [p for p in message.walk() if not p.is_multipart()]
    except RecursionError:
        return []
    out = []
    for part in leaves:
        if part is message or part.get_content_type() in ("text/plain", "text/html"):
            continue
        payload = part.get_payload()
        if isinstance(payload, str) and payload.strip():
            try:
                out.append(payload.encode("ascii", "surrogateescape"))
            except UnicodeEncodeError:
                continue  # not a raw byte payload (the parser decoded it): nothing to compare
    return out


def unmodifiable_logged(caplog: pytest.LogCaptureFixture, message_id: str) -> bool:
    return any(UNMODIFIABLE_LOG in r.getMessage() and message_id in r.getMessage() for r in caplog.records)


def check_relayed(setup: Setup, original: bytes, caplog: pytest.LogCaptureFixture, message_id: str) -> None:
    received = setup.upstream.received
    assert received, "250 but nothing arrived upstream"
    if not original.endswith(b"\r\n"):
        original += b"\r\n"  # SMTP DATA always ends with a line break (smtplib adds it)
    assert sorted(r for m in received for r in m.rcpt_tos) == [TO]
    for got in received:
        if unmodifiable_logged(caplog, message_id):
            assert got.data == original, "unmodifiable message was not sent byte-identical"
            continue
        if parses(original):
            assert parses(got.data), "the relay turned a parseable message into an unparseable one"
        fields = header_fields(got.data)
        missing = [f[:80] for f in header_fields(original) if f not in fields]
        assert not missing, f"original header fields lost or changed: {missing}"
        for leaf in non_text_leaves(original):
            assert leaf in got.data, f"non-text part changed: {leaf[:80]!r}"
        # A header the relay adds must be a header for mail readers, not a line of the body.
        try:
            parsed = email.message_from_bytes(got.data, policy=policy.compat32)
        except RecursionError:
            continue  # too deep for the email package; parses() above covered what it can
        for name in ADDED_HEADERS:
            if re.search(rb"(?im)^" + name + rb":", got.data) and not re.search(rb"(?im)^" + name + rb":", original):
                assert parsed[name.decode()] is not None, f"{name.decode()} added where readers see body text"


ADDED_HEADERS = (b"List-Unsubscribe", b"X-GDPR-Mail-Proxy-Footer")


def message_id_of(data: bytes) -> str:
    found = re.search(rb"(?im)^Message-ID:\s*<([^>]*)>", data)
    return found.group(1).decode() if found else ""


# --- the torture corpus ---


def test_corpus_is_there():
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_torture_message_relayed_safely(unchanged_setup, refuse_setup, caplog, path):
    caplog.set_level(logging.INFO)
    original = path.read_bytes()
    message_id = message_id_of(original)
    code, text, took = unchanged_setup.send(original)
    assert took < 10, f"took {took:.1f}s"
    if b"\x00" in original:  # NUL bytes are refused, never passed on (README: "NUL bytes")
        assert code == 550 and text.startswith(b"5.6.0") and b"NUL" in text, text
        assert unchanged_setup.upstream.received == []
        return
    assert code == 250, text
    check_relayed(unchanged_setup, original, caplog, message_id)
    unmodifiable = unmodifiable_logged(caplog, message_id)

    code, text, took = refuse_setup.send(original)
    assert took < 10
    if unmodifiable:
        assert code == 554 and text.startswith(b"5.6.0"), text
        assert refuse_setup.upstream.received == []
    else:
        assert code == 250, text
        check_relayed(refuse_setup, original, caplog, message_id)


def test_a_corpus_message_is_unmodifiable(unchanged_setup, caplog):
    """At least the base64 garbage must take the unmodifiable path, or the policy goes untested."""
    caplog.set_level(logging.INFO)
    original = (TORTURE / "base64_garbage_text.eml").read_bytes()
    code, _, _ = unchanged_setup.send(original)
    assert code == 250
    assert unmodifiable_logged(caplog, message_id_of(original))
    assert [m.data for m in unchanged_setup.upstream.received] == [original], "not byte-identical"


# --- random MIME ---

_ids = itertools.count()
CRLF = b"\r\n"


def crlf(data: bytes) -> bytes:
    return re.sub(rb"\r\n|\r|\n", CRLF, data)


FRAGMENTS = [
    b"Hallo Jan,",
    "Grüße aus Köln".encode(),
    "Grüße".encode("latin-1"),
    b"<html><body><p>",
    b"</p></body></html>",
    b"<!-- unclosed",
    b'<img src="https://t.example/o.gif" width=1 height=1>',
    b"=C3=BC=",
    b"ZZZ=*&^",
    b"SGVsbG8gV29ybGQ=",
    b"\x00",
    b"\xff\xfe",
    b"--b0",
    b"--b1--",
    b".",
    b"From: nested@header.example",
    b"-- ",
    b"x" * 900,
]

body_bytes = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=40), max_size=12).map(
    lambda chunks: crlf(CRLF.join(chunks))
)


@st.composite
def leaf(draw: Any) -> bytes:
    ctype = draw(st.sampled_from([None, "text/plain", "text/html", "application/pdf", "image/png", "text/calendar"]))
    charset = draw(st.sampled_from([None, "utf-8", "us-ascii", "iso-8859-1", "x-bogus", "utf-16"]))
    cte = draw(st.sampled_from([None, "7bit", "8bit", "base64", "quoted-printable", "x-weird"]))
    headers = b""
    if ctype:
        headers += b"Content-Type: " + ctype.encode() + (b"; charset=" + charset.encode() if charset else b"") + CRLF
    if cte:
        headers += b"Content-Transfer-Encoding: " + cte.encode() + CRLF
    return headers + CRLF + draw(body_bytes)


def multipart(draw: Any, children: list[bytes]) -> bytes:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed", "report"]))
    boundary = b"b%d" % draw(st.integers(0, 3))
    mode = draw(st.sampled_from(["ok", "ok", "no-param", "other-delims", "unterminated", "no-parts"]))
    head = b"Content-Type: multipart/" + subtype.encode()
    if mode != "no-param":
        head += b'; boundary="' + boundary + b'"'
    delim = b"zz" if mode == "other-delims" else boundary
    body = draw(st.sampled_from([b"", b"preamble" + CRLF]))
    if mode != "no-parts":
        for child in children:
            body += b"--" + delim + CRLF + child + CRLF
    if mode != "unterminated":
        body += b"--" + delim + b"--" + CRLF + draw(st.sampled_from([b"", b"epilogue" + CRLF]))
    return head + CRLF + CRLF + body


@st.composite
def multipart_of(draw: Any, children: st.SearchStrategy[bytes]) -> bytes:
    return multipart(draw, draw(st.lists(children, max_size=4)))


mime_tree = st.recursive(leaf(), multipart_of, max_leaves=8)


@st.composite
def random_message(draw: Any) -> bytes:
    n = next(_ids)
    top = draw(mime_tree)
    subject = draw(st.sampled_from([b"Angebot", "Grüße".encode(), b"=?utf-8?q?Gr=C3=BC=C3=9Fe?=", b"=?bogus?x?zz?="]))
    head = (
        b"From: Anna Nowak <anna@nordlicht.example>\r\nTo: jan@kunde.example\r\n"
        b"Subject: " + subject + CRLF + b"Message-ID: <random-%d@nordlicht.example>\r\n" % n
    )
    if draw(st.booleans()):
        head += b"MIME-Version: 1.0\r\n"
    # ``top`` starts with its own header lines (or an empty line when it has none)
    return head + top


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(message=random_message())
def test_random_mime_never_crashes_hangs_or_corrupts(unchanged_setup, caplog, message):
    caplog.set_level(logging.INFO)
    caplog.clear()
    code, text, took = unchanged_setup.send(message)
    assert took < 10, f"took {took:.1f}s"
    if b"\x00" in message:  # NUL bytes are refused, never passed on (README: "NUL bytes")
        assert code == 550 and text.startswith(b"5.6.0") and b"NUL" in text, text
        return
    assert code == 250, text
    check_relayed(unchanged_setup, message, caplog, message_id_of(message))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the relay logged an error"
