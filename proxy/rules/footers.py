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
from typing import Any, Literal

from proxy.mime.wrap import fill
from proxy.rules.regions import RegionRules
from proxy.rules.templates import FALLBACK_LANGUAGE, language_problems, template_problems

PLACEHOLDERS = ("sender_name", "company", "privacy_policy_url", "opt_out_address", "source", "reason")
KINDS: tuple[Kind, ...] = ("first_contact", "follow_up", "consent")
Kind = Literal["first_contact", "follow_up", "consent"]
FOOTER_CLASS = "gdpr-mail-proxy-footer"
# What each kind must tell the person, as placeholders: who writes, where the address came from,
# why they are contacted, and how to object.  `rules check` refuses a footer without them.
REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "first_contact": (
        ("company", "who is writing"),
        ("source", "where the address came from"),
        ("reason", "why the person is contacted"),
        ("opt_out_address", "how to object"),
    ),
    "follow_up": (("company", "who is writing"), ("opt_out_address", "how to object")),
    "consent": (("company", "who is writing"), ("opt_out_address", "how to withdraw consent")),
}
MissingPolicy = Literal["refuse", "warn", "default"]
# For a footers.yaml written before the consent kind existed: never the legitimate-interest text instead.
CONSENT_FALLBACK = (
    "You receive this e-mail from {sender_name} of {company} because you agreed to receive e-mail from us. "
    'You can withdraw your consent at any time: reply "No thanks" or STOP, or write to {opt_out_address}. '
    "Privacy policy: {privacy_policy_url}"
)

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
    # For people who gave marketing consent: no legitimate-interest wording.  Empty: the English
    # consent text is used for this language (never the legitimate-interest one).
    consent: str = ""

    def template(self, kind: Kind) -> str:
        return str(getattr(self, kind))

    def check(self) -> Iterable[tuple[str, str]]:
        for kind in KINDS:
            template = self.template(kind)
            if not template.strip():
                if kind != "consent":
                    yield kind, "must not be empty"
                continue
            problems = template_problems(template, PLACEHOLDERS)
            for problem in problems:
                yield kind, problem
            if problems:
                continue
            used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            for placeholder, what in REQUIRED[kind]:
                if placeholder not in used:
                    yield kind, f"must say {what}: {{{placeholder}}} is missing"


@dataclass(frozen=True)
class FooterRules:
    languages: dict[str, LanguageFooters]  # ISO 639-1 code -> texts
    # A first contact whose source (or reason) nobody recorded: refuse the message, warn (send, the
    # footer saying plainly in the person's language that it was not recorded, and log), or use
    # sender.default_source / default_reason (a key of rules/sources.yaml, shown in the person's language).
    missing_source: MissingPolicy = "warn"
    missing_reason: MissingPolicy = "warn"
    # Customers and people who wrote to us first (contact status customer or inbound, or source
    # own_enquiry) are not prospects: no footer, the short follow_up one, or the full first_contact one.
    not_prospects: Literal["no_footer", "follow_up", "first_contact"] = "no_footer"

    def check(self) -> Iterable[tuple[str, str]]:
        yield from language_problems(self.languages)

    def language(self, language: str) -> str:
        """The footer language actually used for ``language`` (regional codes reduced, else English)."""
        code = language.strip().lower().replace("_", "-").split("-")[0]
        return code if code in self.languages else FALLBACK_LANGUAGE


@dataclass(frozen=True)
class RenderedFooter:
    text: str  # paragraphs separated by blank lines; wrapped when inserted
    html: str
    language: str  # the language actually used


def recipient_language(regions: RegionRules, contact: Mapping[str, Any] | None, domain: str, default: str) -> str:
    """The person's language, as footers, answers and the unsubscribe page all take it: the
    contact's recorded language, then their country domain, then the configured default."""
    recorded = str((contact or {}).get("language") or "").strip().lower()
    return recorded or regions.language_for(domain) or default


def clean_value(value: str) -> str:
    """The value without control characters; a run of them (such as CR LF) becomes one space
    so that words on either side stay apart."""
    return re.sub(" {2,}", " ", _UNSAFE.sub(" ", value)).strip()


def render_footer(rules: FooterRules, language: str, kind: Kind, variables: Mapping[str, str]) -> RenderedFooter:
    """The footer of the given kind in the language (or English if it has no entry)."""
    code = rules.language(language)
    texts = rules.languages[code]
    template = texts.template(kind)
    if not template.strip():  # a consent text not written for this language: the English one, whole
        code = FALLBACK_LANGUAGE
        texts = rules.languages[code]
        template = texts.template(kind) or CONSENT_FALLBACK
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
