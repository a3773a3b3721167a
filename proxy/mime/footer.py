"""Insertion of the disclosure footer into every body the recipient sees."""

from __future__ import annotations

from dataclasses import dataclass

from .bodies import visible_bodies
from .headers import set_header
from .html import footer_insertion_point
from .splice import Edit, apply_edits
from .structure import Part, has_protected_part, rebase, remember, shared_scan
from .textbody import TextBody, TextEdit
from .wrap import wrap_footer

# Added to the top-level header so a message is never given a footer twice, even when a
# retry or a second recipient pass runs over output that already has one.  Content markers
# alone cannot tell our footer from one quoted in a reply, which must not suppress a new one.
MARKER_HEADER = "X-GDPR-Mail-Proxy-Footer"
SIGNATURE_SEPARATOR = "-- "


@dataclass(frozen=True, slots=True)
class FooterOutcome:
    raw: bytes
    parts_changed: int
    skipped_reason: str | None = None


def insert_footer(raw: bytes, text_footer: str, html_footer: str) -> FooterOutcome:
    """Append the footer to each visible text/plain and text/html body.

    Raises MimeError if a body cannot be decoded or re-encoded safely.
    """
    root = shared_scan(raw)
    if has_protected_part(raw, root):
        return FooterOutcome(raw, 0, "signed or encrypted")
    if root.header(MARKER_HEADER) is not None:
        return FooterOutcome(raw, 0, "already has a footer")
    bodies = visible_bodies(root)
    if not bodies:
        return FooterOutcome(raw, 0, "no visible text body")
    edits: list[Edit] = []
    changed = 0
    for part in bodies:
        body = TextBody(raw, part)
        if part.content_type == "text/html":
            text_edit = _html_edit(body, html_footer)
        else:
            text_edit = _text_edit(body, text_footer, part)
        if text_edit is None:
            continue
        edits += body.encode([text_edit], html=part.content_type == "text/html")
        changed += 1
    if not changed:
        return FooterOutcome(raw, 0, "already has a footer")
    edits += set_header(raw, root, MARKER_HEADER, "added")
    return FooterOutcome(_applied(raw, root, edits), changed)


def _applied(raw: bytes, root: Part, edits: list[Edit]) -> bytes:
    """The edited message; its tree is derived from root for the steps that read it next."""
    new = apply_edits(raw, edits)
    remember(new, rebase(root, [(e.start, e.end, len(e.data)) for e in edits], new))
    return new


def _html_edit(body: TextBody, html_footer: str) -> TextEdit | None:
    nl = body.newline
    block = nl.join(html_footer.strip().splitlines())
    if body.contains(block, html=True):
        return None
    index, open_quotes = footer_insertion_point(body.view)
    # Closing still-open quotes keeps the footer out of the quoted text of a reply.
    prefix = "</blockquote>" * open_quotes
    return index, index, f"{prefix}{nl}{block}{nl}"


def _text_edit(body: TextBody, text_footer: str, part: Part) -> TextEdit | None:
    view, nl = body.view, body.newline
    flowed = part.params.get("format", "").lower() == "flowed"
    delsp = flowed and part.params.get("delsp", "").lower() == "yes"
    lines = [SIGNATURE_SEPARATOR, *wrap_footer(text_footer.strip(), flowed, delsp)]
    block = nl.join(lines)
    if body.contains(nl.join(lines[1:]), html=False):
        return None
    prefix = ""
    ends_with_newline = view.endswith("\n")
    if view and not ends_with_newline:
        prefix = nl
    last_line = view.rstrip("\r\n").rsplit("\n", 1)[-1] if view else ""
    if flowed and last_line.endswith(" ") and last_line != SIGNATURE_SEPARATOR:
        # A soft break on the last line would flow the text into the signature separator.
        prefix += nl
    suffix = nl if ends_with_newline or not view else ""
    return len(view), len(view), prefix + block + suffix
