"""Locate the MIME structure of a message by scanning its bytes.

Parsing and re-serialising whole messages with the email package costs milliseconds and
rewrites bytes the user's client chose, so this module only records where each part's
headers and body are; the callers decode the few text parts they change and splice them
back, slicing everything else from the original bytes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

# Deeper parts are treated as opaque leaves: never modified, never descended into, so a
# hostile nesting depth costs neither a recursion crash nor quadratic time.
MAX_DEPTH = 40

SIGNED_OR_ENCRYPTED = frozenset(
    {"multipart/signed", "multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}
)

# One header field with its folded continuation lines.  A lone CR inside a line is kept as
# content so that it cannot end the header block early.
_LINE_REST = rb"[^\r\n]*+(?:\r(?!\n)[^\r\n]*+)*+"
_FIELD = re.compile(
    rb"([!-9;-~\x80-\xff]+)[ \t]*:(" + _LINE_REST + rb"(?:\r?\n[ \t]" + _LINE_REST + rb")*+)(?:\r?\n|\Z)"
)
_BLANK = re.compile(rb"\r?\n")
_CTYPE = re.compile(r"\s*([^\s;/]+)\s*/\s*([^\s;]+)")
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;\s]*)')
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(slots=True, eq=False)
class Header:
    name: str  # as written
    value: str  # unfolded; bytes decoded as latin-1 so 8-bit headers never fail
    start: int  # offsets of the whole field, line ending included
    end: int


@dataclass(slots=True, eq=False)
class Part:
    start: int
    header_end: int  # where a new header field would be inserted
    body_start: int
    end: int  # body end; the CRLF before the next boundary belongs to that boundary
    depth: int
    headers: list[Header]
    content_type: str
    params: dict[str, str]
    children: list[Part] = field(default_factory=list)
    # Boundaries of the enclosing multiparts: new body text must not contain them.
    outer_boundaries: tuple[bytes, ...] = ()

    def header(self, name: str) -> Header | None:
        name = name.lower()
        for h in self.headers:
            if h.name.lower() == name:
                return h
        return None

    @property
    def cte(self) -> str:
        h = self.header("content-transfer-encoding")
        return h.value.strip().lower() if h else "7bit"

    @property
    def charset(self) -> str | None:
        cs = self.params.get("charset")
        return cs.strip().lower() if cs else None

    @property
    def is_attachment(self) -> bool:
        h = self.header("content-disposition")
        if h is None:
            return "name" in self.params
        value = h.value.lower()
        return value.strip().startswith("attachment") or "filename" in value or "name" in self.params

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    def walk(self) -> Iterator[Part]:
        """This part and its descendants, not entering signed/encrypted or forwarded messages."""
        stack = [self]
        while stack:
            part = stack.pop()
            yield part
            if part.content_type not in SIGNED_OR_ENCRYPTED:
                stack.extend(reversed(part.children))


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    m = _CTYPE.match(value)
    if not m:
        return "", {}
    params: dict[str, str] = {}
    for pm in _PARAM.finditer(value, m.end()):
        name = pm.group(1).lower()
        v = pm.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1] if v.endswith('"') and len(v) > 1 else v[1:])
        params.setdefault(name, v)
    return f"{m.group(1)}/{m.group(2)}".lower(), params


# The relay's steps read the top-level header of the same message many times over (Message-ID,
# List-Unsubscribe, recipients, the scan).  The headers of the last few small messages are
# kept: with many clients at once their steps take turns, so one entry would be replaced by
# another message's before the next step asks again.  Bounded in entries and in the bytes of
# the messages it keeps alive.
_TOP_MEMO_MAX = 1024 * 1024
_TOP_MEMO_ENTRIES = 64
_TOP_MEMO_BYTES = 2 * 1024 * 1024
_top_memo: OrderedDict[int, tuple[bytes, tuple[list[Header], int, int]]] = OrderedDict()
_top_memo_bytes = 0
_top_memo_lock = threading.Lock()  # a step may read a header in a worker thread


def _remember_top(raw: bytes, parsed: tuple[list[Header], int, int]) -> None:
    global _top_memo_bytes
    with _top_memo_lock:
        if id(raw) in _top_memo:
            return
        _top_memo[id(raw)] = (raw, parsed)
        _top_memo_bytes += len(raw)
        while len(_top_memo) > _TOP_MEMO_ENTRIES or _top_memo_bytes > _TOP_MEMO_BYTES:
            _, (old, _) = _top_memo.popitem(last=False)
            _top_memo_bytes -= len(old)


def parse_headers(raw: bytes, start: int, end: int) -> tuple[list[Header], int, int]:
    """Header fields of the part in raw[start:end], the header end and the body start."""
    top = start == 0 and end == len(raw) and end <= _TOP_MEMO_MAX
    if top:
        memo = _top_memo.get(id(raw))
        if memo is not None and memo[0] is raw:
            return list(memo[1][0]), memo[1][1], memo[1][2]
    headers: list[Header] = []
    pos = start
    while pos < end:
        m = _FIELD.match(raw, pos, end)
        if m is None:
            break
        folded = m.group(2)
        value = (_UNFOLD.sub("", folded.decode("latin-1")) if b"\n" in folded else folded.decode("latin-1")).strip()
        headers.append(Header(m.group(1).decode("latin-1"), value, pos, m.end()))
        pos = m.end()
    header_end = pos
    if pos < end:
        blank = _BLANK.match(raw, pos, end)
        # Without a blank line the first non-header line starts the body, as mail readers do.
        body_start = blank.end() if blank else pos
    else:
        body_start = end
    if top:
        _remember_top(raw, (list(headers), header_end, body_start))
    return headers, header_end, body_start


# A search over a 25 MB body is done a megabyte at a time: one C call over the whole would
# hold the interpreter for tens of milliseconds, and a worker thread doing it would stall
# the event loop (every other client) as long.
_WINDOW = 1 << 20


def _find(raw: bytes, marker: bytes, pos: int, end: int) -> int:
    if end - pos <= _WINDOW:
        return raw.find(marker, pos, end)
    reach = len(marker) - 1  # a match starting in one window may end in the next
    while pos < end:
        found = raw.find(marker, pos, min(end, pos + _WINDOW + reach))
        if found >= 0:
            return found
        pos += _WINDOW
    return -1


def delimiters(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """(delimiter start incl. preceding line break, start of the next line, is closing).

    A bare CR or LF counts as a line break, as in the email package and most mail readers,
    so that every reader agrees with us on where parts begin and end.
    """
    marker = b"--" + boundary
    found: list[tuple[int, int, bool]] = []
    pos = start
    while (line := _find(raw, marker, pos, end)) >= 0:
        pos = line + 1
        if line == start:
            begin = line
        elif raw[line - 1] == 0x0A:
            begin = line - 2 if line - 2 >= start and raw[line - 2] == 0x0D else line - 1
        elif raw[line - 1] == 0x0D:
            begin = line - 1
        else:
            continue  # not at the start of a line
        j = line + len(marker)
        closing = raw.startswith(b"--", j, end)
        k = j + 2 if closing else j
        while k < end and raw[k] in (0x20, 0x09):
            k += 1
        if k >= end:
            # A delimiter line without a line break ends the data: no part can follow it.
            found.append((begin, end, True))
            break
        if raw.startswith(b"\r\n", k, end):
            nxt = k + 2
        elif raw[k] in (0x0A, 0x0D):
            nxt = k + 1
        else:
            continue  # a longer boundary that merely starts with ours
        found.append((begin, nxt, closing))
        if closing:
            break
        pos = nxt
    return found


def _split(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    delims = delimiters(raw, start, end, boundary)
    ranges: list[tuple[int, int]] = []
    for n, (_, body_from, closing) in enumerate(delims):
        if closing:
            break
        body_to = delims[n + 1][0] if n + 1 < len(delims) else end
        ranges.append((body_from, max(body_from, body_to)))
    return ranges


def scan(raw: bytes) -> Part:
    """The part tree of a whole message."""
    return _scan(raw, 0, len(raw), 0, "text/plain", ())


def _scan(raw: bytes, start: int, end: int, depth: int, default_type: str, outer: tuple[bytes, ...]) -> Part:
    headers, header_end, body_start = parse_headers(raw, start, end)
    ctype, params = "", dict[str, str]()
    for h in headers:
        if h.name.lower() == "content-type":
            ctype, params = parse_content_type(h.value)
            break
    part = Part(start, header_end, body_start, end, depth, headers, ctype or default_type, params)
    part.outer_boundaries = outer
    boundary = params.get("boundary", "")
    if ctype.startswith("multipart/") and boundary and depth < MAX_DEPTH:
        child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
        encoded = boundary.encode("latin-1", "replace")
        part.children = [
            _scan(raw, s, e, depth + 1, child_default, (*outer, encoded))
            for s, e in _split(raw, body_start, end, encoded)
        ]
    return part


def is_signed_or_encrypted(raw: bytes) -> bool:
    """True if any part is signed or encrypted (S/MIME, PGP/MIME or inline PGP)."""
    return has_protected_part(raw, shared_scan(raw))


def has_protected_part(raw: bytes, root: Part) -> bool:
    for part in root.walk():
        if part.content_type in SIGNED_OR_ENCRYPTED:
            return True
        if (
            part.content_type == "text/plain"
            and part.cte != "base64"
            and raw.find(b"-----BEGIN PGP ", part.body_start, part.end) >= 0
        ):
            return True
    return False


# -- sharing one scan between the edits of one message ---------------------------------------
#
# The signed check, the footer, the tracker removal and the read-receipt step each read the
# structure of the same version of a message.  An edit returns new bytes, so the tree of the
# result is derived from the tree before it (``rebase``: shifted where nothing changed, read
# again only where something did) and remembered for those bytes; ``scan`` answers from what
# is remembered when it is asked about the very same bytes object.  The pipeline forgets a
# message's trees when it is done with it, and everything when no message is left in it, so
# no message is held longer than messages are processed.

_REMEMBERED_MAX = 128  # the messages in the pipeline at once, each a version or two
_remembered: dict[int, tuple[bytes, Part]] = {}


def remember(raw: bytes, root: Part) -> None:
    """``root`` is the tree of ``raw``: the next ``scan(raw)`` of this very object returns it."""
    while len(_remembered) >= _REMEMBERED_MAX:
        try:
            _remembered.pop(next(iter(_remembered)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
            break
    _remembered[id(raw)] = (raw, root)  # holding raw keeps its id from being reused


def forget(*raws: bytes) -> None:
    """Drop the remembered trees of these bytes objects; with none, every remembered tree
    (and the messages they hold)."""
    global _top_memo_bytes
    if not raws:
        _remembered.clear()
        with _top_memo_lock:
            _top_memo.clear()
            _top_memo_bytes = 0
    for raw in raws:
        found = _remembered.get(id(raw))
        if found is not None and found[0] is raw:
            _remembered.pop(id(raw), None)
        with _top_memo_lock:
            top = _top_memo.get(id(raw))
            if top is not None and top[0] is raw:
                del _top_memo[id(raw)]
                _top_memo_bytes -= len(raw)


def shared_scan(raw: bytes) -> Part:
    """``scan(raw)``, answered from a remembered tree of this same bytes object when there is one."""
    found = _remembered.get(id(raw))
    if found is not None and found[0] is raw:
        return found[1]
    root = scan(raw)
    remember(raw, root)
    return root


def rebase(root: Part, edits: list[tuple[int, int, int]], raw: bytes) -> Part:
    """The tree of ``raw``, the message ``root`` was scanned from after ``edits`` ((start,
    end, new length) of each replaced range, not overlapping).

    Parts no edit touches are shifted; a multipart whose header block changed has its header
    fields read again (and is scanned again if its type or boundary changed); a leaf that
    changed is read again; a multipart whose preamble, delimiter lines or epilogue changed is
    scanned again.  The result is what ``scan(raw)`` returns.
    """
    return _rebase(root, sorted(edits), raw, "text/plain")


def _delta_before(edits: list[tuple[int, int, int]], pos: int) -> int:
    # Edits ending at or before pos, except an insertion exactly at pos (it belongs to what starts there).
    return sum(n - (e - s) for s, e, n in edits if e <= pos and s < pos)


def _delta_to_end(edits: list[tuple[int, int, int]], pos: int) -> int:
    # Edits up to pos, an insertion exactly at pos included (it extends what ends there).
    return sum(n - (e - s) for s, e, n in edits if s < pos or s == e == pos)


def _shifted(part: Part, by: int) -> Part:
    if by == 0:
        return part
    return Part(
        part.start + by,
        part.header_end + by,
        part.body_start + by,
        part.end + by,
        part.depth,
        [Header(h.name, h.value, h.start + by, h.end + by) for h in part.headers],
        part.content_type,
        part.params,
        [_shifted(c, by) for c in part.children],
        part.outer_boundaries,
    )


def _rebase(part: Part, edits: list[tuple[int, int, int]], raw: bytes, default: str) -> Part:
    mine = [x for x in edits if x[0] <= part.end and x[1] >= part.start]
    if not mine:
        return _shifted(part, _delta_before(edits, part.start))
    start = part.start + _delta_before(edits, part.start)
    end = part.end + _delta_to_end(edits, part.end)
    if not part.children:
        return _scan(raw, start, end, part.depth, default, part.outer_boundaries)
    in_header = [x for x in mine if x[1] <= part.header_end and x[0] < part.body_start]
    in_child = [x for x in mine if any(c.start <= x[0] and x[1] <= c.end for c in part.children)]
    if len(in_header) + len(in_child) != len(mine):
        return _scan(raw, start, end, part.depth, default, part.outer_boundaries)
    if in_header:
        headers, header_end, body_start = parse_headers(raw, start, end)
        ctype, params = "", dict[str, str]()
        for h in headers:
            if h.name.lower() == "content-type":
                ctype, params = parse_content_type(h.value)
                break
        expected_body = part.body_start + _delta_before(edits, part.body_start)
        if ctype != part.content_type or params != part.params or body_start != expected_body:
            return _scan(raw, start, end, part.depth, default, part.outer_boundaries)
    else:
        by = start - part.start
        headers = [Header(h.name, h.value, h.start + by, h.end + by) for h in part.headers]
        header_end, body_start, params = part.header_end + by, part.body_start + by, part.params
    child_default = "message/rfc822" if part.content_type == "multipart/digest" else "text/plain"
    return Part(
        start,
        header_end,
        body_start,
        end,
        part.depth,
        headers,
        part.content_type,
        params,
        [_rebase(c, edits, raw, child_default) for c in part.children],
        part.outer_boundaries,
    )
