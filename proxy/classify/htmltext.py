"""HTML reply to plain text, leaving out what the person did not write.

Clients mark the quoted original in HTML more reliably than in text: Gmail wraps it in
div.gmail_quote, Apple Mail and Thunderbird in blockquote type=cite, Outlook starts it
with div#divRplyFwdMsg or #appendonsend, Outlook for Windows with a div that has only a
top border.  Our own footer is div.gdpr-mail-proxy-footer.
Outlook prefixes copied classes and ids with "x_", so names are matched as substrings.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

FOOTER_CLASS = "gdpr-mail-proxy-footer"

_SKIP_TAGS = {"blockquote", "style", "script", "head", "title", "template"}
_SKIP_CLASSES = (
    "gmail_quote",
    "gmail_attr",
    "yahoo_quoted",
    "moz-cite-prefix",
    FOOTER_CLASS,
)
# From these on, the rest of the document is the quoted original.
_STOP_IDS = ("divrplyfwdmsg", "appendonsend", "stopspelling", "olk_src_body_section")
_STOP_CLASSES = ("outlookmessageheader",)
_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "hr", "section", "article", "header", "footer", "dd", "dt", "address",
}  # fmt: skip
_VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source", "embed"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_WORD_HEADER = re.compile(r"border-top\s*:\s*solid[^;]*;\s*padding\s*:\s*3\.0pt\s+0(?:cm|in|pt)?\s+0")


class _Stopped(Exception):
    """Raised where the quoted original starts: nothing after it is read."""


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skip_tag is not None:
            if tag == self.skip_tag and tag not in _VOID:
                self.skip_depth += 1
            return
        values = {k.lower(): (v or "").lower() for k, v in attrs}
        ident, classes = values.get("id", ""), values.get("class", "")
        if any(s in ident for s in _STOP_IDS) or any(s in classes for s in _STOP_CLASSES):
            self.stopped = True
            raise _Stopped  # the text before this tag is already out: the rest is not parsed
        if tag == "div" and _WORD_HEADER.search(values.get("style", "")):
            # Outlook for Windows (Word) puts the quoted header block in a div with only a top
            # border: "border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm".
            self.stopped = True
            raise _Stopped
        if tag in _SKIP_TAGS or any(s in classes for s in _SKIP_CLASSES):
            if tag not in _VOID:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.stopped and self.skip_tag is None:
            self.out.append(_SPACES.sub(" ", data.replace("\n", " ")))


# The bounce reader and the reply reader both read a message's HTML part (the same decoded
# string): the last conversion is kept for that string object only.
_last: tuple[str, str] = ("", "")


def html_to_text(html: str) -> str:
    global _last
    last = _last
    if html is last[0]:
        return last[1]
    text = _convert(html)
    _last = (html, text)
    return text


def _convert(html: str) -> str:
    parser = _Extractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # _Stopped at the quote; html.parser is lenient: keep whatever was read
        pass
    lines = (line.strip() for line in "".join(parser.out).split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
