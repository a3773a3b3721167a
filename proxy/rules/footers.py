"""Disclosure footer texts (rules/footers.yaml) and their rendering as plain text and HTML.

Users write only the plain-text template; the HTML is derived from it here so the two can
never disagree and so every value is escaped in one place.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from proxy.mime.wrap import fill
from proxy.rules.templates import FALLBACK_LANGUAGE, language_problems, template_problems

PLACEHOLDERS = ("sender_name", "company", "privacy_policy_url", "opt_out_address", "source", "reason")
KINDS: tuple[Kind, ...] = ("first_contact", "follow_up")
Kind = Literal["first_contact", "follow_up"]
FOOTER_CLASS = "gdpr-mail-proxy-footer"

# Control characters, line/paragraph separators and bidi embeddings/overrides/isolates: a
# value must not add lines to the message or reorder the text around it.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_LINK = re.compile(
    r"(?P<url>https?://[^\s<>\"'«»“”„]+)|(?P<mail>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
_TRAILING_PUNCTUATION = ".,;:!?)]}"
_HTML_WIDTH = 72


@dataclass(frozen=True)
class LanguageFooters:
    name: str  # the language's own name, e.g. "Deutsch"
    first_contact: str
    follow_up: str
    direction: Literal["ltr", "rtl"] = "ltr"

    def check(self) -> Iterable[tuple[str, str]]:
        for kind in KINDS:
            template = getattr(self, kind)
            if not template.strip():
                yield kind, "must not be empty"
            for problem in template_problems(template, PLACEHOLDERS):
                yield kind, problem


@dataclass(frozen=True)
class FooterRules:
    languages: dict[str, LanguageFooters]  # ISO 639-1 code -> texts

    def check(self) -> Iterable[tuple[str, str]]:
        yield from language_problems(self.languages)


@dataclass(frozen=True)
class RenderedFooter:
    text: str  # paragraphs separated by blank lines; wrapped when inserted
    html: str
    language: str  # the language actually used


def clean_value(value: str) -> str:
    """The value without control characters; a run of them (such as CR LF) becomes one space
    so that words on either side stay apart."""
    return re.sub(" {2,}", " ", _UNSAFE.sub(" ", value)).strip()


def render_footer(rules: FooterRules, language: str, kind: Kind, variables: Mapping[str, str]) -> RenderedFooter:
    """The footer of the given kind in the language (or English if it has no entry)."""
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code not in rules.languages:
        code = FALLBACK_LANGUAGE
    texts = rules.languages[code]
    template = texts.first_contact if kind == "first_contact" else texts.follow_up
    text_parts: list[str] = []
    missing: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        text_parts.append(literal)
        if name is None:
            continue
        if name in variables:
            text_parts.append(clean_value(variables[name]))
        else:
            missing.append(name)
    if missing:
        raise ValueError(f"footer values missing: {', '.join(sorted(set(missing)))}")
    text = _tidy("".join(text_parts))
    return RenderedFooter(text, _to_html(text, code, texts.direction), code)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _linkify(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINK.finditer(text):
        target = m.group(0)
        if m.group("url"):
            target = target.rstrip(_TRAILING_PUNCTUATION)
            if not target.startswith(("http://", "https://")) or target.endswith("//"):
                continue
            href = target
        else:
            href = "mailto:" + target
        out.append(html.escape(text[pos : m.start()]))
        out.append(f'<a href="{html.escape(href)}" style="color:inherit;">{html.escape(target)}</a>')
        pos = m.start() + len(target)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _wrap_html(markup: str) -> str:
    """Break long lines at spaces (insignificant in HTML) so no mail line grows too long;
    spaces inside tags are kept so a link's start tag stays on one line."""
    protected = re.sub(r"<[^>]*>", lambda m: m.group().replace(" ", "\x00"), markup)
    return "\n".join(fill(protected.split(" "), _HTML_WIDTH)).replace("\x00", " ")


def _to_html(text: str, code: str, direction: str) -> str:
    align = "right" if direction == "rtl" else "left"
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text):
        body = "<br>\n".join(_linkify(line) for line in paragraph.split("\n"))
        paragraphs.append(f'<p style="margin:0 0 8px 0;">{_wrap_html(body)}</p>')
    style = (
        "margin-top:24px;padding-top:8px;border-top:1px solid #dddddd;color:#666666;"
        f"font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:1.4;text-align:{align};"
        f"direction:{direction};"
    )
    opening = f'<div class="{FOOTER_CLASS}" dir="{direction}" lang="{code}" style="{style}">'
    return "\n".join([opening, *paragraphs, "</div>"])
