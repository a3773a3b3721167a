"""Tolerant MIME access: parse bytes, decode headers and text parts without raising.

Replies arrive from every client and server on earth, with wrong charsets, 8-bit headers
and broken structure; every helper here degrades to best-effort text instead of failing.
The compat32 parser is used because it is several times faster than the modern policy
and never rejects a header.  The complaint, bounce, auto-reply and reply readers each ask
the same message for the same headers, content types and texts: a parsed message answers
each question once (see ParsedMessage).
"""

from __future__ import annotations

import bisect
import email
import email.feedparser
import email.header
import email.policy
import io
import itertools
import re
import types
from email.message import Message
from typing import Any

MAX_PART_CHARS = 200_000  # beyond this a part is not a reply a person typed
_ID = re.compile(r"<([^<>\s]+)>")
_UNSET = object()
_NOT_KEPT = object()  # not in the memo yet (_UNSET is kept for an answer of "missing")


class ParsedMessage(Message):
    """A compat32 message that remembers its answers until it is changed.

    The memo is tied to the header list (its identity and length: every change but
    replace_header rebinds or extends it), the default type and the payload, so an edited
    message is read afresh.
    """

    def _memo(self) -> dict[Any, Any]:
        own = self.__dict__  # the instance's attributes, read without the class look-up
        state = own.get("_proxy_state")
        headers, payload = own["_headers"], own["_payload"]
        if (
            state is None
            or state[0] is not headers
            or state[1] != len(headers)
            or state[3] is not payload
            or state[2] != own["_default_type"]
        ):
            state = (headers, len(headers), own["_default_type"], payload, {})
            own["_proxy_state"] = state
        memo: dict[Any, Any] = state[4]
        return memo

    def replace_header(self, _name: str, _value: Any) -> None:
        self.__dict__.pop("_proxy_state", None)  # the one change made in place
        super().replace_header(_name, _value)

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first header of that name, as Message.get gives it: each reader asks the
        same few headers (Content-Type, Content-Transfer-Encoding, X-Autoreply, ...)."""
        memo = self._memo()
        key = ("get", name.lower())
        value = memo.get(key, _UNSET)
        if value is _UNSET:
            value = super().get(name, _UNSET)
            if value is not _UNSET and not isinstance(value, str):
                return value  # a Header object (8-bit bytes): a new one for each caller
            memo[key] = value
        return failobj if value is _UNSET else value

    def get_content_type(self) -> str:
        memo = self._memo()
        ctype = memo.get("content-type")
        if ctype is None:
            ctype = memo["content-type"] = super().get_content_type()
        return str(ctype)

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        memo = self._memo()
        key = ("params", header.lower())
        params = memo.get(key, _UNSET)
        if params is _UNSET:
            params = memo[key] = super()._get_params_preserve(_UNSET, header)  # type: ignore[misc]
        return failobj if params is _UNSET else list(params)  # a copy: callers may change theirs

    def get_param(self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True) -> Any:
        """Message.get_param, once per parameter: the charset, boundary and format=flowed
        readers ask each part's Content-Type for theirs."""
        memo = self._memo()
        key = ("param", param.lower(), header.lower(), unquote)
        value = memo.get(key, _NOT_KEPT)
        if value is _NOT_KEPT:
            value = memo[key] = super().get_param(param, _UNSET, header, unquote)
        return failobj if value is _UNSET else value  # a str or a tuple: nothing a caller can change

    def get_content_charset(self, failobj: Any = None) -> Any:
        memo = self._memo()
        charset = memo.get("charset", _NOT_KEPT)
        if charset is _NOT_KEPT:
            charset = memo["charset"] = super().get_content_charset(_UNSET)
        return failobj if charset is _UNSET else charset

    def first_raw_header(self, name: str) -> str | None:
        """A header's first raw value (8-bit bytes as surrogate escapes), None if missing."""
        memo = self._memo()
        raw = memo.get("raw-headers")
        if raw is None:
            raw = {}
            for key, value in self._headers:  # type: ignore[attr-defined]
                raw.setdefault(key.lower(), str(value))
            memo["raw-headers"] = raw
        first: str | None = raw.get(name.lower())
        return first


class _BoundaryMatch:
    def __init__(self, groups: dict[str, str | None]) -> None:
        self._groups = groups

    def group(self, name: str) -> str | None:
        return self._groups[name]


