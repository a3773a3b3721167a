"""Mail for the reply-watcher benchmark: the realistic replies of the test fixtures, and a
maildir full of them as a busy sales inbox holds them.

Every message gets its own Message-ID and sender, so the watcher's duplicate check (by
Message-ID) never short-cuts the work.  The maildir is written directly, in the layout
Dovecot and pymap's maildir backend read: ``cur/KEY:2,FLAGS`` files and a
``dovecot-uidlist`` that assigns UIDs in delivery order; the internal date is the file's
mtime, which ``UID SEARCH SINCE`` uses.  APPENDing 10,000 messages, 4 GB of them
attachments, would take minutes of the test server's time and measure nothing of ours.
"""

from __future__ import annotations

import base64
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "replies"

# The mix of a prospecting inbox: mostly ordinary answers, then absence notices, bounces
# and opt-outs (erasure requests and "not now" count with the opt-outs).
MIX = {"reply": 0.70, "auto-reply": 0.12, "bounce": 0.08, "opt-out": 0.10}
ATTACHMENT_SHARE = 0.10  # of the ordinary replies' count in the whole folder
ATTACHMENT_BYTES = (1_000_000, 5_000_000)  # the PDF before base64
UIDVALIDITY = 1_700_000_000

_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*", re.IGNORECASE | re.MULTILINE)
_FROM = re.compile(rb"^From:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*", re.MULTILINE)
_MIME_FIELD = re.compile(
    rb"^(?:Content-Type|Content-Transfer-Encoding|MIME-Version):[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*",
    re.IGNORECASE | re.MULTILINE,
)


def fixture_replies() -> dict[str, bytes]:
    """The realistic replies (Gmail, Outlook, Apple Mail, Thunderbird, MTAs), by file name."""
    return {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))}


def fixture_kind(name: str, raw: bytes) -> str:
    """Which bucket of MIX a fixture stands for, from its name (the fixtures are named so)."""
    if name.startswith("bounce_"):
        return "bounce"
    if name.startswith("ooo_"):
        return "auto-reply"
    if "positive" in name or "uncertain" in name:
        return "reply"
    return "opt-out"


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Header (with its final newline), the newline style, and the body."""
    nl = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    head, sep, body = raw.partition(nl + nl)
    return head + nl, nl, body if sep else b""


def personalise(raw: bytes, n: int) -> bytes:
    """The fixture as reply number ``n``: its own Message-ID and its own sender."""
    head, nl, body = _split(raw)
    head = _MESSAGE_ID.sub(b"", head)
    head = _FROM.sub(lambda m: _new_sender(m.group(0), n), head)
    return head + f"Message-ID: <bench-{n}@kunde{n % 97}.example>".encode() + nl + nl + body


def _new_sender(field: bytes, n: int) -> bytes:
    # Bounces come from MAILER-DAEMON and stay so; people get an address of their own.
    if b"mailer-daemon" in field.lower() or b"postmaster" in field.lower():
        return field
    nl = b"\r\n" if field.endswith(b"\r\n") else b"\n"
    return f"From: Kontakt {n} <kontakt{n}@kunde{n % 97}.example>".encode() + nl


def with_attachment(raw: bytes, pdf_base64: bytes, n: int) -> bytes:
    """The reply with a PDF attached, as mail clients send it: multipart/mixed around the
    original body."""
    head, nl, body = _split(raw)
    mime = b"".join(m.group(0) for m in _MIME_FIELD.finditer(head) if not m.group(0).lower().startswith(b"mime"))
    head = _MIME_FIELD.sub(b"", head)
    if not mime:
        mime = b"Content-Type: text/plain; charset=us-ascii" + nl
    boundary = f"----=_Part_bench_{n}".encode()
    return b"".join(
        [
            head,
            b"MIME-Version: 1.0",
            nl,
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
            nl,
            nl,
            b"--" + boundary + nl,
            mime,
            nl,
            body if body.endswith(nl) else body + nl,
            b"--" + boundary + nl,
            b'Content-Type: application/pdf; name="Angebot-' + str(n).encode() + b'.pdf"' + nl,
            b'Content-Disposition: attachment; filename="Angebot-' + str(n).encode() + b'.pdf"' + nl,
            b"Content-Transfer-Encoding: base64" + nl,
            nl,
            pdf_base64 if nl == b"\n" else pdf_base64.replace(b"\n", b"\r\n"),
            b"--" + boundary + b"--" + nl,
        ]
    )


def _pdfs(rng: random.Random, count: int) -> list[bytes]:
    """A few base64-encoded random 'PDFs' of 1-5 MB, shared by the messages with an
    attachment: random bytes do not compress, and encoding 1,000 of them would dominate."""
    out = []
    for _ in range(count):
        size = rng.randint(*ATTACHMENT_BYTES)
        payload = b"%PDF-1.7\n" + rng.randbytes(size)
        out.append(base64.encodebytes(payload))
    return out


@dataclass(frozen=True)
class Mailbox:
    """What was written: counts per kind, attachments, bytes on disk."""

    messages: int
    kinds: dict[str, int]
    with_attachment: int
    bytes_on_disk: int
    attachment_bytes: int  # on disk, base64 included


def messages(count: int, seed: int = 1) -> Iterator[tuple[str, bool, bytes]]:
    """(kind, has attachment, raw) for ``count`` messages of the MIX, deterministic."""
    rng = random.Random(seed)
    by_kind: dict[str, list[bytes]] = {k: [] for k in MIX}
    for name, raw in fixture_replies().items():
        by_kind[fixture_kind(name, raw)].append(raw)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    pdfs = _pdfs(rng, 6)
    attach_p = ATTACHMENT_SHARE / MIX["reply"]
    for n in range(1, count + 1):
        kind = rng.choices(kinds, weights)[0]
        raw = personalise(rng.choice(by_kind[kind]), n)
        attach = kind == "reply" and rng.random() < attach_p
        if attach:
            raw = with_attachment(raw, rng.choice(pdfs), n)
        yield kind, attach, raw


def write_maildir(home: Path, count: int, *, days: int = 30, seed: int = 1) -> Mailbox:
    """Fill the maildir ``home`` (the INBOX of the IMAP server's user) with ``count`` messages delivered
    over the last ``days`` days, oldest first, all already seen (flag S)."""
    for sub in ("cur", "new", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cur = home / "cur"
    now = time.time()
    kinds: Counter[str] = Counter()
    attached = total = attachment_bytes = 0
    lines = []
    host = "bench"
    for n, (kind, attach, raw) in enumerate(messages(count, seed), start=1):
        when = now - days * 86400 * (count - n + 1) / count
        key = f"{int(when)}.M{n}P{os.getpid()}.{host}"
        # Physical and CRLF sizes in the name, as Dovecot's own deliveries have them: the
        # server need not read a file to answer RFC822.SIZE.
        vsize = len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
        name = f"{key},S={len(raw)},W={vsize}:2,S"
        path = cur / name
        path.write_bytes(raw)
        os.utime(path, (when, when))
        lines.append(f"{n} :{name}\n")
        kinds[kind] += 1
        total += len(raw)
        if attach:
            attached += 1
            attachment_bytes += len(raw)
    # UIDs in delivery order, as a server that received them one by one would have them.
    header = f"3 V{UIDVALIDITY} N{count + 1} G{random.Random(seed).getrandbits(128):032x}\n"
    (home / "dovecot-uidlist").write_text(header + "".join(lines))
    return Mailbox(count, dict(kinds), attached, total, attachment_bytes)
