"""A second signal beside the rules: a small model of how requests to stop are worded.

Why this mechanism.  The reply rules (``intent.judge``) state what people mean: which words
ask to be removed, erased or left alone, and which only look like it.  They are exact and
explainable, and they decide.  But people keep finding wordings no rule lists yet, and a
request the rules do not recognise is answered ``none``: the person is written to again.
This model reads the same text as a bag of character n-grams and word pairs, which carries
over to unseen wordings, misspellings and inflections, and is used only to route a reply to a
person (``uncertain``), never to decide a request by itself:

- the rules answer ``none`` but the model scores the wording at least ``flag``: the reply goes
  to review with the sentence that reads most like a request.  Not where the rules read the
  words and gave their answer on purpose: a reason for ``none`` ("not now", "refers us to
  someone else"), a wording they list as no request ("don't remove me", "in my spam folder"),
  request words in a sentence that negates them, is about somebody else, asks a question or
  points elsewhere (``rules_read_the_words``).  A bag of n-grams cannot tell a negation or whom
  a request is about; the commonest false alarm in cross-validation was exactly that ("don't
  take me off the list, I want your news"); and only where the text holds some word a request is
  made of (``holds_request_words``: removing, stopping, a list, "any more", a complaint...): a
  reply that merely mentions mail ("Tak for din mail. Det lyder godt.", "Here is another
  email") is not sent to review on the strength of its n-grams, which on mail unlike the
  corpus (the public reply fixtures) flagged one reply in eleven.  The threshold is set
  without this check, which only ever takes flags away: at run time the model flags fewer
  neutral replies than its budget;
- the rules answer opt-out/erasure, inferred rather than asked in so many words ("I do not
  read these"), and the model scores it at most ``veto`` (the model is sure nothing is asked):
  the reply goes to review naming both readings.  An explicit request ("remove me", "STOP") and
  a refusal ("No thanks", which our footer tells people to send) always stand (``vetoable``).

Both thresholds are set by cross-validation on the training part of the reply corpus so that
the model stays within the product's budgets (at most 3% of neutral replies and at most 5% of
requests to ``uncertain`` altogether): at most about 1% of the neutral replies the rules answer
``none`` are flagged, and the veto holds back at most about 1% of the requests the rules find.
Bounces, complaints, auto-replies, absence notices and requests made in the subject never reach
the model.

What the model reads.  The text the person wrote as the classifier sees it at run time: the
reply's new text after quotes are removed (``reader``), without the sign-off, signature and
confidentiality notice (``intent.read_body``), folded by ``textnorm.normalize``.  The trainer
(``bench/train_reply_model.py``) renders the corpus into real client messages and extracts
the text the same way, so the model learns from what it will be shown, quote remnants and
all, not from the clean texts of the corpus files.  The subject is left out: in almost every
reply it is our own subject coming back after "Re:", and a request in the subject is the
rules' to read.

Features: character n-grams of 3 to 5 letters inside each word padded with spaces, the word
itself and each pair of neighbouring words, hashed with CRC-32 (stable across runs, unlike
``hash()``) into 2^18 buckets, counted and scaled by one over the square root of their total.
A binary logistic regression (label 1: an opt-out or erasure request) trained with Adagrad
and a small L2 penalty, in a fixed order from a fixed seed: the same corpus gives the same
file byte for byte.  A word's n-grams add up to one number, kept per word, so a reply costs a
dictionary look-up per word and a hash per word pair.

The file ``reply_model.bin``: a magic line, one line of JSON (the header: format, bucket
count, feature spec, bias, scale, thresholds, the SHA-256 of the training texts and of the
weights, counts and cross-validation figures), then the weights as zlib-compressed
little-endian int16 (weight = value * scale).  Rebuild it with
``.venv/bin/python bench/train_reply_model.py``; ``--check`` says whether it is stale.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import random
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.classify.intent import Judgement, Sentence, read_body, tag_in_reply
from proxy.classify.reply_rules import ReplyRules
from proxy.classify.textnorm import normalize
from proxy.classify.words import NEGATED

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"gdpr-mail-proxy reply model\n"
DATA_FILE = Path(__file__).with_name("reply_model.bin")
BITS = 18
CHAR_SIZES = (3, 4, 5)
MAX_CHARS = 4000  # of the person's text: requests are short, more only costs time
REQUESTS = ("opt-out", "erasure")
_WORD_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Spec:
    """How text becomes features; stored in the header so a file and the code must agree."""

    bits: int = BITS
    char_sizes: tuple[int, ...] = CHAR_SIZES
    words: bool = True
    bigrams: bool = True
    max_chars: int = MAX_CHARS

    @property
    def buckets(self) -> int:
        return 1 << self.bits

    def as_json(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "char_sizes": list(self.char_sizes),
            "words": self.words,
            "bigrams": self.bigrams,
            "max_chars": self.max_chars,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        return cls(
            int(data["bits"]),
            tuple(int(n) for n in data["char_sizes"]),
            bool(data["words"]),
            bool(data["bigrams"]),
            int(data["max_chars"]),
        )


# ---------------------------------------------------------------- features


def words_of(text: str, spec: Spec = Spec()) -> list[str]:
    return normalize(text[: spec.max_chars]).split()


def _bucket(feature: str, mask: int) -> int:
    return zlib.crc32(feature.encode("utf-8")) & mask


def word_features(word: str, spec: Spec = Spec()) -> list[int]:
    """The buckets of one word: its character n-grams (" word " padded) and the word itself."""
    mask = spec.buckets - 1
    padded = f" {word} "
    out = [_bucket(padded[i : i + n], mask) for n in spec.char_sizes for i in range(len(padded) - n + 1)]
    if spec.words:
        out.append(_bucket("w\x1f" + word, mask))
    return out


def _pair_bucket(a: str, b: str, mask: int) -> int:
    return _bucket(f"b\x1f{a} {b}", mask)


def features(words: Sequence[str], spec: Spec = Spec()) -> list[tuple[int, float]]:
    """(bucket, value) of a text: counts scaled by one over the square root of their sum."""
    mask = spec.buckets - 1
    counts: Counter[int] = Counter()
    for word in words:
        counts.update(word_features(word, spec))
    if spec.bigrams:
        counts.update(_pair_bucket(a, b, mask) for a, b in itertools.pairwise(words))
    total = sum(counts.values())
    if not total:
        return []
    scale = 1.0 / math.sqrt(total)
    return sorted((bucket, n * scale) for bucket, n in counts.items())


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# ---------------------------------------------------------------- learning


def fit(
    examples: Sequence[tuple[Sequence[tuple[int, float]], int]],
    spec: Spec = Spec(),
    epochs: int = 6,
    rate: float = 0.3,
    l2: float = 1e-5,
    seed: int = 1,
) -> tuple[float, list[float]]:
    """Logistic regression by Adagrad: (bias, weights).  Deterministic for the same examples."""
    weights = [0.0] * spec.buckets
    squares = [1e-8] * spec.buckets
    bias, bias_squares = 0.0, 1e-8
    order = list(range(len(examples)))
    rng = random.Random(seed)
    sqrt = math.sqrt
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            feats, label = examples[i]
            z = bias
            for j, x in feats:
                z += weights[j] * x
            d = _sigmoid(z) - label
            for j, x in feats:
                g = d * x + l2 * weights[j]
                squares[j] += g * g
                weights[j] -= rate * g / sqrt(squares[j])
            bias_squares += d * d
            bias -= rate * d / sqrt(bias_squares)
    return bias, weights


def predict(bias: float, weights: Sequence[float], feats: Iterable[tuple[int, float]]) -> float:
    z = bias
    for j, x in feats:
        z += weights[j] * x
    return _sigmoid(z)


# ---------------------------------------------------------------- the file


def quantise(weights: Sequence[float]) -> tuple[float, array.array[int]]:
    """(scale, int16 values) with weight ~ value * scale."""
    top = max((abs(w) for w in weights), default=0.0)
    scale = top / 32767 if top else 1.0
    return scale, array.array("h", (round(w / scale) for w in weights))


def dump(path: Path, header: dict[str, Any], values: array.array[int]) -> int:
    """Write the file; the header gets the weights' SHA-256 and non-zero count.  Returns its size."""
    little = array.array("h", values)
    if sys.byteorder != "little":
        little.byteswap()
    raw = little.tobytes()
    header = {
        **header,
        "format": FORMAT,
        "weights_sha256": hashlib.sha256(raw).hexdigest(),
        "nonzero": sum(1 for v in values if v),
    }
    data = MAGIC + json.dumps(header, sort_keys=True, ensure_ascii=True).encode("ascii") + b"\n"
    data += zlib.compress(raw, 9)
    path.write_bytes(data)
    return len(data)


