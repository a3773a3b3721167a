"""Schema and compiled form of rules/optout.yaml (the file documents its own format)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from proxy.classify.phrases import PhraseSet, phrase_parts
from proxy.classify.quotes import QuoteRules
from proxy.classify.textnorm import fold, normalize
from proxy.schema import Positive, Regex, load_file

# ISO 639-1, so that a typo such as "gr" for Greek ("el") is caught when the file loads.
_ISO_639_1 = """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
    hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la
    lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj
    om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv
    sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
ISO_639_1 = frozenset(_ISO_639_1.split())

_PHRASE_LISTS = ("optout", "erasure", "not_optout", "negations", "cues", "signoffs", "common_words")


@dataclass(frozen=True)
class Language:
    optout: tuple[str, ...] = ()
    erasure: tuple[str, ...] = ()
    not_optout: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    signoffs: tuple[str, ...] = ()
    common_words: tuple[str, ...] = ()
    out_of_office: tuple[str, ...] = ()
    reply_prefixes: tuple[str, ...] = ()
    attribution: tuple[Regex, ...] = ()
    attribution_line: tuple[Regex, ...] = ()
    header_from: tuple[str, ...] = ()
    header_sent: tuple[str, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        for name in (*_PHRASE_LISTS, "out_of_office", "reply_prefixes", "header_from", "header_sent"):
            seen: dict[str, int] = {}
            for i, phrase in enumerate(getattr(self, name)):
                parts = phrase_parts(phrase)
                if not parts:
                    yield f"{name}[{i}]", f"{phrase!r} has no letters or digits to match"
                    continue
                key = " ... ".join(parts)
                if key in seen:
                    earlier = f"{name}[{seen[key]}]"
                    yield f"{name}[{i}]", f"{phrase!r} repeats {earlier} (case and accents are ignored)"
                else:
                    seen[key] = i
        blocked = {" ... ".join(phrase_parts(p)) for p in self.not_optout}
        for name in ("optout", "erasure"):
            for i, phrase in enumerate(getattr(self, name)):
                if " ... ".join(phrase_parts(phrase)) in blocked:
                    yield f"{name}[{i}]", f"{phrase!r} is also listed in not_optout and would never match"


@dataclass(frozen=True)
class Limits:
    max_other_words: Positive = 8
    erasure_max_other_words: Positive = 60
    negation_window: Positive = 2
    max_text_chars: Positive = 20_000


@dataclass(frozen=True)
class OptoutFile:
    languages: dict[str, Language]
    limits: Limits = field(default_factory=Limits)
    separators: tuple[Regex, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        for code in self.languages:
            if code not in ISO_639_1:
                yield f"languages.{code}", f"{code!r} is not an ISO 639-1 language code"
        if not any(lang.optout for lang in self.languages.values()):
            yield "languages", "no language lists any opt-out phrase"


def _folded_alternation(phrases: Iterable[str]) -> str:
    return "|".join(r"\s+".join(re.escape(w) for w in fold(p).split()) for p in phrases if p.strip())


@dataclass(frozen=True)
class OptoutRules:
    """Everything classify() needs, compiled once per rules file."""

    limits: Limits
    optout: PhraseSet
    erasure: PhraseSet
    not_optout: PhraseSet
    negations: PhraseSet
    cues: PhraseSet
    signoffs: re.Pattern[str] | None
    common_words: dict[str, tuple[str, ...]]
    out_of_office: tuple[tuple[str, re.Pattern[str]], ...]
    reply_prefix: re.Pattern[str] | None
    quoting: QuoteRules

    @classmethod
    def compile(cls, spec: OptoutFile) -> OptoutRules:
        langs = spec.languages

        def pairs(name: str) -> list[tuple[str, str]]:
            return [(p, code) for code, lang in langs.items() for p in getattr(lang, name)]

        signoff_res = [
            r"(?: \S+){0,3}".join(re.escape(part) for part in phrase_parts(p))
            for _, lang in langs.items()
            for p in lang.signoffs
        ]
        words: dict[str, list[str]] = {}
        for code, lang in langs.items():
            for w in lang.common_words:
                words.setdefault(normalize(w), []).append(code)
        ooo = []
        for code, lang in langs.items():
            alt = _folded_alternation(lang.out_of_office)
            if alt:
                # At the start of the subject and followed by ":" or nothing, so that a reply
                # to a mail about "absence management" is not taken for an absence notice.
                ooo.append((code, re.compile(rf"^\W{{0,3}}(?:{alt})\s*(?:[\]):\-–|]|$)")))
        alt = _folded_alternation(p for lang in langs.values() for p in lang.reply_prefixes)
        prefix = re.compile(rf"^\s*(?:(?:{alt})\s*(?:\[\d+\])?\s*[:：]\s*)+") if alt else None
        all_langs = list(langs.values())
        return cls(
            limits=spec.limits,
            optout=PhraseSet(pairs("optout")),
            erasure=PhraseSet(pairs("erasure")),
            not_optout=PhraseSet(pairs("not_optout")),
            negations=PhraseSet(pairs("negations")),
            cues=PhraseSet(pairs("cues")),
            signoffs=re.compile("|".join(signoff_res)) if signoff_res else None,
            common_words={w: tuple(c) for w, c in words.items()},
            out_of_office=tuple(ooo),
            reply_prefix=prefix,
            quoting=QuoteRules.build(
                attribution=[p for lang in all_langs for p in lang.attribution],
                attribution_line=[p for lang in all_langs for p in lang.attribution_line],
                separators=spec.separators,
                header_from=[k for lang in all_langs for k in lang.header_from],
                header_sent=[k for lang in all_langs for k in lang.header_sent],
            ),
        )


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> OptoutRules:
    return OptoutRules.compile(load_file(Path(path), OptoutFile))


def load_optout_rules(path: str | Path) -> OptoutRules:
    """Load and compile a rules file; cached until the file changes.  Raises SchemaError."""
    p = Path(path).resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = -1  # let load_file report the problem with the file's name
    return _load(str(p), mtime)
