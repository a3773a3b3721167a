"""Footer insertion on messages as real mail clients write them."""

from __future__ import annotations

import email
import html
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from proxy.mime import MARKER_HEADER, MimeError, insert_footer
from proxy.rules.footers import FooterRules, render_footer
from proxy.schema import load_text

FIXTURES = Path(__file__).parent / "fixtures" / "messages"

RULES = load_text(
    """
languages:
  en:
    name: English
    first_contact: >-
      Sent by {sender_name} of {company}. Your address comes from {source}; we contact you as
      {reason}. Reply "No thanks" or STOP to be removed. Access or erasure: {opt_out_address}.


      Privacy policy: {privacy_policy_url}
    follow_up: "{company} ({reason}). Reply STOP or write to {opt_out_address}. {privacy_policy_url}"
  pl:
    name: Polski
    first_contact: >-
      Nadawca: {sender_name}, {company}. Źródło: {source}. Powód: {reason}.
      Odpowiedz „Nie, dziękuję” lub STOP. {opt_out_address} {privacy_policy_url}
    follow_up: "{company}: odpowiedz „Nie, dziękuję” lub STOP. {opt_out_address} {privacy_policy_url}"
  ar:
    name: العربية
    direction: rtl
    first_contact: >-
      أرسل إليكم هذه الرسالة {sender_name} من شركة {company}. يكفي أن تردّوا بعبارة «لا شكرا» أو STOP.
      {opt_out_address} {privacy_policy_url} {source} {reason}
    follow_up: "شركة {company}: «لا شكرا» أو STOP. {opt_out_address} {privacy_policy_url}"
""",
    "test-footers.yaml",
    FooterRules,
)
VALUES = {
    "sender_name": "Jonas Weber",
    "company": "Acme Analytics",
    "privacy_policy_url": "https://acme-analytics.eu/privacy",
    "opt_out_address": "privacy@acme-analytics.eu",
    "source": "your company's website",
    "reason": "Head of Logistics",
}
MARK = "privacy@acme-analytics.eu"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def footer(language: str = "en", kind: str = "first_contact") -> tuple[str, str]:
    rendered = render_footer(RULES, language, kind, VALUES)  # type: ignore[arg-type]
    return rendered.text, rendered.html


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_parts(raw: bytes) -> list[tuple[EmailMessage, str]]:
    return [
        (p, p.get_content().replace("\r\n", "\n"))
        for p in parse(raw).walk()
        if p.get_content_maintype() == "text" and not p.is_attachment()
    ]


def boundaries(raw: bytes) -> list[bytes]:
    return [m.group(1) for m in re.finditer(rb'boundary="?([^";\r\n]+)"?', raw)]


def untouched_segments(raw: bytes) -> list[bytes]:
    """Segments between boundary lines that are not text bodies (attachments, images, ...)."""
    pattern = b"|".join(re.escape(b"\r\n--" + b) for b in boundaries(raw))
    return [
        s
        for s in re.split(pattern, raw)
        if not re.search(rb"(?im)^content-type:\s*(text/(plain|html)|multipart/)", s)
        and not s.startswith(b"--\r\n")
        and s.strip()
        and b"Content-Type" in s
    ]


ALL_CLIENT_FIXTURES = [
    "thunderbird_related.eml",
    "outlook_cp1250.eml",
    "apple_mail.eml",
    "gmail_reply.eml",
    "tracked_sales.eml",
    "iso2022jp.eml",
    "arabic_cp1256.eml",
]


@pytest.mark.parametrize("name", ALL_CLIENT_FIXTURES)
def test_footer_reaches_every_visible_body_and_nothing_else_changes(name: str) -> None:
    raw = load(name)
    text, html_footer = footer("ar" if "arabic" in name else "en")
    out = insert_footer(raw, text, html_footer)
    assert out.skipped_reason is None
    msg = parse(out.raw)
    assert msg[MARKER_HEADER] == "added"
    assert not msg.defects
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    before = {p.get_content_type() for p, _ in text_parts(raw)}
    changed = [(p, c) for p, c in text_parts(out.raw) if MARK in c]
    assert {p.get_content_type() for p, _ in changed} == before
    assert out.parts_changed == len(changed)
    for segment in untouched_segments(raw):
        assert segment in out.raw
    for b in boundaries(raw):
        assert out.raw.count(b"--" + b) == raw.count(b"--" + b)
    # Original text is still there, decoded the same way.
    for (p_in, c_in), (_, c_out) in zip(text_parts(raw), text_parts(out.raw), strict=True):
        body = c_in.rstrip("\r\n")
        if p_in.get_content_type() == "text/html":
            body = body[: body.lower().rfind("</body")] if "</body" in body.lower() else body
        assert body in c_out


