"""Checks shared by the user-editable text templates (footers, access-request answers)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Sequence

FALLBACK_LANGUAGE = "en"
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")


def template_problems(template: str, placeholders: Sequence[str]) -> list[str]:
    """What is wrong with a template, in words for the user (empty if nothing)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"{exc} (write {{{{ or }}}} for a literal brace)"]
    problems = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in placeholders:
            known = ", ".join("{" + p + "}" for p in placeholders)
            problems.append(f"unknown placeholder {{{name}}} (known: {known})")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} must be written without a format or conversion")
    return problems


def language_problems(languages: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Language keys must be ISO 639-1 codes, and English must be there to fall back on."""
    codes = list(languages)
    for code in codes:
        if not _LANGUAGE_CODE.fullmatch(code):
            yield f"languages.{code}", "must be a two-letter lower-case ISO 639-1 code such as 'de'"
    if FALLBACK_LANGUAGE not in codes:
        yield "languages", f"needs an entry for {FALLBACK_LANGUAGE!r}, used when a language has none"
