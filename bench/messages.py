"""The benchmark's test messages, generated deterministically (same bytes on every machine).

- ``plain_5k``: a 5 KB German text/plain prospecting mail (UTF-8, 8bit, format=flowed);
- ``html_50k``: a ~50 KB Thunderbird-style message: multipart/alternative with a
  quoted-printable text/plain part and a multipart/related holding the quoted-printable HTML
  and an inline PNG logo (cid:), with two open-tracking pixels (Mailtrack and HubSpot Sales);
- ``attachment_25m``: a 25 MB multipart/mixed message with a base64 PDF-like attachment.

Every message is returned with CRLF line endings.  ``write_for_smtp_source`` writes the LF
form that ``smtp-source -F`` expects (it appends CRLF to each line and dot-stuffs itself).
"""

from __future__ import annotations

import base64
import quopri
import random
import struct
import zlib
from pathlib import Path

SENDER = "anna.nowak@nordlicht.example"
RECIPIENT = "kontakt@firma.de"  # EU ccTLD: footer and tracker removal apply
MESSAGE_ID_PLACEHOLDER = b"<bench-0000000000@nordlicht.example>"

KB = 1024
MB = 1024 * 1024

_GERMAN = (
    "Sehr geehrter Herr Kowalski, wir haben gesehen, dass Ihr Team in München die Einführung "
    "eines neuen Warenwirtschaftssystems plant. Nordlicht Software begleitet mittelständische "
    "Unternehmen seit über zehn Jahren bei genau diesem Schritt: von der Datenübernahme über die "
    "Schulung der Mitarbeiter bis zum Betrieb. Gerne würde ich Ihnen in einem kurzen Gespräch "
    "zeigen, wie andere Großhändler ihre Durchlaufzeiten um ein Drittel verkürzt haben. "
)


def _headers(subject: str, content_type: str, extra: str = "") -> str:
    return (
        f"Message-ID: {MESSAGE_ID_PLACEHOLDER.decode()}\r\n"
        "Date: Mon, 23 Nov 2026 10:15:42 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "User-Agent: Mozilla Thunderbird\r\n"
        "Content-Language: de-DE\r\n"
        "To: Jan Kowalski <kontakt@firma.de>\r\n"
        f"From: Anna Nowak <{SENDER}>\r\n"
        f"Subject: {subject}\r\n"
        f"{extra}"
        f"Content-Type: {content_type}\r\n"
    )


def _wrap(text: str, width: int = 72) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line + " ")  # format=flowed soft break
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    sentences = [s.strip() + "." for s in _GERMAN.split(".") if s.strip()]
    out, total = [], 0
    while total < size:
        para = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6)))
        out.append(para)
        total += len(para.encode()) + 2
    return out