def read_file(path: Path = DATA_FILE) -> tuple[dict[str, Any], array.array[int]]:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path}: not a reply model file")
    end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : end])
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: format {header.get('format')!r}, this code reads {FORMAT}")
    raw = zlib.decompress(data[end + 1 :])
    if hashlib.sha256(raw).hexdigest() != header["weights_sha256"]:
        raise ValueError(f"{path}: the weights do not match their checksum")
    values = array.array("h")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    if len(values) != Spec.from_json(header["spec"]).buckets:
        raise ValueError(f"{path}: {len(values)} weights, the header says {header['spec']['bits']} bits")
    return header, values


# ---------------------------------------------------------------- scoring


@dataclass
class ReplyModel:
    spec: Spec
    bias: float
    scale: float
    values: array.array[int]
    flag: float  # grammar "none" and score >= flag: to a person (0 or above 1: off)
    veto: float  # grammar opt-out/erasure and score <= veto: to a person (0: off)
    header: dict[str, Any] = field(default_factory=dict)
    _words: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> ReplyModel:
        header, values = read_file(path)
        return cls(
            Spec.from_json(header["spec"]),
            float(header["bias"]),
            float(header["scale"]),
            values,
            float(header["flag"]),
            float(header["veto"]),
            header,
        )

    def _word(self, word: str) -> tuple[float, int]:
        kept = self._words.get(word)
        if kept is None:
            buckets = word_features(word, self.spec)
            values = self.values
            kept = (sum(values[b] for b in buckets) * self.scale, len(buckets))
            if len(self._words) >= _WORD_CACHE_SIZE:
                self._words.clear()
            self._words[word] = kept
        return kept

    def score_words(self, words: Sequence[str]) -> float:
        """The probability that the words ask to stop or to be erased."""
        total, count = 0.0, 0
        cache = self._words
        for w in words:
            kept = cache.get(w)
            if kept is None:
                kept = self._word(w)
            total += kept[0]
            count += kept[1]
        if self.spec.bigrams and len(words) > 1:
            mask, values, crc = self.spec.buckets - 1, self.values, zlib.crc32
            pairs = 0
            for a, b in itertools.pairwise(words):
                pairs += values[crc(f"b\x1f{a} {b}".encode()) & mask]
            total += pairs * self.scale
            count += len(words) - 1
        if not count:
            return _sigmoid(self.bias)
        return _sigmoid(self.bias + total / math.sqrt(count))

    def score(self, text: str) -> float:
        return self.score_words(words_of(text, self.spec))