# What may follow "--boundary" and its "--" on a boundary line for the stdlib's pattern
# (?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$ to match, with the line separator it captures.
_BOUNDARY_ENDINGS: dict[str, str | None] = {
    "": None, "\r\n": "\r\n", "\r\n\n": "\r\n", "\r": "\r", "\n": "\n", "\n\n": "\n",
}  # fmt: skip


class _BoundaryLine:
    """The feed parser's boundary-line pattern as string operations.

    The stdlib compiles one regular expression per multipart boundary, and boundaries are
    unique per message, so that compilation cost more than the rest of the parse.
    """

    def __init__(self, separator: str) -> None:
        self._separator = separator

    def match(self, line: str) -> _BoundaryMatch | None:
        if not line.startswith(self._separator):
            return None
        rest = line[len(self._separator) :]
        end = "--" if rest.startswith("--") else None
        if end:
            rest = rest[2:]
        tail = rest.lstrip(" \t")
        if tail not in _BOUNDARY_ENDINGS:
            return None
        ws = rest[: len(rest) - len(tail)]
        return _BoundaryMatch({"sep": self._separator, "end": end, "ws": ws, "linesep": _BOUNDARY_ENDINGS[tail]})


class _BoundaryRe:
    """The `re` the feed parser's _parsegen sees: its boundary pattern becomes a _BoundaryLine."""

    _PREFIX = "(?P<sep>"
    _SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    _ESCAPED = re.compile(r"\\(.)", re.DOTALL)
    escape = staticmethod(re.escape)

    @classmethod
    def compile(cls, pattern: str) -> Any:
        if pattern.startswith(cls._PREFIX) and pattern.endswith(cls._SUFFIX):
            escaped = pattern[len(cls._PREFIX) : -len(cls._SUFFIX)]
            return _BoundaryLine(cls._ESCAPED.sub(r"\1", escaped))
        return re.compile(pattern)  # a pattern of another Python version: the real thing


def _feed_parser_class() -> type[email.feedparser.FeedParser] | None:
    """The stdlib feed parser with its own _parsegen code seeing _BoundaryRe as `re`."""
    parsegen = getattr(email.feedparser.FeedParser, "_parsegen", None)
    code = getattr(parsegen, "__code__", None)
    if code is None or "re" not in code.co_names or parsegen.__closure__:  # type: ignore[union-attr]
        return None
    scope = {**vars(email.feedparser), "re": _BoundaryRe}
    fast = types.FunctionType(code, scope, code.co_name, parsegen.__defaults__)  # type: ignore[union-attr]
    return type("_FeedParser", (email.feedparser.FeedParser,), {"_parsegen": fast})


_FEED_PARSER = _feed_parser_class()
_CHUNK = 8192  # what email.parser.Parser feeds at a time


_HEADER_LINE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")  # the feed parser's headerRE


