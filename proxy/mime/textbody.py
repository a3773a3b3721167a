"""Decode one text part for editing and encode the edited text back the way it came.

The part keeps its transfer encoding and charset; only when inserted text cannot be
represented is 7bit raised to quoted-printable (or base64 for mostly non-ASCII text) or the
charset raised to UTF-8, and the part's headers are updated to match.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re

from .errors import MimeError
from .headers import newline_of, set_charset, set_header
from .splice import Edit
from .structure import Part, delimiters

TextEdit = tuple[int, int, str]  # [start, end) of TextBody.view replaced by a string

# "=" followed by a space or tab is only valid in a soft break with trailing whitespace.
_UNUSUAL_QP = re.compile(rb"=(?:0[aAdD]|[ \t])")
_HIGH_BYTES = bytes(range(128, 256))
_IDENTITY = frozenset({"7bit", "8bit", "binary"})
_PROBE = "<>/=;:\"' abcxyzABCXYZ0189\r\n\t"


@functools.lru_cache(maxsize=64)
def _codec(charset: str) -> str | None:
    """Python's codec for a MIME charset; None if unknown or not a text encoding (a message
    may name "base64", "rot13" or "idna" as its charset)."""
    try:
        name = codecs.lookup(charset).name
        b"abc".decode(name)
        "abc".encode(name)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return name


@functools.lru_cache(maxsize=64)
def _ascii_compatible(codec: str) -> bool:
    """Whether ASCII characters are single identical bytes wherever they occur.

    Then the text can be searched and edited as latin-1, which keeps every byte the user's
    client wrote even when the declared charset is wrong.  Stateful encodings (ISO-2022-*,
    UTF-7) and UTF-16/32 fail this and are decoded for real.
    """
    if codec.startswith(("iso2022", "utf_16", "utf_32", "utf_7", "hz")):
        return False
    try:
        return _PROBE.encode(codec) == _PROBE.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def decode_transfer(data: bytes, cte: str) -> bytes:
    if cte in _IDENTITY:
        return data
    if cte == "quoted-printable":
        return binascii.a2b_qp(data)
    if cte == "base64":
        try:
            # Strict, so that a damaged part is reported instead of silently re-encoded as
            # whatever the lenient decoder made of it.
            return binascii.a2b_base64(b"".join(data.split()), strict_mode=True)
        except binascii.Error as exc:
            raise MimeError(f"broken base64 text part: {exc}") from None
    raise MimeError(f"unsupported transfer encoding {cte!r}")


def _qp(data: bytes, nl: bytes) -> bytes:
    """Quoted-printable with the message's line breaks: binascii uses LF for soft breaks when
    the data has no CRLF to copy (a one-line HTML body, say)."""
    out = binascii.b2a_qp(data, istext=True)
    if nl == b"\r\n" and out.count(b"\n") != out.count(b"\r\n"):
        out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return out


def _encode_transfer(content: bytes, cte: str, nl: bytes, trailing_newline: bool) -> bytes:
    if cte == "quoted-printable":
        return _qp(content, nl)
    if cte == "base64":
        lines = [binascii.b2a_base64(content[i : i + 57], newline=False) for i in range(0, len(content), 57)]
        return nl.join(lines) + (nl if trailing_newline and lines else b"")
    return content


class TextBody:
    def __init__(self, raw: bytes, part: Part):
        self.raw = raw
        self.part = part
        self.cte = part.cte
        self.encoded = encoded = raw[part.body_start : part.end]
        self.trailing_newline = encoded.endswith(b"\n")
        self.content = decode_transfer(encoded, self.cte)
        self.codec = _codec(part.charset or "us-ascii")
        self.bytewise = self.codec is None or _ascii_compatible(self.codec)
        if self.bytewise:
            self.view = self.content.decode("latin-1")
        else:
            assert self.codec is not None
            try:
                self.view = self.content.decode(self.codec)
            except UnicodeError:
                raise MimeError(f"text does not match its charset {part.charset!r}") from None
        self.newline = "\n" if "\n" in self.view and "\r\n" not in self.view else "\r\n"

    def contains(self, text: str, html: bool) -> bool:
        """Whether text already occurs in the part, as this part would have encoded it."""
        if not self.bytewise:
            return text in self.view
        errors = "xmlcharrefreplace" if html else "strict"
        for codec in dict.fromkeys([self.codec or "ascii", "utf_8"]):
            try:
                if text.encode(codec, errors).decode("latin-1") in self.view:
                    return True
            except UnicodeError:
                continue
        return False

    def encode(self, edits: list[TextEdit], html: bool) -> list[Edit]:
        """Splice edits that apply the text edits to the message (body and, if needed, headers).

        In HTML, characters the charset lacks become character references, so the charset
        never has to change; in plain text they raise the part to UTF-8.
        """
        errors = "xmlcharrefreplace" if html else "strict"
        ordered = sorted(edits)
        charset: str | None = None
        try:
            if self.bytewise:
                target = self.codec or "ascii"
                pieces: list[bytes] = []
                pos = 0
                for s, e, text in ordered:
                    pieces += [self.content[pos:s], text.encode(target, errors)]
                    pos = e
                pieces.append(self.content[pos:])
                content = b"".join(pieces)
            else:
                assert self.codec is not None
                content = _apply(self.view, ordered).encode(self.codec, errors)
        except UnicodeError:
            content = self._as_utf8(ordered)
            charset = "utf-8"
        cte = self.cte
        # 7bit becomes quoted-printable only when the inserted text is what breaks 7bit: a
        # part that already carried 8-bit bytes relays as it did before.
        if cte not in ("8bit", "binary", "quoted-printable", "base64") and (
            (not content.isascii() and self.content.isascii())
            or (_longest_line(content) > 998 >= _longest_line(self.content))
        ):
            non_ascii = len(content) - len(content.translate(None, _HIGH_BYTES))
            cte = "base64" if non_ascii * 3 > len(content) else "quoted-printable"
        nl = newline_of(self.raw, self.part)
        body = None
        if cte == self.cte == "quoted-printable" and charset is None and self.bytewise and ordered:
            body = _qp_splice(self.encoded, self.content, content, ordered[0][0], ordered[-1][1], nl)
        if body is None:
            body = _encode_transfer(content, cte, nl, self.trailing_newline)
        for boundary in self.part.outer_boundaries:
            if b"--" + boundary in body and delimiters(body, 0, len(body), boundary):
                raise MimeError("the changed text would contain a MIME boundary line")
        if self.part.body_start == self.part.header_end:
            # No blank line ends the headers (the part had none, or its body began with a
            # line that is not a header): add one so the new text cannot be read as headers.
            h_end = self.part.header_end
            ended = h_end == self.part.start or self.raw[h_end - 1 : h_end] == b"\n"
            body = (nl if ended else nl + nl) + body
        result = [Edit(self.part.body_start, self.part.end, body)]
        if cte != self.cte:
            result += set_header(self.raw, self.part, "Content-Transfer-Encoding", cte)
        if charset:
            result += set_charset(self.raw, self.part, charset)
        # set_charset adds MIME-Version itself when it has to add a Content-Type.
        adds_content_type = charset is not None and self.part.header("content-type") is None
        top_without_version = self.part.depth == 0 and not self.part.header("mime-version")
        if (cte != self.cte or charset) and top_without_version and not adds_content_type:
            result += set_header(self.raw, self.part, "MIME-Version", "1.0")
        return result

    def _as_utf8(self, ordered: list[TextEdit]) -> bytes:
        if self.codec is None:
            raise MimeError(f"unknown charset {self.part.charset!r}")
        if not self.bytewise:
            try:
                return _apply(self.view, ordered).encode("utf-8")
            except UnicodeError:  # lone surrogates decoded from a broken UTF-16 part
                raise MimeError(f"text does not match its charset {self.part.charset!r}") from None
        # Edit offsets sit on ASCII characters, which are character boundaries in every
        # ASCII-compatible charset, so the pieces between them decode independently.
        candidates = [self.codec] + (["utf_8"] if self.codec == "ascii" else [])
        for codec in candidates:
            try:
                out: list[str] = []
                pos = 0
                for s, e, text in ordered:
                    out += [self.content[pos:s].decode(codec), text]
                    pos = e
                out.append(self.content[pos:].decode(codec))
                return "".join(out).encode("utf-8")
            except UnicodeError:
                continue
        raise MimeError(f"text does not match its charset {self.part.charset!r}")


def _longest_line(data: bytes) -> int:
    return max(map(len, data.splitlines()), default=0)


def _apply(view: str, ordered: list[TextEdit]) -> str:
    out: list[str] = []
    pos = 0
    for s, e, text in ordered:
        out += [view[pos:s], text]
        pos = e
    out.append(view[pos:])
    return "".join(out)


def _hard_break_end(encoded: bytes, index: int, total: int) -> int:
    """Offset just after the index-th (1-based) hard line break of quoted-printable text with
    total hard breaks; 0 for index 0.  Walks from whichever end is nearer."""
    if index <= 0:
        return 0
    if index <= total - index:
        pos, seen = 0, 0
        while True:
            i = encoded.find(b"\n", pos)
            if i < 0:
                return -1
            pos = i + 1
            if not _is_soft(encoded, i):
                seen += 1
                if seen == index:
                    return pos
    pos, seen = len(encoded), total + 1
    while True:
        i = encoded.rfind(b"\n", 0, pos)
        if i < 0:
            return -1
        pos = i
        if not _is_soft(encoded, i):
            seen -= 1
            if seen == index:
                return i + 1


def _is_soft(encoded: bytes, newline_at: int) -> bool:
    before = encoded[max(0, newline_at - 2) : newline_at]
    return before.endswith(b"=") or before == b"=\r"


def _qp_splice(encoded: bytes, old: bytes, new: bytes, first: int, last: int, nl: bytes) -> bytes | None:
    """Quoted-printable for new, which differs from old (encoded as encoded) only between
    old[first:last]: whole lines outside that range keep their original encoded bytes and only
    the lines in between are encoded again, which is much cheaper for a large body.  None
    when the line structure cannot be matched up (the caller then encodes everything)."""
    # Lines correspond one to one unless a line break was itself encoded (=0D, =0A) or a
    # soft break carries trailing whitespace; both are rare and fall back to a full encode.
    if _UNUSUAL_QP.search(encoded):
        return None
    a = old.rfind(b"\n", 0, first) + 1
    nl_after = old.find(b"\n", last)
    b = len(old) if nl_after < 0 else nl_after + 1
    total = old.count(b"\n")
    enc_a = _hard_break_end(encoded, old.count(b"\n", 0, a), total)
    enc_b = len(encoded) if b >= len(old) else _hard_break_end(encoded, total - old.count(b"\n", b), total)
    if enc_a < 0 or enc_b < enc_a:
        return None
    middle = new[a : len(new) - (len(old) - b)]
    return encoded[:enc_a] + _qp(middle, nl) + encoded[enc_b:]