@dataclass
class _Loaded:
    model: ReplyModel | None = None
    tried: bool = False


_LOADED = _Loaded()


def shipped_model() -> ReplyModel | None:
    """The shipped model, loaded once; None (the second signal off) if the file cannot be read."""
    if not _LOADED.tried:
        _LOADED.tried = True
        try:
            _LOADED.model = ReplyModel.load()
        except (OSError, ValueError, KeyError, zlib.error) as exc:
            log.warning("reply model not loaded, replies are read by the rules alone: %s", exc)
    return _LOADED.model


def model_text(body: Sequence[Sentence]) -> str:
    """What the model reads of a reply: the person's sentences (``intent.read_body``)."""
    return "\n".join(s.text for s in body)


def text_of_reply(new_text: str, rules: ReplyRules) -> str:
    body, _ = read_body(new_text, rules)
    return model_text(body)


# The words by which the rules know a request, and those that make a request words' sentence
# negated, about somebody else, a question or a redirect ("No hace falta que me quites de la
# lista", "Can employees unsubscribe themselves?", "Bitte schreiben Sie nicht mir, sondern meiner
# Kollegin", "use my work email instead").
REQUEST_WORDS = frozenset(
    {"remove", "delete", "unsubscribe", "stop", "erasure", "object", "complain", "contact", "receive"}
)
ABOUT_OTHERS = frozenset({"negation", "negation_after", "them", "question", "instead"})