def _header_source(lines: list[str]) -> tuple[str, str]:
    """compat32's header_source_parse: (name, value with its continuation lines)."""
    name, value = lines[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(lines[1:])
    return name, value.rstrip("\r\n")


def _without_last_newline(text: str) -> str:
    """What the stdlib's NLCRE_eol search strips ("\r\n", "\r" or "\n" at the very end),
    without a search that tries every position of a long part."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text


class _Unusual(Exception):
    """The message needs the stdlib parser: a defect it records, a message/* part, a digest."""


class _LineParser:
    """The compat32 feed parser's algorithm over a list of lines instead of a stream.

    The stdlib parser asks each line whether it ends the part (a boundary of any enclosing
    multipart) one call at a time; here the only lines that can ("--" lines) are indexed
    once, and a part's body is one slice.  Whatever would make the stdlib parser record a
    defect or treat a part specially (message/*, multipart/digest, a missing boundary,
    "From " lines among the headers) raises _Unusual, and that message is parsed by the
    stdlib instead: the tree is always the one the stdlib builds.
    """

    def __init__(self, text: str) -> None:
        self.lines = io.StringIO(text, newline="").readlines()  # as its BufferedSubFile splits
        starts = map(str.startswith, self.lines, itertools.repeat("--"))
        self.dashes = list(itertools.compress(range(len(self.lines)), starts))
        self.ends: list[Any] = []  # boundary matchers of the enclosing multiparts
        self.i = 0

    def _ends_at(self, j: int) -> bool:
        """Whether line j is the false end of the current part (it is past the last line)."""
        if j >= len(self.lines):
            return True
        line = self.lines[j]
        return line.startswith("--") and any(m(line) for m in self.ends)

    def _next_end(self, own: Any = None) -> tuple[int, bool]:
        """The first line from here on that ends the part, or that ``own`` matches (then True)."""
        lines = self.lines
        for j in self.dashes[bisect.bisect_left(self.dashes, self.i) :]:
            line = lines[j]
            if own is not None and own(line):
                # the stdlib checks enclosing boundaries first
                return j, not any(m(line) for m in self.ends)
            if any(m(line) for m in self.ends):
                return j, False
        return len(lines), False

    def message(self, parent: Message | None) -> tuple[Message, str]:
        """The next part, and its content type."""
        msg = ParsedMessage(policy=email.policy.compat32)
        if parent is not None:
            parent.attach(msg)
        lines = self.lines
        headers: list[str] = []
        while not self._ends_at(self.i):
            line = lines[self.i]
            if not _HEADER_LINE.match(line):
                if line[0] not in "\r\n":
                    raise _Unusual  # no blank line between headers and body
                self.i += 1
                break
            headers.append(line)
            self.i += 1
        self._headers(msg, headers)
        ctype = msg.get_content_type()
        maintype = ctype.split("/")[0]
        if maintype == "message" or ctype == "multipart/digest":
            raise _Unusual
        if maintype == "multipart":
            self._multipart(msg)
        else:
            end, _ = self._next_end()
            msg.set_payload("".join(lines[self.i : end]))
            self.i = end
        return msg, ctype

    @staticmethod
    def _headers(msg: Message, lines: list[str]) -> None:
        """compat32's header_source_parse and set_raw for each header, continuation lines joined."""
        out: list[tuple[str, str]] = msg._headers  # type: ignore[attr-defined]
        value: list[str] = []
        for line in lines:
            if line[0] in " \t":
                if not value:
                    raise _Unusual  # a continuation first
                value.append(line)
                continue
            if value:
                out.append(_header_source(value))
            if line.startswith("From ") or line.find(":") <= 0:
                raise _Unusual  # an envelope line, or no header name
            value = [line]
        if value:
            out.append(_header_source(value))

    def _multipart(self, msg: Message) -> None:
        boundary = msg.get_boundary()
        if boundary is None or str(msg.get("content-transfer-encoding", "8bit")).lower() not in (
            "7bit",
            "8bit",
            "binary",
        ):
            raise _Unusual
        own = _BoundaryLine("--" + boundary).match
        lines = self.lines
        # the preamble: up to the first boundary line
        start, found = self._next_end(own)
        first = own(lines[start]) if found else None
        if first is None or first.group("end"):
            raise _Unusual  # no start boundary
        preamble = lines[self.i : start]
        if preamble:
            preamble[-1] = _without_last_newline(preamble[-1])
            msg.preamble = "".join(preamble)
        self.i = start
        while True:
            mo = own(lines[self.i])
            if mo is None:  # pragma: no cover - the loop stands on a boundary line
                raise _Unusual
            if mo.group("end"):
                self.i += 1
                break
            # a boundary line, and any repeated after it
            self.i += 1
            while True:
                if self._ends_at(self.i):
                    raise _Unusual  # the stdlib reads its false end as a line here
                if not own(lines[self.i]):
                    break
                self.i += 1
            self.ends.append(own)
            part, ctype = self.message(msg)
            self.ends.pop()
            if ctype.startswith("multipart/"):
                inner = part.epilogue
                if inner == "":
                    part.epilogue = None
                elif inner is not None:
                    part.epilogue = _without_last_newline(inner)
            else:
                payload = part._payload  # type: ignore[attr-defined]
                if isinstance(payload, str):
                    part._payload = _without_last_newline(payload)  # type: ignore[attr-defined]
            end, found = self._next_end(own)
            if not found:
                raise _Unusual  # no close boundary
            if end != self.i:  # pragma: no cover - a part reads up to the next boundary
                raise _Unusual
        linesep = mo.group("linesep")
        end, _ = self._next_end()
        epilogue = ([""] if linesep else []) + lines[self.i : end]
        self.i = end
        if epilogue:  # the line break after the close boundary belongs to it
            head = epilogue[0]
            epilogue[0] = head[2:] if head.startswith("\r\n") else head[1:] if head[:1] in ("\r", "\n") else head
        msg.epilogue = "".join(epilogue)


def _parse(raw: bytes) -> Message:
    text = raw.decode("ASCII", errors="surrogateescape")  # as email.parser.BytesParser does
    try:
        return _LineParser(text).message(None)[0]
    except _Unusual:
        pass
    if _FEED_PARSER is None:
        return email.message_from_bytes(raw, _class=ParsedMessage)
    parser = _FEED_PARSER(ParsedMessage, policy=email.policy.compat32)
    for start in range(0, len(text), _CHUNK):
        parser.feed(text[start : start + _CHUNK])
    result: Message = parser.close()
    return result


def parse(raw: bytes) -> Message:
    try:
        return _parse(raw)
    except Exception:  # the parser is lenient, but a reply must never stop the watcher
        return email.message_from_string("", _class=ParsedMessage)


def _unescape(value: str, hint: str | None) -> str:
    """Undo the surrogate escapes the parser leaves for raw 8-bit header bytes.

    Clients that send unencoded 8-bit headers write them in the charset of the body, so
    that is tried after UTF-8.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeError:
        return decode_bytes(data, hint)


def decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeError):
            continue
    # windows-1252 is what mislabelled Western mail almost always is; replace the rest.
    return data.decode("cp1252", "replace")


def _raw_header(msg: Message, name: str) -> str | None:
    # raw_items() keeps 8-bit bytes as surrogate escapes; get() would turn them into "?".
    if isinstance(msg, ParsedMessage):
        return msg.first_raw_header(name)
    wanted = name.lower()
    try:
        for key, value in msg.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return None
    return None


def header(msg: Message, name: str) -> str:
    """A header's decoded text ('' if missing or unreadable)."""
    if not isinstance(msg, ParsedMessage):
        return _decoded_header(msg, name)
    memo = msg._memo()
    texts: dict[str, str] | None = memo.get("headers")
    if texts is None:
        texts = memo["headers"] = {}
    text = texts.get(name)  # as the callers spell it; then under its lower-case name
    if text is None:
        key = ("header", name.lower())
        text = memo.get(key)
        if text is None:
            text = memo[key] = _decoded_header(msg, name)
        texts[name] = text
    return text


def _decoded_header(msg: Message, name: str) -> str:
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    if not raw.isascii():
        try:
            hint = msg.get_content_charset()
        except Exception:
            hint = None
        raw = _unescape(raw, hint)
    if "=?" not in raw:
        return " ".join(raw.split())
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return " ".join(raw.split())
    text = "".join(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk for chunk, charset in parts)
    return " ".join(text.split())


_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+?)\s*>")
_BARE_ADDR = re.compile(r"[^\s<>\"(),;:]+@[^\s<>\"(),;:]+")


def address(msg: Message, name: str) -> str:
    """The lower-cased address of a single-address header such as From ('' if none)."""
    value = header(msg, name)
    # A regex instead of email.utils.parseaddr, which costs more than the rest of a verdict.
    m = _ANGLE_ADDR.search(value) or _BARE_ADDR.search(value)
    return m.group(1 if m.re is _ANGLE_ADDR else 0).strip().lower() if m else ""


def display_name(msg: Message, name: str) -> str:
    value = header(msg, name)
    if "<" in value:
        return value.split("<", 1)[0].strip().strip('"').strip()
    m = re.search(r"\(([^()]*)\)", value)  # old style: addr@example (Name)
    return m.group(1).strip() if m else ""


def message_ids(value: str) -> tuple[str, ...]:
    """Message-IDs in a header value, in order, without angle brackets or repeats."""
    ids = _ID.findall(value) or value.split()
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return tuple(seen)


def part_text(part: Message) -> str:
    """The decoded text of a non-multipart part (transfer encoding and charset undone)."""
    if not isinstance(part, ParsedMessage):
        return _decoded_text(part)
    memo = part._memo()
    text: str | None = memo.get("text")
    if text is None:
        text = memo["text"] = _decoded_text(part)
    return text


def _decoded_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload[:MAX_PART_CHARS] if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data[: MAX_PART_CHARS * 4], charset)[:MAX_PART_CHARS]


def is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    except Exception:
        return False
    return disposition == "attachment"


def body_parts(msg: Message) -> tuple[Message | None, Message | None]:
    """The first inline text/plain and text/html parts, not looking inside attached messages."""
    plain: Message | None = None
    html: Message | None = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype.startswith("message/"):
                continue  # an attached or returned message was not written by the sender
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[0:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if is_attachment(part):
            continue
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
    return plain, html


def is_flowed(part: Message) -> tuple[bool, bool]:
    """RFC 3676 format=flowed and DelSp=yes flags of a text part."""
    try:
        fmt = (part.get_param("format") or "").__str__().lower()
        delsp = (part.get_param("delsp") or "").__str__().lower()
    except Exception:
        return False, False
    return fmt == "flowed", delsp == "yes"
