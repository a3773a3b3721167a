"""Removal of open-tracking images and unwrapping of click-tracking links in HTML bodies."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .bodies import html_bodies
from .html import find_tags, parse_tag
from .splice import Edit, apply_edits
from .structure import has_protected_part, scan
from .textbody import TextBody, TextEdit
from .trackers import CompiledTrackers, TrackerRules, compile_rules

_IMG = re.compile(r"<img(?=[\s/>])", re.I)
_LINK = re.compile(r"<a(?=[\s/>])", re.I)
_IMG_END = re.compile(r"\s*</img\s*>", re.I)
# url(...) in a style attribute or <style> element; quotes may be written as entities there.
_CSS_URL = re.compile(r"""url\(\s*(&quot;|&#0*39;|&#x0*27;|["']?)(.{0,4096}?)\1\s*\)""", re.I | re.S)
_HOST = re.compile(r"(?:https?:)?//(?:[^@/?#\s]*@)?(\[[^\]/]*\]|[^:/?#\s\\]+)", re.I)
_CSS_URL_START = re.compile(r"url\(")
_CSS_URL_START_ANY_CASE = re.compile(r"url\(", re.I)
_ATTR_LENGTH = re.compile(r"\s*(\d+(?:\.\d*)?)(\s*%)?")
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(px)?\s*$", re.I)
_DECL_STOP = frozenset(";{}\"'<>")


@dataclass(frozen=True, slots=True)
class Removal:
    url: str
    rule: str  # the vendor name, or the shape that betrayed a beacon ("1px image", "display:none")


@dataclass(frozen=True, slots=True)
class TrackerOutcome:
    raw: bytes
    removed: list[Removal] = field(default_factory=list)
    links_unwrapped: int = 0


def strip_trackers(
    raw: bytes, rules: TrackerRules, sender_domain: str | None, unwrap_links: bool = False
) -> TrackerOutcome:
    """Remove tracking images (and optionally unwrap tracked links) from every HTML body.

    Raises MimeError if an HTML body that needs changing cannot be decoded or re-encoded.
    """
    root = scan(raw)
    if has_protected_part(raw, root):
        return TrackerOutcome(raw)
    compiled = compile_rules(rules)
    domain = sender_domain.lower().strip(".") if sender_domain else None
    edits: list[Edit] = []
    removed: list[Removal] = []
    unwrapped = 0
    for part in html_bodies(root):
        body = TextBody(raw, part)
        finder = _Finder(body.view, compiled, domain)
        finder.images()
        finder.css_beacons()
        if unwrap_links:
            finder.links()
        if finder.edits:
            edits += body.encode(_without_overlaps(finder.edits), html=True)
            removed += finder.removed
            unwrapped += finder.unwrapped
    if not edits:
        return TrackerOutcome(raw)
    return TrackerOutcome(apply_edits(raw, edits), removed, unwrapped)


def _without_overlaps(edits: list[TextEdit]) -> list[TextEdit]:
    kept: list[TextEdit] = []
    for edit in sorted(edits):
        if not kept or edit[0] >= kept[-1][1]:
            kept.append(edit)
    return kept


def _host(url: str) -> str | None:
    """The lower-case host of an http(s) or protocol-relative URL; None for cid:, data:,
    relative and other URLs, which cannot reach a tracker."""
    m = _HOST.match(url)
    return m.group(1).lower().rstrip(".") if m else None


def _px(value: str) -> float | None:
    m = _LENGTH.match(value)
    return float(m.group(1)) if m else None


def _attr_px(value: str) -> float | None:
    """A width/height attribute read as browsers do: leading digits count, the rest is
    ignored ("1px", "0/" in <img height=0/>), a percentage is relative."""
    m = _ATTR_LENGTH.match(value)
    return float(m.group(1)) if m and not m.group(2) else None


def _style(value: str) -> dict[str, str]:
    decls: dict[str, str] = {}
    for decl in value.split(";"):
        name, sep, v = decl.partition(":")
        if sep:
            decls[name.strip().lower()] = v.replace("!important", "").strip().lower()
    return decls


class _Finder:
    def __init__(self, text: str, rules: CompiledTrackers, sender_domain: str | None):
        self.text = text
        self.rules = rules
        self.sender_domain = sender_domain
        self.edits: list[TextEdit] = []
        self.removed: list[Removal] = []
        self.unwrapped = 0
        self._removed_spans: list[tuple[int, int]] = []

    def images(self) -> None:
        for start, end, attrs in find_tags(self.text, _IMG):
            url = attrs.get("src", "").strip()
            host = _host(url)
            if host is None:
                continue
            reason = self._vendor(url) or self._shape(host, attrs)
            if reason is None:
                continue
            closing = _IMG_END.match(self.text, end)
            if closing:
                end = closing.end()
            self.edits.append((start, end, ""))
            self._removed_spans.append((start, end))
            self.removed.append(Removal(url, reason))

    def _vendor(self, url: str) -> str | None:
        found = self.rules.pixels.match(url)
        return found[0] if found else None

    def _shape(self, host: str, attrs: dict[str, str]) -> str | None:
        domain = self.sender_domain
        if domain and (host == domain or host.endswith("." + domain)):
            return None  # the sender's own spacer images
        style = _style(attrs["style"]) if "style" in attrs else {}
        sizes: list[float] = []
        relative = False
        for name in ("width", "height"):
            for value, parse in ((attrs.get(name), _attr_px), (style.get(name), _px)):
                if value:
                    px = parse(value)
                    if px is None:
                        relative = True  # a percentage or other relative size: not a pixel
                    else:
                        sizes.append(px)
        for name in ("max-width", "max-height"):
            px = _px(style.get(name, "x"))
            if px is not None and px <= self.rules.max_pixel_size:
                sizes.append(px)
        tiny = bool(sizes) and not relative and max(sizes) <= self.rules.max_pixel_size
        # Responsive mail hides full-size images (display:none, shown again by a media query
        # on phones); only hidden images with no real size are beacons.
        if not relative and (tiny or not sizes):
            opacity = style.get("opacity", "")
            if style.get("display") == "none":
                return "display:none"
            if style.get("visibility") == "hidden":
                return "visibility:hidden"
            if opacity and _px(opacity.rstrip("%")) == 0:
                return "opacity:0"
        # Every declared dimension must be tiny: a 600x1 divider line is layout, not a beacon.
        return f"{int(max(sizes))}px image" if tiny else None

    def css_beacons(self) -> None:
        text = self.text
        lowered = text.lower()
        # A case-insensitive search has no literal to skip ahead by and is 20 times slower, so
        # search a lower-cased copy unless lowering changed offsets (some non-Latin-1 text).
        starts = (
            _CSS_URL_START.finditer(lowered) if len(lowered) == len(text) else _CSS_URL_START_ANY_CASE.finditer(text)
        )
        for found in starts:
            m = _CSS_URL.match(text, found.start())
            if m is None:
                continue
            url = html.unescape(m.group(2)).strip()
            if _host(url) is None or any(s <= m.start() < e for s, e in self._removed_spans):
                continue
            vendor = self._vendor(url)
            if vendor is None:
                continue
            start = m.start()
            while start > 0 and text[start - 1] not in _DECL_STOP:
                start -= 1
            prop = text[start : m.start()].partition(":")[0].strip().lower()
            if prop not in ("background", "background-image"):
                continue
            end = m.end()
            while end < len(text) and text[end] not in _DECL_STOP:
                end += 1
            if end < len(text) and text[end] == ";":
                end += 1
            self.edits.append((start, end, ""))
            self.removed.append(Removal(url, vendor))

    def links(self) -> None:
        for start, _, attrs in find_tags(self.text, _LINK):
            url = attrs.get("href", "").strip()
            found = self.rules.links.match(url) if url else None
            if found is None or not found[1].target_param:
                continue
            try:
                values = parse_qs(urlsplit(url).query).get(found[1].target_param, [])
            except ValueError:
                continue
            target = values[0].strip() if values else ""
            if _host(target) is None or target.startswith("//"):
                continue
            tag = parse_tag(self.text, start, start + 2)
            href = tag.attrs.get("href") if tag else None
            if href is None or href.value_start < 0:
                continue
            escaped = html.escape(target, quote=True)
            if not href.quote:
                escaped = f'"{escaped}"'
            self.edits.append((href.value_start, href.value_end, escaped))
            self.unwrapped += 1