def plain_5k() -> bytes:
    rng = random.Random(5)
    head = (
        _headers(
            "Kurze Frage zu Ihrem Warenwirtschaftsprojekt",
            "text/plain; charset=UTF-8; format=flowed",
            "",
        )
        + "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    body_lines: list[str] = []
    for para in _paragraphs(rng, 5 * KB - len(head) - 300):
        body_lines.extend(_wrap(para))
        body_lines.append("")
    body_lines += ["Mit freundlichen Grüßen", "Anna Nowak", "Nordlicht Software GmbH", "+49 40 1234567"]
    return (head + "\r\n".join(body_lines) + "\r\n").encode("utf-8")


def _png(rng: random.Random, width: int, height: int) -> bytes:
    """A valid RGB PNG whose pixels are noisy enough not to compress much (a photo-like logo)."""
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _qp(text: str) -> str:
    encoded = quopri.encodestring(text.encode("utf-8").replace(b"\r\n", b"\n")).decode("ascii")
    return encoded.replace("\n", "\r\n")


MAILTRACK_PIXEL = "https://mailtrack.io/trace/mail/8a5b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b.png?u=1234567"
HUBSPOT_PIXEL = (
    "https://t.sidekickopen06.com/e1t/o/5/f18dQhb0S7ks8dDMPbW2n0x6l2B9gXrN7sKj6v4LGzzVcgbvK2W8rzk4656dPDf7_YY0d1"
    "?si=5082689958395904&amp;pi=a1b2c3d4"
)


def html_50k() -> bytes:
    rng = random.Random(50)
    paras = _paragraphs(rng, 14 * KB)
    plain = "\n\n".join("\n".join(_wrap(p)) for p in paras)
    plain += "\n\nMit freundlichen Grüßen\nAnna Nowak\nNordlicht Software GmbH\n"
    # Thunderbird/Outlook-like HTML: inline styles everywhere, a table layout for the signature.
    style = 'style="font-family: Calibri, Arial, sans-serif; font-size: 11pt; color: #1f1f1f; margin: 0 0 12px 0;"'
    html_paras = "\n".join(f"    <p {style}>{p}</p>" for p in paras)
    html = f"""<!DOCTYPE html>
<html>
  <head>
    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
    <style type="text/css">body {{ font-family: Calibri, Arial, sans-serif; }} p.MsoNormal {{ margin: 0; }}</style>
  </head>
  <body>
{html_paras}
    <table cellpadding="0" cellspacing="0" border="0" style="border-collapse: collapse; margin-top: 18px;">
      <tr>
        <td style="padding-right: 12px; vertical-align: top;">
          <img src="cid:logo.nordlicht@nordlicht.example" alt="Nordlicht Software" width="96" height="48"
            moz-do-not-send="false">
        </td>
        <td style="font-family: Calibri, Arial, sans-serif; font-size: 10pt; color: #555555;">
          <b>Anna Nowak</b><br>Vertrieb DACH<br>Nordlicht Software GmbH<br>
          <a href="https://nordlicht.example/" style="color: #0b5cad;">nordlicht.example</a> | +49 40 1234567
        </td>
      </tr>
    </table>
    <img src="{MAILTRACK_PIXEL}" width="0" height="0" style="display:none" alt="">
    <img src="{HUBSPOT_PIXEL}" style="display:none!important" height="1" width="1" alt="">
  </body>
</html>
"""
    png = _png(rng, 64, 44)
    outer, related = "------------bench0alternative0boundary", "------------bench0related0boundary0x"
    head = _headers(
        "Kurze Frage zu Ihrem Warenwirtschaftsprojekt",
        f'multipart/alternative;\r\n boundary="{outer}"',
    )
    parts = [
        head,
        "\r\nThis is a multi-part message in MIME format.\r\n",
        f"--{outer}\r\n",
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        _qp(plain),
        f"\r\n--{outer}\r\n",
        f'Content-Type: multipart/related;\r\n boundary="{related}"\r\n\r\n',
        f"\r\n--{related}\r\n",
        "Content-Type: text/html; charset=UTF-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        _qp(html),
        f"\r\n--{related}\r\n",
        'Content-Type: image/png; name="logo.png"\r\n',
        'Content-Disposition: inline; filename="logo.png"\r\n',
        "Content-Id: <logo.nordlicht@nordlicht.example>\r\n",
        "Content-Transfer-Encoding: base64\r\n\r\n",
        _b64_lines(png),
        f"\r\n\r\n--{related}--\r\n",
        f"\r\n--{outer}--\r\n",
    ]
    return "".join(parts).encode("utf-8")


def attachment_25m(size: int = 25 * MB) -> bytes:
    rng = random.Random(25)
    boundary = "------------bench0mixed0boundary"
    head = _headers(
        "Angebot und Produktunterlagen",
        f'multipart/mixed; boundary="{boundary}"',
    )
    text = "\r\n".join(_wrap(" ".join(_paragraphs(rng, 1 * KB)))) + "\r\n"
    overhead = len(head) + len(text) + 600
    payload = rng.randbytes(max(0, (size - overhead) * 57 // 78))
    parts = [
        head,
        "\r\nThis is a multi-part message in MIME format.\r\n",
        f"--{boundary}\r\n",
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n",
        "Content-Transfer-Encoding: 8bit\r\n\r\n",
        text,
        f"\r\n--{boundary}\r\n",
        'Content-Type: application/pdf; name="Nordlicht-Produktunterlagen.pdf"\r\n',
        'Content-Disposition: attachment; filename="Nordlicht-Produktunterlagen.pdf"\r\n',
        "Content-Transfer-Encoding: base64\r\n\r\n",
    ]
    return "".join(parts).encode("utf-8") + _b64_lines(payload).encode() + f"\r\n\r\n--{boundary}--\r\n".encode()


MESSAGES = {"5k": plain_5k, "50k": html_50k, "25m": attachment_25m}


def write_for_smtp_source(raw: bytes, path: Path) -> Path:
    """The LF-terminated file ``smtp-source -F`` reads (it sends each line with CRLF)."""
    path.write_bytes(raw.replace(b"\r\n", b"\n"))
    return path


if __name__ == "__main__":  # python -m bench.messages DIR: write the messages for inspection
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for name, make in MESSAGES.items():
        data = make()
        (out / f"{name}.eml").write_bytes(data)
        print(f"{name}.eml: {len(data):,} bytes")