@pytest.mark.parametrize("name", ALL_CLIENT_FIXTURES)
def test_never_twice(name: str) -> None:
    text, html_footer = footer()
    once = insert_footer(load(name), text, html_footer)
    twice = insert_footer(once.raw, text, html_footer)
    assert twice.raw is once.raw
    assert twice.skipped_reason == "already has a footer"
    other_text, other_html = footer("pl", "follow_up")
    assert insert_footer(once.raw, other_text, other_html).raw is once.raw


@pytest.mark.parametrize("name", ["gmail_reply.eml", "outlook_cp1250.eml", "thunderbird_related.eml"])
@pytest.mark.parametrize("language", ["en", "pl", "ar"])
def test_footer_already_in_body_without_marker_is_not_repeated(name: str, language: str) -> None:
    text, html_footer = footer(language)
    once = insert_footer(load(name), text, html_footer).raw
    without_marker = re.sub(rb"X-GDPR-Mail-Proxy-Footer: added\r\n", b"", once)
    again = insert_footer(without_marker, text, html_footer)
    assert again.raw is without_marker


def test_signed_message_is_never_modified() -> None:
    raw = load("smime_signed.eml")
    out = insert_footer(raw, *footer())
    assert out.raw is raw
    assert out.skipped_reason == "signed or encrypted"


def test_thunderbird_flowed_text_stays_valid_flowed() -> None:
    out = insert_footer(load("thunderbird_related.eml"), *footer()).raw
    plain = next(p for p, _ in text_parts(out) if p.get_content_type() == "text/plain")
    assert plain.get_param("format") == "flowed"
    raw_body = plain.get_payload(decode=True)
    assert isinstance(raw_body, bytes)
    lines = raw_body.decode("utf-8").split("\r\n")
    sep = lines.index("-- ")
    # The line before the separator must not flow into it, and footer lines stay short.
    assert not lines[sep - 1].endswith(" ")
    assert all(len(line) <= 78 for line in lines[sep:])
    # Unflowing joins the soft-broken lines back into the original sentence.
    unflowed = "".join(line if line.endswith(" ") else line + "\n" for line in lines[sep + 1 :])
    assert 'Reply "No thanks" or STOP to be removed.' in unflowed
    assert "Privacy policy: https://acme-analytics.eu/privacy" in unflowed


def test_outlook_word_html_keeps_charset_and_encoding() -> None:
    raw = load("outlook_cp1250.eml")
    text, html_footer = footer("pl")
    out = insert_footer(raw, text, html_footer).raw
    parts = text_parts(out)
    for part, content in parts:
        assert part.get_content_charset() == "windows-1250"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert "„Nie, dziękuję”" in content
    markup = next(c for p, c in parts if p.get_content_type() == "text/html")
    # After the WordSection div, before </body>, and the conditional comments untouched.
    assert markup.index("gdpr-mail-proxy-footer") > markup.index("Acme Analytics Sp. z o.o.")
    assert markup.index("gdpr-mail-proxy-footer") < markup.index("</body>")
    assert markup.count("<!--[if gte mso 9]>") == 2
    # Text lines of the original are not re-wrapped.
    plain_out = parts[0][1]
    assert "dziękuję za rozmowę na targach w Poznaniu. Zgodnie z obietnicą przesyłam krótkie" in plain_out


def test_gmail_reply_footer_after_the_quote_closes() -> None:
    out = insert_footer(load("gmail_reply.eml"), *footer()).raw
    markup = next(c for p, c in text_parts(out) if p.get_content_type() == "text/html")
    assert markup.index("gdpr-mail-proxy-footer") > markup.index("</blockquote>")
    plain = next(c for p, c in text_parts(out) if p.get_content_type() == "text/plain")
    assert plain.index("\n-- \n") > plain.index("> ¿Podrías enviarme la propuesta?")


