"""Removal of open-tracking images and unwrapping of click-tracking links in HTML bodies."""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass, field

from .bodies import html_bodies
from .html import Tag, find_tags, parse_tag
from .splice import Edit, apply_edits
from .structure import has_protected_part, rebase, remember, shared_scan
from .textbody import TextBody, TextEdit
from .trackers import CompiledTrackers, TrackerRules, compile_rules, link_target

_IMG = re.compile(r"<img(?=[\s/>])", re.I)
_SOURCE = re.compile(r"<source(?=[\s/>])", re.I)
_LINK = re.compile(r"<(?:a|area|v:roundrect)(?=[\s/>])", re.I)
# Elements whose background= attribute mail readers still render, and Outlook's VML images.
_BACKGROUND_HOLDER = re.compile(r"<(?:td|th|tr|table|tbody|thead|tfoot|body|div|center)(?=[\s/>])", re.I)
_VML_IMAGE = re.compile(r"<v:(?:fill|image)(?=[\s/>])", re.I)
# Elements that wrap content and may hide it (a beacon inside a zero-size or hidden box).
_WRAPPER = re.compile(r"<(div|span|td|table|p|center|font|section|a)(?=[\s/>])", re.I)
_TAG_NAME = re.compile(r"<[\w:-]+")
_IMG_END = re.compile(r"\s*</img\s*>", re.I)
_SOURCE_END = re.compile(r"\s*</source\s*>", re.I)
# url(...) in a style attribute or <style> element; quotes may be written as entities there.
_CSS_URL = re.compile(r"""url\(\s*(&quot;|&#0*39;|&#x0*27;|["']?)(.{0,4096}?)\1\s*\)""", re.I | re.S)
_CSS_IMPORT = re.compile(
    r"""@import\s+(?:url\(\s*)?(&quot;|&#0*39;|&#x0*27;|["']?)([^"'()\s;]{1,4096})\1\s*\)?[^;{}<]*;?""", re.I
)
_HOST = re.compile(r"(?:https?:)?//(?:[^@/?#\s]*@)?(\[[^\]/]*\]|[^:/?#\s\\]+)", re.I)
_CSS_URL_START = re.compile(r"url\(")
_CSS_URL_START_ANY_CASE = re.compile(r"url\(", re.I)
_ATTR_LENGTH = re.compile(r"\s*(\d*\.?\d+)(\s*%)?")
_LENGTH = re.compile(r"^\s*([-+]?\d*\.?\d+)\s*([a-z]*|%)\s*$", re.I)
_DECL_STOP = frozenset(";{}\"'<>")
# CSS absolute units in px; em/rem/ex/ch are taken at a mail reader's default font size.
_UNIT_PX = {
    "": 1.0,
    "px": 1.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
    "q": 96 / 101.6,
    "pt": 4 / 3,
    "pc": 16.0,
    "em": 16.0,
    "rem": 16.0,
    "ex": 8.0,
    "ch": 8.0,
}
# CSS properties whose url() a mail reader fetches while rendering.
_FETCHING_PROPERTIES = frozenset(
    {
        "background",
        "background-image",
        "content",
        "list-style",
        "list-style-image",
        "border-image",
        "border-image-source",
        "cursor",
        "mask",
        "mask-image",
        "-webkit-mask-image",
    }
)
_OFF_SCREEN_PX = 500  # an element pushed this far out of the viewport is never seen
_HIDING_WORDS = ("display", "visibility", "opacity", "overflow", "position", "clip")


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
    root = shared_scan(raw)
    if has_protected_part(raw, root):
        return TrackerOutcome(raw)
    compiled = compile_rules(rules)
    domain = sender_domain.lower().strip(".") if sender_domain else None
    edits: list[Edit] = []
    removed: list[Removal] = []
    unwrapped = 0
    for part in html_bodies(root):
        body = TextBody(raw, part)
        finder = find_in_html(body.view, compiled, domain, unwrap_links)
        if finder.edits:
            edits += body.encode(_without_overlaps(finder.edits), html=True)
            removed += finder.removed
            unwrapped += finder.unwrapped
    if not edits:
        return TrackerOutcome(raw)
    new = apply_edits(raw, edits)
    remember(new, rebase(root, [(e.start, e.end, len(e.data)) for e in edits], new))
    return TrackerOutcome(new, removed, unwrapped)


