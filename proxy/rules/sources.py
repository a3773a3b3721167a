"""Where an address came from and why its owner is contacted, in each footer language (rules/sources.yaml)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from proxy.rules.templates import FALLBACK_LANGUAGE

if TYPE_CHECKING:
    from proxy.rules.footers import FooterRules

NOT_RECORDED = "not_recorded"
_KEY = re.compile(r"[a-z][a-z0-9_]*")
Vocabulary = Literal["sources", "reasons"]


@dataclass(frozen=True)
class Term:
    words: dict[str, str]  # language -> wording
    aliases: tuple[str, ...] = ()
    needs_detail: bool = False

    def check(self) -> Iterable[tuple[str, str]]:
        for language, text in self.words.items():
            if not text.strip():
                yield f"words.{language}", "must not be empty"
            if "{" in text or "}" in text:
                yield f"words.{language}", "takes no placeholders: the detail is added in brackets by itself"


@dataclass(frozen=True)
class SourceRules:
    sources: dict[str, Term] = field(default_factory=dict)
    reasons: dict[str, Term] = field(default_factory=dict)
    detail_not_recorded: dict[str, str] = field(default_factory=dict)

    def check(self) -> Iterable[tuple[str, str]]:
        for vocabulary in ("sources", "reasons"):
            terms: dict[str, Term] = getattr(self, vocabulary)
            if NOT_RECORDED not in terms:
                yield vocabulary, f"needs a {NOT_RECORDED!r} entry: what the footer says when nothing was recorded"
            seen: dict[str, str] = {}
            for key, term in terms.items():
                if not _KEY.fullmatch(key):
                    yield f"{vocabulary}.{key}", "a key is lower-case letters, digits and _ (e.g. trade_fair)"
                if FALLBACK_LANGUAGE not in term.words:
                    yield f"{vocabulary}.{key}.words", f"needs an {FALLBACK_LANGUAGE!r} wording"
                for alias in (key, *term.aliases):
                    name = _normal(alias)
                    if name in seen and seen[name] != key:
                        yield f"{vocabulary}.{key}.aliases", f"{alias!r} already stands for {seen[name]!r}"
                    seen[name] = key
        if any(t.needs_detail for t in self.sources.values()) and FALLBACK_LANGUAGE not in self.detail_not_recorded:
            yield "detail_not_recorded", f"needs an {FALLBACK_LANGUAGE!r} wording"

    def key_for(self, vocabulary: Vocabulary, value: str | None) -> str | None:
        """The vocabulary key ``value`` names (the key itself or an alias), or None for free text."""
        if not value or not value.strip():
            return None
        index: dict[str, str] | None = self.__dict__.get(f"_index_{vocabulary}")
        if index is None:
            terms: dict[str, Term] = getattr(self, vocabulary)
            index = {_normal(alias): key for key, term in terms.items() for alias in (key, *term.aliases)}
            object.__setattr__(self, f"_index_{vocabulary}", index)
        return index.get(_normal(value))

    def missing_languages(self, languages: Iterable[str]) -> list[tuple[str, str]]:
        """(key, message) for every footer language a wording lacks: the footer would mix languages."""
        problems = []
        for language in languages:
            for vocabulary in ("sources", "reasons"):
                for key, term in getattr(self, vocabulary).items():
                    if language not in term.words:
                        problems.append((f"{vocabulary}.{key}.words", f"no {language!r} wording for footers in it"))
            if any(t.needs_detail for t in self.sources.values()) and language not in self.detail_not_recorded:
                problems.append(("detail_not_recorded", f"no {language!r} wording for footers in it"))
        return problems


def _normal(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


@dataclass(frozen=True)
class Statement:
    """What a footer or an answer says about the source or the reason."""

    text: str
    recorded: bool  # False: the wording says that nothing was recorded


def describe(
    rules: SourceRules, vocabulary: Vocabulary, language: str, value: str | None, detail: str | None = None
) -> Statement | None:
    """The recorded ``value`` (a key, an alias or free text) in ``language``; None when nothing is recorded.

    Free text is the user's own words and is shown as written; so is the detail, in brackets.
    """
    detail = (detail or "").strip()
    key = rules.key_for(vocabulary, value)
    if key is None:
        if value and value.strip():
            text = value.strip()
        elif detail:
            text = detail  # a detail alone is still what the user recorded
            detail = ""
        else:
            return None
        return Statement(f"{text} ({detail})" if detail else text, True)
    if key == NOT_RECORDED:
        return not_recorded(rules, vocabulary, language)
    term: Term = getattr(rules, vocabulary)[key]
    text = _in_language(term.words, language)
    if not detail and term.needs_detail:
        detail = _in_language(rules.detail_not_recorded, language)
    return Statement(f"{text} ({detail})" if detail else text, True)


def not_recorded(rules: SourceRules, vocabulary: Vocabulary, language: str) -> Statement:
    terms: Mapping[str, Term] = getattr(rules, vocabulary)
    term = terms.get(NOT_RECORDED)
    return Statement(_in_language(term.words, language) if term else "", False)


def _in_language(words: Mapping[str, str], language: str) -> str:
    return words.get(language) or words.get(FALLBACK_LANGUAGE) or ""


def provenance(
    vocabulary: SourceRules,
    footers: FooterRules,
    contact: Mapping[str, Any] | None,
    language: str,
    default_source: str = "",
    default_reason: str = "",
) -> tuple[Statement, Statement]:
    """What the footer (and the access answer) says about the source and the reason, in the
    footer language of ``language``.

    The contact's record first (a vocabulary key or the user's own words, with the detail); for
    the reason, the recorded role next.  Nothing recorded: the configured default when the
    policy says ``default`` and the default is a key, else the plain statement that nothing was
    recorded, never a guess.
    """
    contact = contact or {}
    code = footers.language(language)
    source = describe(vocabulary, "sources", code, contact.get("source"), contact.get("source_detail"))
    reason = describe(vocabulary, "reasons", code, contact.get("reason"))
    if reason is None and str(contact.get("role") or "").strip():
        reason = Statement(str(contact["role"]).strip(), True)
    return (
        source or _unrecorded(vocabulary, "sources", code, footers.missing_source, default_source),
        reason or _unrecorded(vocabulary, "reasons", code, footers.missing_reason, default_reason),
    )


def _unrecorded(rules: SourceRules, vocabulary: Vocabulary, code: str, policy: str, default: str) -> Statement:
    if policy == "default" and rules.key_for(vocabulary, default):
        stated = describe(rules, vocabulary, code, default)
        if stated is not None:  # a key, so in the person's language: free text would be one language in all
            return stated
    return not_recorded(rules, vocabulary, code)
