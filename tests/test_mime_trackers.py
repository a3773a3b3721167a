"""Tracking-pixel removal, link unwrapping and read-receipt headers."""

from __future__ import annotations

import binascii
import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from proxy.mime import (
    MimeError,
    Removal,
    TrackerRules,
    TrackerVendor,
    UrlRule,
    remove_read_receipt_requests,
    strip_trackers,
)
from proxy.mime.trackers import UrlMatcher, required_literal
from proxy.schema import SchemaError, load_file, load_text

FIXTURES = Path(__file__).parent / "fixtures" / "messages"
RULES_FILE = Path(__file__).parent.parent / "rules" / "trackers.yaml"

RULES = load_text(
    r"""
shape:
  max_pixel_size: 2
vendors:
  - name: Mailtrack
    pixels:
      - pattern: '^https?://(?:[\w-]+\.)*mailtrack\.io/trace/'
        example: 'https://mailtrack.io/trace/mail/8a5b2c1d0e.png?u=1234567'
  - name: HubSpot
    pixels:
      - pattern: '^https?://track\.hubspot\.com/__ptq\.gif'
        example: 'https://track.hubspot.com/__ptq.gif?a=2418&k=14'
    links:
      - pattern: '^https?://[\w.-]*hubspotlinks\.com/Ctc/'
        example: 'https://t.hubspotlinks.com/Ctc/L1+113/c3Q2X04/VWv6yT5?url=https%3A%2F%2Fexample.com'
        target_param: url
""",
    "test-trackers.yaml",
    TrackerRules,
)
SENDER = "acme-analytics.eu"


def html_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content


def html_message(body: str, charset: str = "utf-8") -> bytes:
    return f"MIME-Version: 1.0\r\nContent-Type: text/html; charset={charset}\r\n\r\n{body}\r\n".encode(charset)


def test_sales_message_pixels_removed_and_legitimate_images_kept() -> None:
    raw = (FIXTURES / "tracked_sales.eml").read_bytes()
    out = strip_trackers(raw, RULES, SENDER)
    rules_hit = sorted(r.rule for r in out.removed)
    assert rules_hit == sorted(
        ["Mailtrack", "Mailtrack", "Mailtrack", "HubSpot", "HubSpot", "1px image", "visibility:hidden"]
    )
    html = html_of(out.raw)
    for kept in (
        "https://cdn.acme-analytics.eu/brand/logo-2x.png",  # logo
        "cid:chart@acme-analytics.eu",  # inline image
        "data:image/gif;base64,",  # data URI
        "https://cdn.acme-analytics.eu/img/spacer.gif",  # the sender's own spacer
        "https://images.example-cdn.net/team/ana-photo.jpg",  # normal-size remote image
    ):
        assert kept in html
    for gone in ("mailtrack.io", "track.hubspot.com", "example-sender-tool.io", "</img>"):
        assert gone not in html
    # Only the tracking declaration goes from a style; the rest of it stays.
    assert '<td style="padding:12px;color:#333">' in html
    assert "<style>.hero{color:#222}</style>" in html
    # Outlook's conditional comment stays, emptied of its pixel.
    assert "<!--[if mso]><![endif]-->" in html
    # The click-tracked link is left alone unless asked for.
    assert "hubspotlinks.com" in html
    assert out.links_unwrapped == 0


def test_html_edits_are_surgical() -> None:
    raw = (FIXTURES / "tracked_sales.eml").read_bytes()
    out = strip_trackers(raw, RULES, SENDER)
    before, after = html_of(raw), html_of(out.raw)
    # Deleting exactly the reported tags/declarations from the input gives the output.
    expected = before
    for piece in (
        "background-image:url('https://track.hubspot.com/__ptq.gif?a=2418&k=14&bg=1');",
        "background-image:url(&quot;https://mailtrack.io/trace/bg/41d2.png&quot;);",
        '<img src="https://mailtrack.io/trace/mail/8a5b2c1d0e4f.png?u=1234567" width="0" height="0" '
        'style="display:none" />',
        '<img src="https://open.example-sender-tool.io/o/5f8e2d.gif" alt="" style="width:1px;height:1px;border:0">',
        '<img src="https://pixel.example-sender-tool.io/p.gif" style="visibility:hidden" alt=""></img>',
        '<img src="https://mailtrack.io/trace/mail/8a5b2c1d0e4f.png?mso=1" width="1" height="1">',
    ):
        assert piece in expected
        expected = expected.replace(piece, "", 1)
    start = expected.index("<img width=1 height=1")
    expected = expected[:start] + expected[expected.index(">", start) + 1 :]
    assert after == expected
    # The plain-text alternative keeps its exact bytes.
    html_start = raw.index(b"--b1_trk_9f8e7d6c5b4a\r\nContent-Type: text/html")
    plain = raw[raw.index(b"Content-Type: text/plain") : html_start]
    assert plain in out.raw