def test_unclosed_blockquote_is_closed_before_the_footer() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<html><body><p>Thanks!</p><blockquote type="cite"><p>Earlier message</p></body></html>\r\n'
    )
    out = insert_footer(raw, *footer()).raw
    markup = text_parts(out)[0][1]
    assert markup.index("</blockquote>") < markup.index("gdpr-mail-proxy-footer")


def test_apple_mail_footer_goes_to_the_last_html_fragment() -> None:
    out = insert_footer(load("apple_mail.eml"), *footer()).raw
    htmls = [c for p, c in text_parts(out) if p.get_content_type() == "text/html"]
    assert len(htmls) == 2
    assert MARK not in htmls[0]
    assert MARK in htmls[1]
    assert htmls[1].index("Sophie") < htmls[1].index(MARK)


def test_iso_2022_jp_keeps_charset_when_footer_fits() -> None:
    raw = load("iso2022jp.eml")
    out = insert_footer(raw, *footer()).raw
    part, content = text_parts(out)[0]
    assert part.get_content_charset() == "iso-2022-jp"
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert "いつもお世話になっております。" in content
    assert MARK in content


def test_iso_2022_jp_upgrades_to_utf8_when_footer_does_not_fit() -> None:
    raw = load("iso2022jp.eml")
    out = insert_footer(raw, *footer("pl")).raw
    part, content = text_parts(out)[0]
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert "いつもお世話になっております。" in content
    assert "„Nie, dziękuję”" in content
    assert out.count(b"Content-Transfer-Encoding") == 1


def test_arabic_windows_1256_stays_windows_1256_and_html_is_rtl() -> None:
    out = insert_footer(load("arabic_cp1256.eml"), *footer("ar")).raw
    for part, content in text_parts(out):
        assert part.get_content_charset() == "windows-1256"
        assert "«لا شكرا»" in content
        if part.get_content_type() == "text/html":
            assert 'dir="rtl"' in content
            assert 'lang="ar"' in content


def test_ascii_single_part_upgrades_charset_and_encoding_for_non_ascii_footer() -> None:
    raw = b"From: a@acme-analytics.eu\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello Bob,\r\n\r\nshort note.\r\n"
    out = insert_footer(raw, *footer("pl")).raw
    msg = parse(out)
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg["MIME-Version"] == "1.0"
    content = msg.get_content().replace("\r\n", "\n")
    assert content.startswith("Hello Bob,\n\nshort note.\n-- \n")
    assert "„Nie, dziękuję”" in content


def test_html_footer_in_a_charset_without_those_letters_uses_character_references() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n<html><body><p>Hi</p></body></html>\r\n"
    )
    out = insert_footer(raw, *footer("ar")).raw
    assert b"Content-Transfer-Encoding: 7bit" in out
    content = parse(out).get_content()
    assert "&#" in content
    assert "«لا شكرا»" in html.unescape(content)


def test_base64_html_body_is_reencoded_as_base64() -> None:
    msg = EmailMessage()
    msg["From"] = "a@acme-analytics.eu"
    msg.set_content("<html><body><p>Grüße aus Köln</p></body></html>", subtype="html", cte="base64")
    raw = msg.as_bytes(policy=policy.SMTP)
    out = insert_footer(raw, *footer()).raw
    part = parse(out)
    assert part["Content-Transfer-Encoding"] == "base64"
    content = part.get_content()
    assert "Grüße aus Köln" in content
    assert content.index(MARK) < content.index("</body>")


def test_text_without_final_newline_and_html_without_body_tag() -> None:
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi\r\n--b\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<div>Hi</div>\r\n--b--\r\n"
    )
    out = insert_footer(raw, *footer()).raw
    parts = text_parts(out)
    assert parts[0][1].startswith("Hi\n-- \n")
    assert parts[1][1].startswith('<div>Hi</div>\n<div class="gdpr-mail-proxy-footer"')


def test_no_visible_body() -> None:
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    out = insert_footer(raw, *footer())
    assert out.raw is raw
    assert out.skipped_reason == "no visible text body"


def test_undecodable_text_part_raises_mime_error() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n"
    )
    with pytest.raises(MimeError):
        insert_footer(raw, *footer())