def find_in_html(text: str, rules: CompiledTrackers, sender_domain: str | None, unwrap_links: bool) -> _Finder:
    """Every tracker edit for one decoded HTML text (the edits are not applied)."""
    finder = _Finder(text, rules, sender_domain)
    finder.run(unwrap_links)
    return finder


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
    """A CSS length in px; None for relative lengths other than zero (%, vw, auto ...)."""
    m = _LENGTH.match(value)
    if m is None:
        return None
    number, unit = float(m.group(1)), m.group(2).lower()
    factor = _UNIT_PX.get(unit)
    if factor is None:
        return 0.0 if number == 0 else None  # 0% or 0vw is nothing whatever it is relative to
    return number * factor


def _attr_px(value: str) -> float | None:
    """A width/height attribute read as browsers do: leading digits count, the rest is
    ignored ("1px", "0/" in <img height=0/>), a percentage is relative."""
    m = _ATTR_LENGTH.match(value)
    if m is None:
        return None
    number = float(m.group(1))
    return number if not m.group(2) or number == 0 else None


def _style(value: str) -> dict[str, str]:
    decls: dict[str, str] = {}
    for decl in value.split(";"):
        name, sep, v = decl.partition(":")
        if sep:
            decls[name.strip().lower()] = v.replace("!important", "").strip().lower()
    return decls