def test_click_tracking_links_unwrapped_when_asked() -> None:
    raw = (FIXTURES / "tracked_sales.eml").read_bytes()
    out = strip_trackers(raw, RULES, SENDER, unwrap_links=True)
    assert out.links_unwrapped == 1
    html = html_of(out.raw)
    target = "https://acme-analytics.eu/case-studies/retail?utm_source=email&amp;ref=7"
    assert f'<a href="{target}">retail case study</a>' in html


def test_nothing_to_remove_returns_the_same_bytes() -> None:
    for name in ("thunderbird_related.eml", "outlook_cp1250.eml", "apple_mail.eml", "gmail_reply.eml"):
        raw = (FIXTURES / name).read_bytes()
        out = strip_trackers(raw, RULES, SENDER, unwrap_links=True)
        assert out.raw is raw
        assert out.removed == []


def test_signed_message_is_left_alone() -> None:
    raw = (FIXTURES / "smime_signed.eml").read_bytes()
    assert strip_trackers(raw, RULES, SENDER).raw is raw


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ('<IMG SRC="https://t.example.net/o.gif" WIDTH="1" HEIGHT="1">', "1px image"),
        ("<img src=https://t.example.net/o.gif width=0 height=0/>", "0px image"),
        ("<img src='https://t.example.net/o.gif' height='2px'>", "2px image"),
        ('<img style="width: 1px !important; height: 1px" src="//t.example.net/o.gif">', "1px image"),
        ('<img src="https://t.example.net/o.gif" style="DISPLAY: none">', "display:none"),
        ('<img src="https://t.example.net/o.gif" style="opacity:0">', "opacity:0"),
        ('<img\nsrc="https://t.example.net/o.gif"\nwidth="1"\nheight="1"\nalt="a > b">', "1px image"),
    ],
)
def test_beacons_by_shape_whatever_the_host(tag: str, reason: str) -> None:
    raw = html_message(f"<html><body><p>Hi</p>{tag}<p>Bye</p></body></html>")
    out = strip_trackers(raw, RULES, SENDER)
    assert out.removed == [Removal(out.removed[0].url, reason)]
    assert html_of(out.raw) == "<html><body><p>Hi</p><p>Bye</p></body></html>\r\n"


@pytest.mark.parametrize(
    "tag",
    [
        '<img src="https://cdn.example.net/banner.png" width="600" height="1">',  # divider line
        '<img src="https://cdn.example.net/logo.png" width="1" height="100%">',
        '<img src="https://cdn.example.net/logo.png">',
        '<img src="https://img.acme-analytics.eu/s.gif" width="1" height="1">',  # sender subdomain
        '<img src="cid:logo@acme" width="1" height="1">',
        '<img src="/relative/pixel.gif" width="1" height="1">',
        '<img alt="no source" width="1" height="1">',
        '<img src="https://cdn.example.net/a.png" width="40" height="40" style="display:block">',
        # A phone-only hero image, shown by a media query: hidden but full size.
        '<img class="mobile" src="https://cdn.example.net/hero-m.jpg" width="320" style="display:none">',
        '<img src="https://cdn.example.net/hero-m.jpg" style="display:none;width:100%;max-height:0">',
    ],
)
def test_legitimate_images_are_kept(tag: str) -> None:
    raw = html_message(f"<html><body>{tag}</body></html>")
    out = strip_trackers(raw, RULES, SENDER)
    assert out.raw is raw


def test_vendor_pixel_removed_even_when_large_and_uppercase_tag() -> None:
    raw = html_message('<BODY><IMG SRC="HTTPS://MAILTRACK.IO/trace/x.png" WIDTH=600></BODY>')
    out = strip_trackers(raw, RULES, None)
    assert [r.rule for r in out.removed] == ["Mailtrack"]


def test_windows_1250_html_keeps_every_other_byte() -> None:
    body = '<p>Zażółć gęślą jaźń</p><img src="https://mailtrack.io/trace/x.png"><p>Łódź</p>'
    raw = html_message(body, "windows-1250")
    out = strip_trackers(raw, RULES, None)
    assert out.raw == raw.replace(b'<img src="https://mailtrack.io/trace/x.png">', b"")


