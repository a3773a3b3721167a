"""Decide what the words a person wrote ask for: erasure, opt-out, human review or nothing.

A short reply that is mostly an opt-out phrase is an opt-out.  A phrase inside a longer
message, after a negation, next to words of interest or scheduling, or in a question is
sent to human review instead of silently suppressing a prospect who may be a hot lead.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from proxy.classify.phrases import Hit, Tokens
from proxy.classify.textnorm import fold, has_arabic, normalize
from proxy.rules.optout import OptoutRules

Outcome = Literal["opt-out", "erasure", "uncertain", "none"]
_QUESTION_MARKS = ("?", "¿", "؟")


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    phrase: str = ""
    where: str = ""
    language: str | None = None
    reason: str = ""  # why a phrase went to review rather than counting


@dataclass(frozen=True)
class _Body:
    tokens: Tokens
    line_starts: tuple[int, ...]  # offset in tokens.text where each counted line starts
    line_numbers: tuple[int, ...]  # its 1-based number in the reply text
    question: bool

    def where(self, hit: Hit) -> str:
        i = bisect.bisect_right(self.line_starts, hit.start) - 1
        return f"body line {self.line_numbers[max(i, 0)]}" if self.line_numbers else "body"


def _body(text: str, rules: OptoutRules) -> _Body:
    parts: list[str] = []
    starts: list[int] = []
    numbers: list[int] = []
    question = False
    offset = 0
    for number, line in enumerate(text.split("\n"), start=1):
        norm = normalize(line)
        if not norm:
            continue
        # The sign-off ends the message: name, title and phone number below it say nothing.
        if parts and rules.signoffs is not None and rules.signoffs.fullmatch(norm):
            break
        question = question or any(q in line for q in _QUESTION_MARKS)
        starts.append(offset)
        numbers.append(number)
        parts.append(norm)
        offset += len(norm) + 1
    return _Body(Tokens.of(" ".join(parts)), tuple(starts), tuple(numbers), question)


def guess_language(tokens: Tokens, rules: OptoutRules) -> str | None:
    votes: Counter[str] = Counter()
    for word in tokens.words:
        for code in rules.common_words.get(word, ()):
            votes[code] += 1
    if votes:
        code, count = votes.most_common(1)[0]
        if count >= 2:
            return code
    return "ar" if has_arabic(tokens.text) else None


def _overlaps(hit: Hit, others: Sequence[Hit]) -> bool:
    return any(hit.start < o.end and o.start < hit.end for o in others)


def _language(hit: Hit, guess: str | None) -> str:
    return guess if guess in hit.languages else hit.languages[0]


def _doubt(
    hits: Sequence[Hit],
    phrases: Sequence[Hit],
    body: _Body,
    rules: OptoutRules,
    guess: str | None,
    max_other: int,
    questions: bool,
) -> str:
    """Why these phrase hits should go to a person rather than count ('' if they count).

    ``phrases`` are all opt-out and erasure hits: words inside them are never cues or
    negations ("not interested" is not interest, the "nie" of "nie, dziękuję" negates
    nothing).
    """
    langs = {lang for h in hits for lang in h.languages} | {"en"} | ({guess} if guess else set())
    negations = [n for n in rules.negations.find(body.tokens) if not _overlaps(n, phrases)]
    window = rules.limits.negation_window
    for hit in hits:
        for n in negations:
            if langs & set(n.languages) and 0 <= hit.first_token - n.last_token - 1 <= window:
                return f"negation {n.phrase!r} before {hit.phrase!r}"
    for cue in rules.cues.find(body.tokens):
        if langs & set(cue.languages) and not _overlaps(cue, phrases):
            return f"cue {cue.phrase!r}"
    if questions and body.question:
        return "question mark"
    used = sum(h.last_token - h.first_token + 1 for h in phrases)
    other = len(body.tokens.words) - used
    if other > max_other:
        return f"{other} other words"
    return ""


def _subject_phrase(subject: str, rules: OptoutRules) -> str:
    folded = fold(subject)
    if rules.reply_prefix is not None:
        folded = rules.reply_prefix.sub("", folded)
    return normalize(folded)


def judge(subject: str, new_text: str, rules: OptoutRules) -> Judgement:
    body = _body(new_text[: rules.limits.max_text_chars], rules)
    guess = guess_language(body.tokens, rules)
    blocked = rules.not_optout.find(body.tokens)
    subject_norm = _subject_phrase(subject, rules)
    limits = rules.limits

    found = {
        "erasure": [h for h in rules.erasure.find(body.tokens) if not _overlaps(h, blocked)],
        "opt-out": [h for h in rules.optout.find(body.tokens) if not _overlaps(h, blocked)],
    }
    every = found["erasure"] + found["opt-out"]
    kinds: tuple[tuple[Outcome, int, bool], ...] = (
        ("erasure", limits.erasure_max_other_words, False),  # people ask where we got their data
        ("opt-out", limits.max_other_words, True),
    )
    for outcome, max_other, questions in kinds:
        phrases = rules.erasure if outcome == "erasure" else rules.optout
        in_subject = phrases.whole(subject_norm) if subject_norm else None
        if in_subject is not None:
            # The subject is the request itself (our List-Unsubscribe mailto sets it); the
            # body only matters if it shows interest.
            doubt = _doubt([in_subject], every, body, rules, guess, 10**9, questions=False)
            language = _language(in_subject, guess)
            if doubt:
                return Judgement("uncertain", in_subject.phrase, "subject", language, doubt)
            return Judgement(outcome, in_subject.phrase, "subject", language)
        hits = found[outcome]
        if hits:
            first = hits[0]
            language = _language(first, guess)
            doubt = _doubt(hits, every, body, rules, guess, max_other, questions)
            if doubt:
                return Judgement("uncertain", first.phrase, body.where(first), language, doubt)
            return Judgement(outcome, first.phrase, body.where(first), language)
    return Judgement("none", language=guess)