def rules_read_the_words(body: Sequence[Sentence], guess: str | None, rules: ReplyRules) -> bool:
    """Whether the rules read, rather than missed, the words of a body they answered none: it
    holds a wording they list as no request ("don't remove me", "in my spam folder"), or request
    words in a sentence that negates them, is about somebody else, asks a question or points
    elsewhere.  The model cannot tell a negation or whom a request is about, so it does not
    overrule such a reading."""
    lex = rules.lexicon
    for sentence in body:
        tagged = tag_in_reply(sentence, rules, guess)
        if any(not REQUEST_WORDS.isdisjoint(at) and not ABOUT_OTHERS.isdisjoint(at) for at in tagged.at.values()):
            return True
        words = sentence.words
        present = frozenset(words)
        for i, word in enumerate(words):
            if any(concept == "not_request" for _, concept in lex.senses(word)):
                return True
            if lex.starts_phrase(word) and any(
                entry.concept == "not_request" for _, _, entry in lex.phrase_hits(words, i, present)
            ):
                return True
    return False


# Words that some request is made of: the model flags a text only when it holds one, so a
# reply that merely mentions mail ("Tak for din mail. Det lyder godt.") is never sent to review
# on the strength of its n-grams alone.
REQUEST_CUES = frozenset(
    {"remove", "delete", "unsubscribe", "stop", "erasure", "object", "complain", "authority", "request",
     "refusal", "alone", "spam", "more", "list", "store", "data", "away"}
)  # fmt: skip


def holds_request_words(body: Sequence[Sentence], guess: str | None, rules: ReplyRules) -> bool:
    """Whether any sentence holds a word of a request (or one negated by its own prefix)."""
    for sentence in body:
        for at in tag_in_reply(sentence, rules, guess).at.values():
            if not REQUEST_CUES.isdisjoint(at) or any(k.startswith(NEGATED) for k in at):
                return True
    return False


def vetoable(found: Judgement) -> bool:
    """Whether the model may hold back the rules' request: not one in so many words ("remove me",
    "STOP") and not a refusal ("No thanks", "Nein danke"), which our footer tells people to send;
    only one the rules infer ("I do not read these", "we do not want your mail")."""
    return found.outcome in REQUESTS and not found.explicit and "refuses: " not in found.reason


def second_opinion(
    found: Judgement, new_text: str, rules: ReplyRules, model: ReplyModel | None = None
) -> tuple[Judgement, float | None]:
    """The rules' judgement of a body, sent to a person where the model disagrees strongly
    (see the module's docstring); with the model's score when it was asked."""
    if found.where == "subject" or found.outcome not in ("none", *REQUESTS):
        return found, None
    model = model or shipped_model()
    if model is None:
        return found, None
    if found.outcome == "none" and not 0 < model.flag <= 1:
        return found, None
    if found.outcome != "none" and (model.veto <= 0 or not vetoable(found)):
        return found, None
    if found.outcome == "none" and found.reason:
        return found, None  # the rules gave a reason for none: "not now", "refers us to someone else"
    body, guess = read_body(new_text, rules)
    if not body:
        return found, None
    score = model.score(model_text(body))
    if (
        found.outcome == "none"
        and score >= model.flag
        and not rules_read_the_words(body, guess, rules)
        and holds_request_words(body, guess, rules)
    ):
        best = max(body, key=lambda s: model.score_words(words_of(s.text, model.spec)))
        reason = f"no rule matched, but the wording reads like a request to stop (model {score:.2f})"
        return (
            Judgement("uncertain", best.text, f"body line {best.line}", found.language, reason),
            score,
        )
    if found.outcome in REQUESTS and score <= model.veto:
        reason = f"the rules read {found.outcome} ({found.reason}), but the model reads no request (model {score:.2f})"
        return dataclasses.replace(found, outcome="uncertain", reason=reason), score
    return found, score