def test_read_receipt_headers_removed_with_their_folded_lines() -> None:
    raw = (FIXTURES / "outlook_cp1250.eml").read_bytes()
    out, removed = remove_read_receipt_requests(raw)
    assert removed == ["Disposition-Notification-To"]
    assert b"Disposition-Notification-To" not in out
    assert (
        raw.replace(
            b"Disposition-Notification-To: =?windows-1250?Q?=A3ukasz_Wi=9Cniewski?= "
            b"<lukasz.wisniewski@acme-analytics.pl>\r\n",
            b"",
        )
        == out
    )
    raw2 = b"From: a@b.c\r\nReturn-Receipt-To:\r\n a@b.c\r\nSubject: x\r\n\r\nbody\r\nReturn-Receipt-To: keep\r\n"
    out2, removed2 = remove_read_receipt_requests(raw2)
    assert removed2 == ["Return-Receipt-To"]
    assert out2 == b"From: a@b.c\r\nSubject: x\r\n\r\nbody\r\nReturn-Receipt-To: keep\r\n"
    plain = (FIXTURES / "gmail_reply.eml").read_bytes()
    assert remove_read_receipt_requests(plain) == (plain, [])


def test_rules_check_reports_duplicates_and_examples_that_do_not_match() -> None:
    with pytest.raises(SchemaError) as exc:
        load_text(
            """
vendors:
  - name: A
    pixels:
      - pattern: '^https://a\\.example/o/'
        example: 'https://b.example/o/1.gif'
  - name: A
    pixels:
      - pattern: '(unclosed'
        example: 'x'
""",
            "trackers.yaml",
            TrackerRules,
        )
    text = str(exc.value)
    assert "trackers.yaml:6: vendors[0].pixels[0].example: does not match" in text
    assert "vendors[1].name: duplicate name 'A'" in text
    assert "invalid regular expression" in text


def test_matcher_screening_agrees_with_plain_regex_search() -> None:
    rules = [
        ("A", UrlRule(r"^https?://(?:[\w-]+\.)*mailtrack\.io/trace/", "https://mailtrack.io/trace/x")),
        ("B", UrlRule(r"open\.(?:gif|png)", "https://x/open.gif")),  # no usable literal
        ("C", UrlRule(r"/wf/open\?upn=", "https://links.brand.com/wf/open?upn=abc")),
    ]
    matcher = UrlMatcher(rules)
    assert required_literal(rules[0][1].pattern) == "mailtrack.io/trace/"
    assert required_literal("a|b") is None
    for url, expected in [
        ("https://MAILTRACK.io/TRACE/abc", "A"),
        ("https://x.example/OPEN.PNG", "B"),
        ("https://links.brand.com/wf/open?upn=1", "C"),
        ("https://links.brand.com/wf/click?upn=1", None),
        ("https://пример.рф/wf/open?upn=1", "C"),
    ]:
        found = matcher.match(url)
        assert (found[0] if found else None) == expected, url


def test_tracker_rules_are_hashable_and_compiled_once() -> None:
    from proxy.mime.trackers import compile_rules

    rules = TrackerRules(vendors=(TrackerVendor("X", pixels=(UrlRule("x", "x"),)),))
    assert compile_rules(rules) is compile_rules(rules)


def test_shipped_rules_remove_mailtrack_and_keep_legitimate_images() -> None:
    rules = load_file(RULES_FILE, TrackerRules)
    raw = (FIXTURES / "tracked_sales.eml").read_bytes()
    html = html_of(strip_trackers(raw, rules, SENDER).raw)
    assert "mailtrack.io/trace/mail/" not in html
    for kept in ("logo-2x.png", "cid:chart@", "data:image/gif", "spacer.gif", "ana-photo.jpg"):
        assert kept in html


def test_broken_base64_html_raises_mime_error() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nPGh0bWw+<img src=x>PC9odG1sP\r\n"
    )
    with pytest.raises(MimeError):
        strip_trackers(raw, RULES, None)


def test_screening_never_hides_a_shipped_pattern() -> None:
    from proxy.mime.trackers import compile_rules

    rules = load_file(RULES_FILE, TrackerRules)
    compiled = compile_rules(rules)
    for vendor in rules.vendors:
        for matcher, url_rules in ((compiled.pixels, vendor.pixels), (compiled.links, vendor.links)):
            for rule in url_rules:
                assert matcher.match(rule.example) is not None, (vendor.name, rule.example)
                assert matcher.match(rule.example.upper().replace("HTTPS://", "https://")) is not None


def test_one_line_quoted_printable_html_keeps_crlf_soft_breaks() -> None:
    # Gmail-style HTML: one long line, quoted-printable, no final line break.
    html = '<div dir="ltr">' + "Lorem ipsum dolor sit amet. " * 20 + '<img src="https://mailtrack.io/trace/x.png"></div>'
    body = binascii.b2a_qp(html.encode(), istext=True).replace(b"=\n", b"=\r\n")
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="g"\r\n\r\n--g\r\n'
        b"Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + body
        + b"\r\n--g--\r\n"
    )
    out = strip_trackers(raw, RULES, None).raw
    assert out.count(b"\n") == out.count(b"\r\n")
    assert html_of(out) == html.replace('<img src="https://mailtrack.io/trace/x.png">', "")
