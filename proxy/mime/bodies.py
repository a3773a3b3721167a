"""Which parts a recipient sees as the message body."""

from __future__ import annotations

from .structure import SIGNED_OR_ENCRYPTED, Part

TEXT_TYPES = ("text/plain", "text/html")
_CONTAINERS = ("multipart/alternative", "multipart/related", "multipart/mixed")


def visible_bodies(root: Part) -> list[Part]:
    """The text/plain and text/html parts a mail client displays as the body.

    Every alternative of multipart/alternative counts (the client picks one); in
    multipart/related only the root counts (the rest are its images); in multipart/mixed the
    last inline body counts, which is where the message ends when clients show inline parts
    one after another (Apple Mail splits HTML around inline images this way).  Forwarded
    messages, attachments and signed or encrypted parts are never bodies.
    """
    return _visible(root)


def _is_body(part: Part) -> bool:
    if part.is_attachment or part.content_type in SIGNED_OR_ENCRYPTED:
        return False
    return part.content_type in TEXT_TYPES or part.content_type in _CONTAINERS


def _visible(part: Part) -> list[Part]:
    if part.end <= part.start:
        # Nothing between two boundary lines (possibly sharing one line break): not a body,
        # and there is no room to add one without touching the boundaries.
        return []
    if part.content_type in TEXT_TYPES:
        return [] if part.is_attachment else [part]
    if not part.is_multipart or part.content_type in SIGNED_OR_ENCRYPTED or not part.children:
        return []
    if part.content_type == "multipart/alternative":
        found: list[Part] = []
        for child in part.children:
            if _is_body(child):
                found += _visible(child)
        return found
    if part.content_type == "multipart/related":
        return _visible(_related_root(part))
    for child in reversed(part.children):
        if _is_body(child):
            found = _visible(child)
            if found:
                return found
    return []


def _related_root(part: Part) -> Part:
    start = part.params.get("start", "").strip()
    if start:
        for child in part.children:
            cid = child.header("content-id")
            if cid and cid.value.strip() == start:
                return child
    return part.children[0]


def html_bodies(root: Part) -> list[Part]:
    """Every inline text/html part, wherever it sits (tracking images can be in any of them)."""
    return [p for p in root.walk() if p.content_type == "text/html" and not p.is_attachment and p.end > p.start]