def _srcset(raw: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of each candidate of a raw srcset value (entities still encoded)."""
    candidates: list[tuple[int, int, str]] = []
    pos, n = 0, len(raw)
    while pos < n:
        while pos < n and (raw[pos].isspace() or raw[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and not raw[pos].isspace():
            pos += 1
        url_end = pos
        while url_end > start and raw[url_end - 1] == ",":
            url_end -= 1
        if url_end == pos:  # the URL did not end in a comma: descriptors follow until one
            depth = 0
            while pos < n and (raw[pos] != "," or depth):
                depth += {"(": 1, ")": -1}.get(raw[pos], 0)
                pos += 1
        candidates.append((start, pos, html.unescape(raw[start:url_end])))
    return candidates


def _hides(style: dict[str, str]) -> str | None:
    """Why an element with this inline style is never seen, or None."""
    if style.get("display") == "none":
        return "display:none"
    if style.get("visibility") == "hidden":
        return "visibility:hidden"
    opacity = style.get("opacity", "")
    if opacity and _px(opacity.rstrip("%")) == 0:
        return "opacity:0"
    if style.get("position") in ("absolute", "fixed"):
        for side in ("left", "top", "right", "margin-left", "margin-top"):
            px = _px(style.get(side, "x"))
            if px is not None and px <= -_OFF_SCREEN_PX:
                return "off-screen"
    if style.get("clip", "").replace(" ", "") in ("rect(0,0,0,0)", "rect(0000)", "rect(0px,0px,0px,0px)"):
        return "clip:rect(0)"
    return None


class _Finder:
    def __init__(self, text: str, rules: CompiledTrackers, sender_domain: str | None):
        self.text = text
        self.lowered = text.lower()
        self.rules = rules
        self.sender_domain = sender_domain
        self.edits: list[TextEdit] = []
        self.removed: list[Removal] = []
        self.unwrapped = 0
        self._removed_spans: list[tuple[int, int]] = []

    def run(self, unwrap_links: bool) -> None:
        hidden = self._hidden_boxes() if any(w in self.lowered for w in _HIDING_WORDS) else []
        self.images(hidden)
        if "<source" in self.lowered:
            self.sources()
        if "background" in self.lowered:
            self.background_attributes()
        if "<v:" in self.lowered:
            self.vml_images()
        self.css_beacons()
        if unwrap_links:
            self.links()

    # -- helpers -------------------------------------------------------------------------

    def _own(self, host: str) -> bool:
        domain = self.sender_domain
        return bool(domain) and (host == domain or host.endswith("." + domain))  # type: ignore[operator]

    def _vendor(self, url: str, sized: bool = False) -> str | None:
        """The vendor whose pixel rule matches url; a rule that also matches content images
        does not count for an image that declares a content size."""
        found = self.rules.pixels.match(url)
        if found is None:
            return None
        vendor, rule = found
        if sized and rule.sized_is_content:
            return None
        return vendor

    def _inside_removed(self, pos: int) -> bool:
        return any(s <= pos < e for s, e in self._removed_spans)

    def _remove(self, start: int, end: int, url: str, reason: str, replacement: str = "") -> None:
        self.edits.append((start, end, replacement))
        if not replacement:
            self._removed_spans.append((start, end))
        self.removed.append(Removal(url, reason))

    def _tag(self, start: int) -> Tag | None:
        """The start tag at start, with the raw spans of its attributes."""
        name = _TAG_NAME.match(self.text, start)
        return parse_tag(self.text, start, name.end()) if name else None

    def _remove_attr(self, tag: Tag, name: str) -> None:
        attr = tag.attrs[name]
        start = attr.start
        while start > tag.start and self.text[start - 1].isspace():
            start -= 1
        self.edits.append((start, attr.end, ""))

    def _sizes(self, attrs: dict[str, str], style: dict[str, str]) -> tuple[list[float], bool]:
        """Declared sizes in px, and whether any size is relative (a percentage ...)."""
        sizes: list[float] = []
        relative = False
        for name in ("width", "height"):
            for value, parse in ((attrs.get(name), _attr_px), (style.get(name), _px)):
                if value:
                    px = parse(value)
                    if px is None:
                        relative = relative or value.strip() not in ("auto", "inherit", "initial")
                    else:
                        sizes.append(px)
        for name in ("max-width", "max-height"):
            px = _px(style.get(name, "x"))
            if px is not None and px <= self.rules.max_pixel_size:
                sizes.append(px)
        return sizes, relative

    def images(self, hidden: list[tuple[int, int, str]]) -> None:
        hidden_starts = [s for s, _, _ in hidden]
        limit = self.rules.max_pixel_size
        for start, end, attrs in find_tags(self.text, _IMG, self.lowered):
            url = attrs.get("src", "").strip()
            host = _host(url)
            # The declared size decides both the vendor rules that spare content images and
            # the beacon shapes: read once per image.
            style = _style(attrs["style"]) if "style" in attrs else {}
            sizes, relative = self._sizes(attrs, style)
            sized = relative or any(s > limit for s in sizes)
            reason = self._vendor(url, sized) if host else None
            if reason is None and host and not self._own(host):
                reason = self._shape(style, sizes, relative) or self._in_hidden_box(start, hidden, hidden_starts, sized)
            if reason is None:
                if "srcset" in attrs:
                    self._srcset_trackers(start, end, attrs, sized, remove_element=not url)
                continue
            closing = _IMG_END.match(self.text, end)
            self._remove(start, closing.end() if closing else end, url, reason)

    def _shape(self, style: dict[str, str], sizes: list[float], relative: bool) -> str | None:
        tiny = bool(sizes) and not relative and max(sizes) <= self.rules.max_pixel_size
        # Responsive mail hides full-size images (display:none, shown again by a media query
        # on phones); only hidden images with no real size are beacons.
        if not relative and (tiny or not sizes):
            hides = _hides(style)
            if hides:
                return hides
        # Every declared dimension must be tiny: a 600x1 divider line is layout, not a beacon.
        return f"{round(max(sizes))}px image" if tiny else None

    def _in_hidden_box(
        self, pos: int, hidden: list[tuple[int, int, str]], starts: list[int], sized: bool
    ) -> str | None:
        """An image with no content size inside a box that is never shown."""
        for start, end, why in hidden[: bisect.bisect_right(starts, pos)]:
            if start < pos < end:
                return None if sized else f"inside {why} box"
        return None

    def _srcset_trackers(self, start: int, end: int, attrs: dict[str, str], sized: bool, remove_element: bool) -> None:
        """Drop the tracking candidates of a srcset; the element goes too when it has nothing
        else to show."""
        tag = self._tag(start)
        if tag is None or "srcset" not in tag.attrs or tag.attrs["srcset"].value_start < 0:
            return
        attr = tag.attrs["srcset"]
        raw = self.text[attr.value_start : attr.value_end]
        candidates = _srcset(raw)
        # A candidate is never the size-declared content itself: the element keeps its src.
        hits = [(c, v) for c in candidates if _host(c[2]) and (v := self._vendor(c[2]))]
        if not hits:
            return
        for (_, _, url), vendor in hits:
            self.removed.append(Removal(url, vendor))
        if len(hits) == len(candidates):
            if remove_element:
                closing = (_IMG_END if self.text[start + 1 : start + 4].lower() == "img" else _SOURCE_END).match(
                    self.text, end
                )
                self.edits.append((start, closing.end() if closing else end, ""))
                self._removed_spans.append((start, end))
            else:
                self._remove_attr(tag, "srcset")
            return
        gone = {(s, e) for (s, e, _), _ in hits}
        kept = [raw[s:e].strip().rstrip(",").strip() for s, e, _ in candidates if (s, e) not in gone]
        self.edits.append((attr.value_start, attr.value_end, ", ".join(kept)))

    def sources(self) -> None:
        for start, end, attrs in find_tags(self.text, _SOURCE, self.lowered):
            if self._inside_removed(start):
                continue
            url = attrs.get("src", "").strip()
            if url and _host(url) and (vendor := self._vendor(url)):
                closing = _SOURCE_END.match(self.text, end)
                self._remove(start, closing.end() if closing else end, url, vendor)
            elif "srcset" in attrs:
                self._srcset_trackers(start, end, attrs, False, remove_element=not url)

    def _hidden_boxes(self) -> list[tuple[int, int, str]]:
        """(start, end, why) of elements whose inline style hides everything inside them."""
        boxes: list[tuple[int, int, str]] = []
        for start, end, attrs in find_tags(self.text, _WRAPPER, self.lowered):
            if "style" not in attrs:
                continue
            style = _style(attrs["style"])
            why = _hides(style)
            if why is None and style.get("overflow") == "hidden":
                for name in ("width", "height", "max-width", "max-height"):
                    if _px(style.get(name, "x")) == 0:
                        why = f"overflow:hidden {name}:0"
                        break
            if why is None:
                continue
            close = self._element_end(start, end)
            if close is not None:
                boxes.append((start, close, why))
        return boxes

    def _element_end(self, start: int, end: int) -> int | None:
        """Where the element opened at text[start:end] closes, counting nested ones of the
        same name; None if it never does."""
        name = _WRAPPER.match(self.text, start).group(1).lower()  # type: ignore[union-attr]  # matched before
        pattern = re.compile(rf"<(/?){name}(?=[\s/>])", re.I)
        depth = 1
        for m in pattern.finditer(self.text, end):
            depth += -1 if m.group(1) else 1
            if depth == 0:
                return m.start()
        return None

    # -- attributes and CSS ----------------------------------------------------------------

    def background_attributes(self) -> None:
        self._remove_tracker_attributes(_BACKGROUND_HOLDER, "background")

    def vml_images(self) -> None:
        self._remove_tracker_attributes(_VML_IMAGE, "src")

    def _remove_tracker_attributes(self, holder: re.Pattern[str], name: str) -> None:
        """Drop the URL attribute `name` of every `holder` tag whose URL is a tracker's."""
        for start, _, attrs in find_tags(self.text, holder, self.lowered):
            url = attrs.get(name, "").strip()
            if not url or _host(url) is None or self._inside_removed(start):
                continue
            vendor = self._vendor(url)
            if vendor is None:
                continue
            tag = self._tag(start)
            if tag is not None and name in tag.attrs:
                self._remove_attr(tag, name)
                self.removed.append(Removal(url, vendor))

    def css_beacons(self) -> None:
        text = self.text
        lowered = self.lowered
        if "@import" in lowered:
            for imported in _CSS_IMPORT.finditer(text):
                url = html.unescape(imported.group(2)).strip()
                if _host(url) and not self._inside_removed(imported.start()) and (vendor := self._vendor(url)):
                    self._remove(imported.start(), imported.end(), url, vendor)
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
            if _host(url) is None or self._inside_removed(m.start()):
                continue
            vendor = self._vendor(url)
            if vendor is None:
                continue
            start = m.start()
            while start > 0 and text[start - 1] not in _DECL_STOP:
                start -= 1
            prop, colon, before = text[start : m.start()].partition(":")
            prop = prop.strip().lower()
            if not colon or prop not in _FETCHING_PROPERTIES:
                continue
            end = m.end()
            while end < len(text) and text[end] not in _DECL_STOP:
                end += 1
            after = text[m.end() : end]
            if before.strip() or after.replace("!important", "").strip():
                # Other values share the declaration (a colour, a position): keep them.
                self.edits.append((m.start(), m.end(), "none"))
                self.removed.append(Removal(url, vendor))
                continue
            if end < len(text) and text[end] == ";":
                end += 1
            self._remove(start, end, url, vendor)

    # -- links -----------------------------------------------------------------------------

    def links(self) -> None:
        for start, _, attrs in find_tags(self.text, _LINK, self.lowered):
            url = attrs.get("href", "").strip()
            target = self._unwrap(url) if url else None
            if target is None:
                continue
            tag = self._tag(start)
            href = tag.attrs.get("href") if tag else None
            if href is None or href.value_start < 0:
                continue
            escaped = html.escape(target, quote=True)
            if not href.quote:
                escaped = f'"{escaped}"'
            self.edits.append((href.value_start, href.value_end, escaped))
            self.unwrapped += 1

    def _target(self, url: str) -> str | None:
        """The target of a click-tracking URL, by the first rule that recovers one."""
        for _, rule, compiled in self.rules.links.matches(url):
            if rule.unwraps and (target := link_target(rule, compiled, url)) is not None:
                return target
        return None

    def _unwrap(self, url: str) -> str | None:
        """The final target, following a tracked link that wraps another (at most three deep)."""
        target = self._target(url)
        if target is None:
            return None
        for _ in range(2):
            deeper = self._target(target)
            if deeper is None:
                break
            target = deeper
        return target
