"""Line-wrapping the footer for plain-text bodies (fixed or RFC 3676 format=flowed)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

WIDTH = 76
# No break before these (French puts a space before them) nor after an opening guillemet.
_NO_BREAK_BEFORE = tuple(":;!?»")
_NO_BREAK_AFTER = ("«",)


def _words(line: str) -> list[str]:
    """Words of a line, gluing punctuation that must not start or end a line to its neighbour."""
    words: list[str] = []
    for w in line.split(" "):
        if words and (w.startswith(_NO_BREAK_BEFORE) or words[-1].endswith(_NO_BREAK_AFTER)):
            words[-1] += " " + w
        else:
            words.append(w)
    return words


def fill(words: Iterable[str], width: int) -> list[str]:
    """Greedy fill: as many words per line as fit in ``width`` (a longer word stands alone)."""
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


@functools.lru_cache(maxsize=64)  # the same few footers are inserted again and again
def wrap_footer(text: str, flowed: bool, delsp: bool) -> tuple[str, ...]:
    """Lines of the footer.  Each line of text is a hard line; long ones are broken at spaces
    (soft breaks with a trailing space when flowed).  Long words such as URLs are not split."""
    out: list[str] = []
    for logical in text.split("\n"):
        logical = logical.rstrip()
        if not logical:
            out.append("")
            continue
        chunks = fill(_words(logical), WIDTH)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if flowed:
                # Space-stuffing keeps a leading space, ">" or "From " from being read as quoting.
                if chunk.startswith((" ", ">", "From ")):
                    chunk = " " + chunk
                if not last:
                    chunk += "  " if delsp else " "
            out.append(chunk)
    return tuple(out)
