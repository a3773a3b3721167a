"""Tracker rules (rules/trackers.yaml) and their compiled, cached form."""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.schema import check_unique


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


@dataclass(frozen=True)
class ShapeRules:
    # Images whose declared width and height are all at most this many px are beacons.
    max_pixel_size: Annotated[int, _not_negative] = 2


# How a click-tracking redirect carries its target: as written, base64 (standard or URL-safe
# alphabet, padding optional), or a base64/base32 JSON object whose target_key holds it.
TargetEncoding = Literal["plain", "base64", "base64-json", "base32-json"]
_MAX_TARGET = 4096


def _url_pattern(value: str) -> str:
    """A valid regular expression, compiled as the matcher uses it (case-insensitive) into the
    shared cache: checking the rule file compiles each of its patterns once, not twice."""
    try:
        _compiled_pattern(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


@dataclass(frozen=True)
class UrlRule:
    pattern: Annotated[str, _url_pattern]  # re.search, case-insensitive, against the full URL
    example: str
    # Pixels only: the pattern also matches ordinary images (a mixed-use host, a common path),
    # so an image that declares a content size (larger than shape.max_pixel_size) is kept.
    sized_is_content: bool = False
    # Links only: where the redirect's target sits.  target_param names a query parameter;
    # without it the pattern's named group (?P<target>...) holds it (percent-encoded).
    target_param: str | None = None
    target_encoding: TargetEncoding = "plain"
    target_key: str | None = None  # the JSON key holding the target, for the *-json encodings

    def check(self) -> Iterable[tuple[str, str]]:
        compiled = _compiled_pattern(self.pattern)
        if not compiled.search(self.example):
            yield "example", f"does not match the pattern {self.pattern!r}"
            return
        if self.target_encoding.endswith("-json") and not self.target_key:
            yield "target_key", f"required with target_encoding {self.target_encoding!r}"
        elif self.unwraps and link_target(self, compiled, self.example) is None:
            yield "example", "carries no recoverable http(s) target"

    @property
    def unwraps(self) -> bool:
        return self.target_param is not None or "(?P<target>" in self.pattern


_patterns: dict[str, re.Pattern[str]] = {}
_PATTERNS_MAX = 16384


def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A rule's pattern compiled (case-insensitive) once per process: the rule check and the
    matcher share it, and ``re``'s own cache (512 entries) is far smaller than the rule file."""
    found = _patterns.get(pattern)
    if found is None:
        found = re.compile(pattern, re.IGNORECASE)
        if len(_patterns) >= _PATTERNS_MAX:
            _patterns.clear()
        _patterns[pattern] = found
    return found


def _b64decode(text: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b32decode(text: str) -> bytes:
    text = text.strip().upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def is_web_target(url: str) -> bool:
    """An absolute http(s) URL with a host, fit to be written into an href."""
    if len(url) > _MAX_TARGET or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def link_target(rule: UrlRule, compiled: re.Pattern[str], url: str) -> str | None:
    """The target a click-tracking URL redirects to, or None when it cannot be recovered."""
    if rule.target_param is not None:
        try:
            values = parse_qs(urlsplit(url).query).get(rule.target_param, [])
        except ValueError:
            return None
        raw = values[0] if values else ""
    else:
        m = compiled.search(url)
        if m is None or "target" not in m.groupdict() or m.group("target") is None:
            return None
        raw = unquote(m.group("target"))
    try:
        if rule.target_encoding == "plain":
            target = raw
        elif rule.target_encoding == "base64":
            target = _b64decode(raw).decode("utf-8")
        else:
            data = _b64decode(raw) if rule.target_encoding == "base64-json" else _b32decode(raw)
            obj = json.loads(data.decode("utf-8"))
            value = obj.get(rule.target_key) if isinstance(obj, dict) else None
            if not isinstance(value, str):
                return None
            target = value
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    target = target.strip()
    return target if is_web_target(target) else None


@dataclass(frozen=True)
class TrackerVendor:
    name: str
    pixels: tuple[UrlRule, ...] = ()
    links: tuple[UrlRule, ...] = ()


@dataclass(frozen=True)
class TrackerRules:
    shape: ShapeRules = ShapeRules()
    vendors: tuple[TrackerVendor, ...] = ()

    def check(self) -> Iterable[tuple[str, str]]:
        return check_unique(self.vendors, "name", "vendors")


# The regex parser of the standard library, used only to find the literal text a pattern
# requires; any failure there just means the pattern is always tried.
_sre_parser: Any = importlib.import_module("re._parser")
_MIN_LITERAL = 4
_EVERY_URL = "https://"
# Newsletters repeat the same spacer, icon and logo addresses many times, and a user's
# signature images come back in every message: each address is matched once per rule set.
_MEMO_SIZE = 4096


def required_literal(pattern: str) -> str | None:
    """The longest run of ASCII literal characters every match of pattern must contain,
    lower-cased, or None if the pattern has none worth checking for.  Runs that every web
    address contains ("http", "://") screen nothing out and are ignored."""
    try:
        parsed = _sre_parser.parse(pattern, re.IGNORECASE)
        literal_op = _sre_parser.LITERAL
        runs: list[str] = []
        run = ""
        for op, arg in parsed.data:
            if op == literal_op and arg < 128:
                run += chr(arg).lower()
            else:
                runs.append(run)
                run = ""
        runs.append(run)
    except Exception:  # the parser is not a public interface; never let it break matching
        return None
    useful = [r for r in runs if len(r) >= _MIN_LITERAL and r not in _EVERY_URL]
    return max(useful, key=len) if useful else None


class UrlMatcher:
    """Finds the vendor rule matching a URL.

    Trying hundreds of patterns on every image URL would cost far more than the relay's
    budget, so each pattern is screened by a literal it requires (e.g. "mailtrack.io/trace/"):
    the URL's four-character substrings are intersected with the literals' first four
    characters, which rules out almost every pattern for an ordinary URL at C speed.
    """

    def __init__(self, rules: list[tuple[str, UrlRule]]):
        self.rules = [(vendor, rule, _compiled_pattern(rule.pattern)) for vendor, rule in rules]
        self.always: list[int] = []
        self.by_prefix: dict[str, list[tuple[str, int]]] = {}
        for i, (_, rule, _) in enumerate(self.rules):
            literal = required_literal(rule.pattern)
            if literal is None:
                self.always.append(i)
            else:
                self.by_prefix.setdefault(literal[:_MIN_LITERAL], []).append((literal, i))
        self.prefixes = frozenset(self.by_prefix)
        self.always_screen = _any_of([self.rules[i][2] for i in self.always])
        self._memo: dict[str, tuple[int, ...]] = {}

    def match(self, url: str) -> tuple[str, UrlRule] | None:
        found = self.match_compiled(url)
        return (found[0], found[1]) if found else None

    def match_compiled(self, url: str) -> tuple[str, UrlRule, re.Pattern[str]] | None:
        return next(self.matches(url), None)

    def matches(self, url: str) -> Iterator[tuple[str, UrlRule, re.Pattern[str]]]:
        """Every rule matching url, in file order."""
        found = self._memo.get(url)
        if found is None:
            found = self._matching(url)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[url] = found
        for i in found:
            yield self.rules[i]

    def _matching(self, url: str) -> tuple[int, ...]:
        if not self.rules:
            return ()
        if url.isascii():
            lowered = url.lower()
            grams = {lowered[i : i + _MIN_LITERAL] for i in range(len(lowered) - _MIN_LITERAL + 1)}
            candidates = list(self.always) if self.always_screen.search(url) else []
            for prefix in self.prefixes.intersection(grams):
                candidates += [i for literal, i in self.by_prefix[prefix] if literal in lowered]
            candidates.sort()
        else:  # case folding of non-ASCII text may not map to ASCII literals one to one
            candidates = list(range(len(self.rules)))
        return tuple(i for i in candidates if self.rules[i][2].search(url))


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that matches wherever any of ``patterns`` does: a single search screens out
    the patterns without a literal, instead of one search each."""
    if not patterns:
        return re.compile(r"(?!)")
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.IGNORECASE)
    except re.error:  # e.g. numbered back-references: the screen must never reject a match
        return re.compile("")


@dataclass(frozen=True)
class CompiledTrackers:
    pixels: UrlMatcher
    links: UrlMatcher
    max_pixel_size: int


_compiled: dict[int, tuple[TrackerRules, CompiledTrackers]] = {}
_compiling = threading.Lock()


def compile_rules(rules: TrackerRules) -> CompiledTrackers:
    """Compiled once per rule set.  Looked up by identity: hashing a large frozen rule set
    on every message would cost more than the matching itself.  Thread-safe: the service
    compiles a new rule set in a worker thread, and a message arriving meanwhile waits for
    that instead of compiling it a second time."""
    entry = _compiled.get(id(rules))
    if entry is not None and entry[0] is rules:
        return entry[1]
    with _compiling:
        entry = _compiled.get(id(rules))
        if entry is not None and entry[0] is rules:
            return entry[1]
        return _compile(rules)


def _compile(rules: TrackerRules) -> CompiledTrackers:
    compiled = CompiledTrackers(
        UrlMatcher([(v.name, r) for v in rules.vendors for r in v.pixels]),
        UrlMatcher([(v.name, r) for v in rules.vendors for r in v.links]),
        rules.shape.max_pixel_size,
    )
    if len(_compiled) >= 8:  # rule sets are replaced on reload; keep only recent ones
        _compiled.pop(next(iter(_compiled)))
    _compiled[id(rules)] = (rules, compiled)  # holding rules keeps its id from being reused
    return compiled
