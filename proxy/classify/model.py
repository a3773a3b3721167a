"""A second opinion on a reply: how much what the person wrote reads like a request to stop.

Why a learned model beside the grammar of ``intent``: the grammar combines the concepts of
the language files (remove, the person, a list, a negation, interest, an authority, ...) by
rules someone wrote for the constructions they thought of; a request built another way
comes out ``none`` and the person is written to again.  This model reads the same concepts,
sentence by sentence, as the grammar sees them (so every language, every inflection and
every word a user adds to a language file count alike), and learns from the whole reply
corpus which combinations make a request: a concept, two concepts in one sentence, a
concept with a negation beside it.  Learning over concepts rather than words means what is
learnt from German replies also counts for Maltese ones, and the model stays small (a few
thousand weights) and explainable.  It is trained on the corpus's training part only, by
``python bench/reply_model.py --write``, and shipped as ``data/reply_model.json``.

It never decides alone: where it disagrees strongly with the grammar (the grammar found no
request and the model reads one, or the grammar read a request the model finds nowhere),
the reply goes to a person as ``uncertain`` with the sentence the model found most telling.
The two thresholds are chosen on cross-validated scores of the training part, so that only
a small share of plain replies and of requests are sent to review (see the training command).

Pure: no randomness, nothing downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from proxy.classify.intent import Judgement, latin_typed, read_body, tag
from proxy.classify.reply_rules import ReplyRules

MODEL_FILE = Path(__file__).resolve().parent / "data" / "reply_model.json"
FORMAT = 1

NEGATIONS = ("negation", "negation_after")
NEAR = 3  # a negation this many words from a concept is read as bearing on it


def features(text: str, rules: ReplyRules) -> set[str]:
    """The concepts of each sentence as the grammar tags them, read in the language that
    knows most of its words: each concept ("remove"), each pair in one sentence
    ("remove&self") and each concept with a negation near it ("not contact")."""
    found: set[str] = set()
    for own in _per_sentence(text, rules).values():
        found |= own
    return found


def _per_sentence(text: str, rules: ReplyRules) -> dict[str, set[str]]:
    """Each sentence of what the person wrote (sign-off and disclaimer cut, as the grammar
    reads it) with its features, tagged with the same arguments as the grammar's reading."""
    body, guess = read_body(text, rules)  # the grammar's own reading, kept for a second reader
    out: dict[str, set[str]] = {}
    for sentence in body:
        latin = rules.latin if latin_typed(sentence, guess) else None
        out.setdefault(sentence.text, set()).update(sentence_features(tag(sentence, rules.lexicon, latin, guess).at))
    return out


def sentence_features(tagged: dict[str, dict[str, list[int]]]) -> set[str]:
    """``tagged``: per language, concept -> positions in the sentence (``intent.tag``)."""
    if not tagged:
        return set()
    lang = max(tagged, key=lambda lg: (sum(map(len, tagged[lg].values())), lg == "en", lg))
    at = tagged[lang]
    names = sorted(at)
    out = {f"{a}&{b}" for a, b in itertools.combinations(names, 2)}
    out.update(names)
    negations = [p for name in NEGATIONS for p in at.get(name, ())]
    if negations:
        for name, spots in at.items():
            if name not in NEGATIONS and any(abs(p - q) <= NEAR for p in spots for q in negations):
                out.add(f"not {name}")
    return out


@dataclass(frozen=True)
class ReplyModel:
    weights: dict[str, float]
    bias: float
    review_none_above: float  # the grammar found nothing, the model this sure of a request
    review_request_below: float  # the grammar found a request, the model this unsure

    def probability(self, found: Iterable[str]) -> float:
        """The probability that a text with these features asks to stop being written to."""
        weights = self.weights
        total = self.bias + sum(weights.get(f, 0.0) for f in found)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))

    def read(self, text: str, rules: ReplyRules) -> tuple[float, str, set[str]]:
        """The probability for the whole text, the sentence that reads most like a request
        and that sentence's features."""
        found: set[str] = set()
        best, best_p, best_features = "", -1.0, set()
        for sentence, own in _per_sentence(text, rules).items():
            found |= own
            p = self.probability(own)
            if p > best_p:
                best, best_p, best_features = sentence, p, own
        return self.probability(found), best, best_features

    def as_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "bias": self.bias,
            "review_none_above": self.review_none_above,
            "review_request_below": self.review_request_below,
            "weights": dict(sorted(self.weights.items())),
        }


def model_from_json(data: dict[str, object], where: str = "model") -> ReplyModel:
    if data.get("format") != FORMAT:
        raise ValueError(f"{where}: format {data.get('format')!r}, this version reads {FORMAT}")
    raw = data.get("weights")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: no weights")
    return ReplyModel(
        {str(k): float(v) for k, v in raw.items()},
        float(data["bias"]),  # type: ignore[arg-type]
        float(data["review_none_above"]),  # type: ignore[arg-type]
        float(data["review_request_below"]),  # type: ignore[arg-type]
    )


@functools.cache
def shipped_model() -> ReplyModel:
    """The model that comes with the product (read once, on the first reply)."""
    return model_from_json(json.loads(MODEL_FILE.read_text(encoding="utf-8")), str(MODEL_FILE))


def strongest(model: ReplyModel, found: Iterable[str], top: int = 8) -> list[tuple[str, float]]:
    """The features that weigh most, for a reviewer or ``bench/reply_model.py --explain``."""
    ranked = sorted(((f, model.weights.get(f, 0.0)) for f in set(found)), key=lambda p: -abs(p[1]))
    return ranked[:top]


def second_opinion(found: Judgement, text: str, rules: ReplyRules, model: ReplyModel | None = None) -> Judgement:
    """The grammar's judgement, sent to a person where the model disagrees strongly.

    A request the subject makes by itself (our List-Unsubscribe mailto) stands: the body of
    such a message is often empty."""
    if found.outcome not in ("none", "opt-out", "erasure") or found.where == "subject":
        return found
    model = model or shipped_model()
    p, telling, telling_features = model.read(text, rules)
    if found.outcome == "none" and p >= model.review_none_above:
        words = ", ".join(f for f, w in strongest(model, telling_features) if w > 0)
        reason = f"no rule matched, but the reply reads like a request to stop ({p:.0%}; {words})"
        return dataclasses.replace(found, outcome="uncertain", evidence=telling, where="body", reason=reason)
    if found.outcome != "none" and p <= model.review_request_below:
        reason = f"{found.reason}, but the reply as a whole does not read like a request ({p:.0%})"
        return dataclasses.replace(found, outcome="uncertain", reason=reason)
    return found
