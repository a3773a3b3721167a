"""Scanning the MIME structure of messages, including broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.mime import MimeError, insert_footer, is_signed_or_encrypted, strip_trackers
from proxy.mime.bodies import visible_bodies
from proxy.mime.structure import MAX_DEPTH, Part, scan
from proxy.mime.trackers import TrackerRules

FIXTURES = Path(__file__).parent / "fixtures" / "messages"


def tree(part: Part) -> list[object]:
    return [part.content_type, [tree(c) for c in part.children]] if part.children else [part.content_type, []]


def test_thunderbird_structure_and_visible_bodies() -> None:
    raw = (FIXTURES / "thunderbird_related.eml").read_bytes()
    root = scan(raw)
    assert tree(root) == [
        "multipart/mixed",
        [
            [
                "multipart/related",
                [["multipart/alternative", [["text/plain", []], ["text/html", []]]], ["image/png", []]],
            ],
            ["application/pdf", []],
        ],
    ]
    pdf = root.children[1]
    assert raw[pdf.body_start : pdf.body_start + 4] == b"JVBE"
    assert raw[pdf.end : pdf.end + 2] == b"\r\n"  # the line break belongs to the boundary
    assert [p.content_type for p in visible_bodies(root)] == ["text/plain", "text/html"]
    assert root.children[0].children[0].children[0].params["format"] == "flowed"


def test_related_root_chosen_by_start_parameter() -> None:
    raw = (
        b'Content-Type: multipart/related; boundary="r"; start="<b@x>"\r\n\r\n'
        b"--r\r\nContent-Type: text/html\r\nContent-ID: <a@x>\r\n\r\n<p>a</p>\r\n"
        b"--r\r\nContent-Type: text/html\r\nContent-ID: <b@x>\r\n\r\n<p>b</p>\r\n--r--\r\n"
    )
    (body,) = visible_bodies(scan(raw))
    assert raw[body.body_start : body.end] == b"<p>b</p>"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("smime_signed.eml", True), ("thunderbird_related.eml", False), ("tracked_sales.eml", False)],
)
def test_signed_or_encrypted_fixtures(name: str, expected: bool) -> None:
    assert is_signed_or_encrypted((FIXTURES / name).read_bytes()) is expected


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQ==\r\n",
        b"Content-Type: application/x-pkcs7-mime\r\n\r\nMIAG\r\n",
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n'
        b"--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--e--\r\n",
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
        b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="s"\r\n\r\n'
        b"--s\r\nContent-Type: text/plain\r\n\r\nhi\r\n--s--\r\n--m--\r\n",
        b"Content-Type: text/plain\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nhi\r\n",
    ],
)
def test_signed_or_encrypted_variants(raw: bytes) -> None:
    assert is_signed_or_encrypted(raw)
    assert insert_footer(raw, "x", "<p>x</p>").raw is raw


def test_deep_nesting_is_capped_without_recursion_errors() -> None:
    depth = 1000
    head = b"".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(depth))
    tail = b"".join(f"\r\n--b{i}--".encode() for i in reversed(range(depth)))
    raw = head + b"Content-Type: text/plain\r\n\r\nhello" + tail + b"\r\n"
    root = scan(raw)
    deepest = max(p.depth for p in root.walk())
    assert deepest == MAX_DEPTH
    out = insert_footer(raw, "footer", "<p>footer</p>")
    assert out.raw is raw
    assert out.skipped_reason == "no visible text body"
    assert strip_trackers(raw, TrackerRules(), None).raw is raw


def test_missing_closing_boundary_and_garbage_preamble() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="x"\r\n\r\npreamble --x not a boundary\r\n'
        b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xy is longer\r\n"
        b"--x \t\r\nContent-Type: text/html\r\n\r\n<b>hi</b>"
    )
    root = scan(raw)
    assert [c.content_type for c in root.children] == ["text/plain", "text/html"]
    plain, html = root.children
    assert raw[plain.body_start : plain.end] == b"hello\r\n--xy is longer"
    assert raw[html.body_start : html.end] == b"<b>hi</b>"
    out = insert_footer(raw, "F-O-O-T", '<p class="f">F</p>').raw
    out = out.replace(b"X-GDPR-Mail-Proxy-Footer: added\r\n", b"")
    expected = raw.replace(b"--xy is longer", b"--xy is longer\r\n-- \r\nF-O-O-T") + b'\r\n<p class="f">F</p>\r\n'
    assert out == expected


def test_headers_without_blank_line_8bit_and_nul_bytes() -> None:
    raw = b"Subject: caf\xe9\x00\r\nContent-Type: text/plain; charset=latin-1\r\nno colon here\r\nbody"
    root = scan(raw)
    assert root.content_type == "text/plain"
    assert raw[root.body_start :] == b"no colon here\r\nbody"
    out = insert_footer(raw, "footer", "<p>footer</p>").raw
    assert out.endswith(b"no colon here\r\nbody\r\n-- \r\nfooter")


def test_huge_header_is_scanned_in_linear_time() -> None:
    raw = b"X-Long: " + b"a" * 2_000_000 + b"\r\n" + b"X-Folded: a\r\n" + b" b\r\n" * 100_000 + b"\r\nbody\r\n"
    root = scan(raw)
    assert raw[root.body_start :] == b"body\r\n"
    assert insert_footer(raw, "footer", "<p>f</p>").parts_changed == 1


def test_footer_text_that_would_close_the_part_is_refused() -> None:
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--zz--\r\n"
    )
    with pytest.raises(MimeError):
        insert_footer(raw, "line one\n--zz--\nline three", "<p>x</p>")


@pytest.mark.parametrize(
    "charset", ["base64", "rot13", "idna", "punycode", "utf-16", "utf-7", "x-unknown", "utf-8\x00", "cp037", ""]
)
def test_odd_charsets_never_raise_anything_but_mime_error(charset: str) -> None:
    for ctype in ("text/plain", "text/html"):
        raw = (
            f'MIME-Version: 1.0\r\nContent-Type: {ctype}; charset="{charset}"\r\n\r\n'.encode("latin-1")
            + b"<html><body>caf\xc3\xa9 \xff\xfe<img src='https://t.example/o.gif' width=1 height=1></body></html>"
        )
        for footer in ("plain footer", "stopka: „Nie, dziękuję”"):
            try:
                out = insert_footer(raw, footer, f"<p>{footer}</p>").raw
            except MimeError:
                continue
            assert isinstance(out, bytes)
        try:
            strip_trackers(raw, TrackerRules(), None)
        except MimeError:
            pass
