"""Random and malformed messages: the MIME functions either refuse with MimeError or return
a message that still parses, and always finish."""

from __future__ import annotations

import email
from email import policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.mime import MimeError, insert_footer, remove_read_receipt_requests, strip_trackers
from proxy.mime.trackers import TrackerRules, TrackerVendor, UrlRule

RULES = TrackerRules(
    vendors=(TrackerVendor("T", pixels=(UrlRule(r"^https?://t\.example/o", "https://t.example/o.gif"),)),)
)
TEXT_FOOTER = "Acme: reply STOP to opt out.\nhttps://acme.example/privacy"
HTML_FOOTER = '<div class="gdpr-mail-proxy-footer"><p>Acme: reply STOP</p></div>'

FRAGMENTS = [
    b"<html>",
    b"<body>",
    b"</body>",
    b"</html>",
    b"<blockquote>",
    b"</blockquote>",
    b"<!--",
    b"-->",
    b"<!--[if mso]>",
    b"<![endif]-->",
    b'<img src="https://t.example/o.gif">',
    b"<img src=cid:x width=1>",
    b"<IMG SRC='https://x.example/p.gif' WIDTH=1 HEIGHT=1/>",
    b'<img alt="a > b" style="display:none"',
    b'<a href="https://x.example/?url=https%3A%2F%2Fy">y</a>',
    b"url(&quot;https://t.example/o&quot;)",
    b"=3D",
    b"=\r\n",
    b"=",
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff\xfe",
    b"caf\xc3\xa9",
    b"\x1b$B",
    b"-- ",
    b"--b1",
    b"--b1--",
    b"--b2",
    b"text ",
    b"'",
    b'"',
    b">",
    b"<",
]
HEADERS = [
    b'Content-Type: multipart/mixed; boundary="b1"',
    b"Content-Type: multipart/alternative; boundary=b2",
    b'Content-Type: multipart/related; boundary="b1"; start="<x>"',
    b"Content-Type: text/plain; format=flowed",
    b"Content-Type: text/html; charset=utf-8",
    b"Content-Type: text/html; charset=iso-2022-jp",
    b"Content-Type: text/plain; charset=windows-1256",
    b"Content-Type: text/plain; charset=bogus-8",
    b"Content-Type: multipart/signed; boundary=b1",
    b"Content-Type: text/plain; charset=utf-16",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: 8bit",
    b"Content-Transfer-Encoding: x-weird",
    b"Content-Disposition: attachment; filename=a.txt",
    b"Disposition-Notification-To: a@b.c",
    b"X-Folded: a\r\n b",
    b"Subject: \xe9\x00",
    b"Content-Type:",
    b"Content-Type: multipart/mixed",
]

part_text = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=30).map(b"".join)
header_block = st.lists(st.sampled_from(HEADERS), max_size=4).map(lambda hs: b"".join(h + b"\r\n" for h in hs))
message = st.recursive(
    st.tuples(header_block, part_text).map(lambda t: t[0] + b"\r\n" + t[1]),
    lambda inner: st.tuples(
        st.sampled_from([b"b1", b"b2"]),
        st.sampled_from([b"mixed", b"alternative", b"related"]),
        st.lists(inner, max_size=4),
        st.booleans(),
    ).map(
        lambda t: (
            b"Content-Type: multipart/"
            + t[1]
            + b'; boundary="'
            + t[0]
            + b'"\r\n\r\n'
            + b"".join(b"--" + t[0] + b"\r\n" + p + b"\r\n" for p in t[2])
            + (b"--" + t[0] + b"--\r\n" if t[3] else b"")
        )
    ),
    max_leaves=8,
)


def _crlf_only(data: bytes) -> bool:
    rest = data.replace(b"\r\n", b"")
    return b"\r" not in rest and b"\n" not in rest


def check(raw: bytes) -> None:
    for run in (
        lambda: insert_footer(raw, TEXT_FOOTER, HTML_FOOTER).raw,
        lambda: strip_trackers(raw, RULES, "acme.example", unwrap_links=True).raw,
        lambda: remove_read_receipt_requests(raw)[0],
    ):
        try:
            out = run()
        except MimeError:
            continue
        assert isinstance(out, bytes)
        if out is raw:
            continue
        if _crlf_only(raw):
            assert _crlf_only(out)
        parsed = email.message_from_bytes(out, policy=policy.default)
        for part in parsed.walk():
            part.get_content_type()
        before = [p.get_content_type() for p in email.message_from_bytes(raw, policy=policy.compat32).walk()]
        after = [p.get_content_type() for p in email.message_from_bytes(out, policy=policy.compat32).walk()]
        assert before == after


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(message)
def test_structured_malformed_messages(raw: bytes) -> None:
    check(raw)


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


html_part = st.tuples(
    st.sampled_from([b"utf-8", b"windows-1250", b"iso-2022-jp", b"us-ascii"]),
    st.sampled_from([b"7bit", b"8bit", b"quoted-printable"]),
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=40).map(b"".join),
).map(
    lambda t: (
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset="
        + t[0]
        + b"\r\nContent-Transfer-Encoding: "
        + t[1]
        + b"\r\n\r\n"
        + t[2]
    )
)


@settings(max_examples=300, deadline=2000)
@given(html_part)
def test_html_soup(raw: bytes) -> None:
    check(raw)
