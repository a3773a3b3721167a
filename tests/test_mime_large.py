"""A 25 MB attachment: scanned, never decoded, copied once per change."""

from __future__ import annotations

import base64
import os
import tracemalloc

from proxy.mime import TrackerRules, TrackerVendor, UrlRule, insert_footer, strip_trackers

RULES = TrackerRules(
    vendors=(TrackerVendor("T", pixels=(UrlRule(r"^https://t\.example/o/", "https://t.example/o/1.gif"),)),)
)


def big_message() -> bytes:
    data = os.urandom(25 * 1024 * 1024)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="MIX"\r\n\r\n'
        b"--MIX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b'<html><body><p>Offer attached.</p><img src=3D"https://t.example/o/1.gif"></body></html>\r\n'
        b'--MIX\r\nContent-Type: application/pdf; name="offer.pdf"\r\n'
        b'Content-Disposition: attachment; filename="offer.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + encoded
        + b"\r\n--MIX--\r\n"
    )


def test_large_attachment_is_copied_not_decoded() -> None:
    raw = big_message()
    attachment = raw[raw.index(b"--MIX\r\nContent-Type: application/pdf") :]
    tracemalloc.start()
    try:
        with_footer = insert_footer(raw, "Acme: reply STOP", "<p>Acme: reply STOP</p>").raw
        _, peak_insert = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stripped = strip_trackers(with_footer, RULES, None)
        _, peak_strip = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One output copy each (plus small change); a decode of the attachment would add ~25 MB.
    assert peak_insert < len(raw) * 1.2
    assert peak_strip - len(with_footer) < len(raw) * 1.2
    assert stripped.raw.endswith(attachment)
    assert with_footer.endswith(attachment)
    assert [r.url for r in stripped.removed] == ["https://t.example/o/1.gif"]
