"""Decide what the person asked for, sentence by sentence: erasure, opt-out, nothing or review.

Why concepts and not phrases: a phrase list only knows the forms someone thought of ("take
me off" but not "take us off", one imperative but not the polite or plural one).  Each
language file instead lists *words* by the part they play in a request - removing,
unsubscribing, stopping, contacting, mail, list, data, the person (me, us, him), negation,
interest - mostly as stems ("entfern*", "supprim*") so that every inflection and politeness
form is covered, and folded like the text (case, accents) with one typo forgiven in longer
words.  A small grammar then combines the concepts within one sentence: "remove" with a
person or a list ("retirez son adresse", "nehmen Sie uns aus dem Verteiler"), "stop" with
contact or alone, a negation scoped to its clause in front of or just after contacting,
receiving or interest ("ne me contactez plus", "kontaktieren Sie mich nicht mehr",
"nous ne sommes pas intéressés"), a supervisory authority, an objection or the right to
erasure.  Word order, the person (first or third) and politeness words then no longer
matter, and the words are few enough per language for a salesperson to read and extend.
Every concept of a decision must come from one language, so a word that means "remove"
in one language and something else in another cannot combine with the second language's
pronouns.  A negation negates only the nearest concept in its clause (commas of every
script and "but" end clauses), so "don't hesitate to contact me" or "not sure, but remove me"
read right; it reaches further only where nothing else stands between: a sign of interest
("não faz sentido continuarmos a conversar"), a need in the next clause when its own has
nothing to negate ("это не то, что нам нужно"), the need in front of a Turkish verb negated
inside ("ihtiyacımız olmamaktadır").  A phrase stands for its words in its own language only: another language that
lists the same phrase keeps its reading, and one that does not still reads its own words; a
not-request phrase of a language that shows nowhere else in the sentence leaves the reply's
own language its reading (Polish "To spam." is not English "to spam"), and a one-word
not-request entry silences that word in its language, and in every language when it is the
reply's own ("im Spam-Ordner" in a German reply is no Polish "spam").  A request phrase of
words side by side does not reach over a comma ("Agora não, voltem a contactar em setembro"),
a refusal ("No, thanks") or a phrase with a gap may.

What the person asks of us, not what they report or ask about: a clause that reports the past
asks nothing; a question that names neither the person, a list nor an address and says no
"please" asks how the product works ("can employees unsubscribe themselves?"), so does one led
by a question word (``interrogative``: "what happens to our data, is it deleted?") unless it
names a list, unsubscribing or our mail, and so does one about doing it oneself or its
happening by itself (``ourselves``: "can we remove drops ourselves?", "are they deleted
automatically?"); a removing verb in the passive (``passive``)
is no past tense, and the person as its subject is the one removed ("Can I be removed?",
"¿Podemos ser eliminados?"); consent withdrawn (``consent``, ``withdraw``) and a use of the
person's own data refused or not permitted (``use``, ``permit``) are objections; deleting what
the person sent by mistake, or "them" and a list with nobody addressed, are things ("delete the
attachment I sent you", "you can delete them one at a time"); "stop" needs contact in its own
clause ("we stopped working with them, so email me"); "don't write to me, write to my
colleague" is a referral; a wish in front of a negated contact is a request whatever the
negation attached to ("wir möchten nicht kontaktiert werden"). A complaint told in a clause
that reports the past is what happened ("we complained to the CNIL about another firm last
year"), unless that clause names our mail; one after our mail and "again" is a threat ("if you
email me again I will report you"), and an authority that is the subject of a statement is a
mention ("the ICO requires us to train staff"). A question word (``question``: "can my team",
"how do your customers") makes a question about the product whoever it names; a removal from a
thread, a copy or a document (``thread``: "remove item 3 from the offer, we don't need it") is
none from our mailing, and the need refused beside it is the item's; a negated removal asks to
stay ("nehmen Sie uns bitte nicht von der Liste"), and "not X but Y" without "any more"
corrects what to send or to whom ("niet naar mij, maar naar de inkoop"); another way or thing
offered in a later clause (``instead``: "don't call, e-mail is fine", "a scan is enough") is a
preference, and the same contact verb towards someone else a hand-over ("не пишите мне, пишите
Ольге"). A negation reaches a contact verb joined to its own by short words ("don't call me or
write to me"). A negated contact that leads its sentence with "any more" is addressed to us
("Don't send any more offers"); a wish to stop followed by what the person will stop doing is
their own plan ("Szeretnénk abbahagyni, hogy ..."), and so is a removal right after a ``plan``
word ("I will delete my old account once we switch to you"). A wish before a removing verb with
only a few short words besides is the person's own removal ("Ich möchte gelöscht werden");
"please", the person, a list, a negation and "any more" in one clause ask to be kept out of it
whatever the verb; "call me" right after a negation is forbidden.
Russian, Ukrainian and Bulgarian typed in Latin letters are read by a rough skeleton of
their words, only in plain-ASCII sentences of replies in no language or a Slavic one.

A refusal ("not interested", "no thanks") next to an invitation to come back later is
"not now", not an opt-out; any request next to a sign of interest in another sentence
(a meeting, a call, a demo) is sent to a person as ``uncertain``, unless a "but" after it,
in its sentence or the next, turns the interest round ("sounds interesting, but we have
just signed elsewhere"), or the interest is told in a report of the past or a refusal ("we
had a demo with a similar vendor last year", "een demo heeft geen zin").  A first name
alone under the text is not read as a word of another language.  A reply that is nothing but
an ``alone`` word ("Хватит!", "Genug!") has had enough, and "thanks, but no" refuses; a
refused thing beside another asked for in the next clause refuses only the thing ("Demo
nepotřebujeme, pošlete rovnou nabídku").  When
the short words of two languages tie, the reply is guessed to be in the one that reads more
in its words.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from proxy.classify.reply_rules import MAX_TEXT_CHARS, ReplyRules
from proxy.classify.textnorm import fold, normalize
from proxy.classify.words import GAP, NEGATED, Lexicon, is_cyrillic, skeleton, tokens

Outcome = Literal["opt-out", "erasure", "uncertain", "none"]

# Concepts a negation can attach to, and modifiers it skips over.
CONTENT = frozenset(
    {"unsubscribe", "remove", "delete", "stop", "contact", "receive", "want", "mail", "interest",
     "object", "erasure", "positive", "spam", "authority", "refusal", "complain", "request", "withdraw", "use",
     "permit"}
)  # fmt: skip
NEG_AHEAD = 5  # a negation reaches this many words forward ("nobody at Acme Ltd is interested")
NEG_BEHIND = 6  # and back, for negations that follow their verb ("schreiben Sie mich bitte nicht mehr an")
# a sentence ends after its mark and any closing bracket or quote ("... first.) To delete"),
# in every script ("؟", "؛", "。", "！")
_SENTENCE_END = re.compile(r"(?:(?<=[.!?;؟؛。！？；])|(?<=[.!?;؟؛。！？；][)\]\"'»”’]))\s+(?=[^\d\s])|\n+")
# "Art. 17", "Nr.", "z. B.", "a.u.b.", "e.g." do not end a sentence.
_ABBREVIATION = re.compile(r"(?:^|\s)(?:\w{1,3}|\w(?:\.\w)+)\.$")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# commas of every script end a clause: Arabic "،" and "؛", CJK "、" and "，"
_CLAUSE_BREAK = re.compile(r"\s*[,;:–—()\[\]،؛、，；：]\s*|\s+-\s+")


@dataclass(frozen=True)
class Sentence:
    text: str  # as the person wrote it
    line: int  # 1-based line of the reply text
    words: tuple[str, ...]
    clause: tuple[int, ...]  # clause number of each word


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with their number, a hard-wrapped sentence joined again: a line that does not
    end a sentence continues on the next when that one starts in lower case."""
    out: list[tuple[int, str]] = []
    joinable = False
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            joinable = False
            continue
        if joinable and out and stripped[:1].islower():
            out[-1] = (out[-1][0], out[-1][1] + " " + stripped)
        else:
            out.append((number, stripped))
        joinable = stripped[-1:].isalnum() or stripped[-1:] in ",'’"
    return out


def sentences(text: str) -> list[Sentence]:
    out: list[Sentence] = []
    for number, line in _logical_lines(text):
        pieces: list[str] = []
        # A lower-case word after a short word's dot continues the sentence ("bzw. die", "ca.
        # zwei") only in a line that starts its sentences with capitals: in one typed all in
        # lower case ("no ta. stop sending me these") it tells nothing, and "ta." ends a sentence.
        capitals = any(ch.isupper() for ch in line)
        for piece in _SENTENCE_END.split(line):
            if pieces and _continues(pieces[-1], piece, capitals):
                pieces[-1] += " " + piece
            else:
                pieces.append(piece)
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            words: list[str] = []
            clause: list[int] = []
            for c, part in enumerate(_CLAUSE_BREAK.split(piece)):
                found = tokens(part)
                words.extend(found)
                clause.extend([c] * len(found))
            if words:
                out.append(Sentence(piece, number, tuple(words), tuple(clause)))
    return out


def _continues(before: str, piece: str, capitals: bool) -> bool:
    """Whether a piece continues the sentence of the one before, which ends with an
    abbreviation: one letter or dotted letters ("z.", "a.u.b.") before a lower-case word or the
    next letter of the same abbreviation ("z. B."), a word of two or three letters ("Nr.",
    "bzw.") before a lower-case word in a line written with capitals."""
    found = _ABBREVIATION.search(before)
    if found is None:
        return False
    word = found.group(0).strip().rstrip(".")
    dotted = len(word) == 1 or "." in word
    if dotted and re.match(r"\w\.(?:\s|$)", piece):
        return True
    return piece[:1].islower() and (capitals or dotted)


@dataclass(frozen=True)
class Finding:
    kind: str  # "opt-out", "erasure", "refusal", "positive", "later"
    language: str
    reason: str
    sentence: Sentence

    @property
    def explicit(self) -> bool:
        """Asked in so many words (remove, unsubscribe, erase, object, complain), not only
        said with a negation ("I do not read my mail")."""
        return self.kind == "erasure" or self.reason in EXPLICIT_REASONS


@dataclass
class _Tagged:
    """Per language: concept -> positions in the sentence, after not-request phrases are removed."""

    at: dict[str, dict[str, list[int]]]
    entries: dict[tuple[str, int], str]  # (language, position) -> the rule file text that matched
    covered: dict[str, set[int]]  # per language: positions its phrases took up


def latin_typed(sentence: Sentence, guess: str | None) -> bool:
    """Whether a sentence may be Russian, Ukrainian or Bulgarian typed in Latin letters:
    written in plain ASCII (a Swedish "styrelsemötet" or a German "über" is not), whatever the
    reply's language was guessed to be: the short words of a transliteration ("me", "si",
    "ne") are words of many languages and make any guess.  ``_tag`` reads the skeletons only
    where most words are unknown to the lists."""
    return sentence.text.isascii()


@dataclass
class _TagMemo:
    """The last tags, so that a sentence read again (the same short reply from many people, a
    subject read with its body) costs a look-up; kept per word lists (a reload starts afresh)
    and bounded.  A ``_Tagged`` is never changed after ``tag`` returns it."""

    lexicon: Lexicon | None = None
    found: dict[tuple[Sentence, int, str | None], _Tagged] = dataclasses.field(default_factory=dict)


_TAGS = _TagMemo()
_TAG_MEMO = 2048


def tag(sentence: Sentence, lex: Lexicon, latin: Lexicon | None = None, guess: str | None = None) -> _Tagged:
    if _TAGS.lexicon is not lex:
        _TAGS.lexicon = lex
        _TAGS.found = {}
    key = (sentence, id(latin) if latin is not None else 0, guess)
    found = _TAGS.found.get(key)
    if found is None:
        if len(_TAGS.found) >= _TAG_MEMO:
            _TAGS.found.clear()
        found = _TAGS.found[key] = _tag(sentence, lex, latin, guess)
    return found


def tag_in_reply(sentence: Sentence, rules: ReplyRules, guess: str | None) -> _Tagged:
    """``tag`` with the rules' lexicons, the Latin-typed Cyrillic one where it may apply."""
    return tag(sentence, rules.lexicon, rules.latin if latin_typed(sentence, guess) else None, guess)


def _tag(sentence: Sentence, lex: Lexicon, latin: Lexicon | None, guess: str | None) -> _Tagged:
    words = sentence.words
    per_word = lex.senses_each(words)
    entries: dict[tuple[str, int], str] = {}
    covered: dict[str, set[int]] = {}  # per language: positions its phrases took up
    unknown = sum(1 for senses in per_word if not senses)
    if latin is not None and unknown * 3 >= len(words) and not any(is_cyrillic(w) for w in words):
        # Russian, Ukrainian or Bulgarian typed in Latin letters (a sentence of many unknown
        # words): every word is also read by its skeleton ("ne", "mne" are words of other
        # languages too), and so are its phrases ("ne treba" = "не треба")
        shapes = [skeleton(w) for w in words]
        for i, shape in enumerate(shapes):
            known = {lg for lg, _ in per_word[i]}
            per_word[i].extend((lg, c) for lg, c in latin.senses(shape) if lg not in known)
        present = frozenset(shapes)
        for i, shape in enumerate(shapes):
            if not latin.starts_phrase(shape):
                continue
            for spots, lang, entry in latin.phrase_hits(shapes, i, present):
                per_word[i].append((lang, entry.concept))
                covered.setdefault(lang, set()).update(spots)
    blocked: set[int] = set()
    own_only: dict[int, set[str]] = {}  # positions blocked for these languages only
    keep = ("self", "them", "list", "mail", "data", "address", "store", "past", "instead")
    if lex.negation_infixes:
        _infix_negates_interest(words, per_word, lex)
    present = frozenset(words)
    one_word_not_request = any(c == "not_request" for senses in per_word for _, c in senses)
    starts_phrase = lex.starts_phrase
    for i, word in enumerate(words):
        if one_word_not_request and any(c == "not_request" for _, c in per_word[i]):
            # a one-word not-request entry: that language does not read the word otherwise
            silenced = {lg for lg, c in per_word[i] if c == "not_request"}
            if guess in silenced:
                # the reply's own language says the word asks nothing ("im Spam-Ordner"):
                # no other language reads it either, as with a phrase
                per_word[i] = []
            else:
                per_word[i] = [(lg, c) for lg, c in per_word[i] if lg not in silenced]
        if not starts_phrase(word):
            continue
        hits = lex.phrase_hits(words, i, present)
        if not hits:
            continue
        if any(sentence.clause[spots[-1]] != sentence.clause[i] for spots, _, _ in hits):
            # a request phrase of words side by side does not reach over a comma ("Agora não,
            # voltem a contactar em setembro" is no "não voltem a"); a refusal may ("No,
            # thanks"), and so may one with a gap ("nehmen Sie mich, bitte, aus ...")
            hits = [
                h
                for h in hits
                if sentence.clause[h[0][-1]] == sentence.clause[i] or h[2].concept in _ACROSS or GAP in h[2].pieces
            ]
            if not hits:
                continue
        first = list(per_word[i])
        added: list[tuple[str, str]] = []  # what the phrases at this word stand for
        for spots, lang, entry in hits:
            if entry.concept == "not_request":
                span = range(i, spots[-1] + 1)
                if guess is not None and lang != guess and not _shows_elsewhere(per_word, lang, span):
                    # English "to spam" in a Polish reply's "To spam." (this is spam): a phrase
                    # of a language that shows nowhere else in the sentence leaves the
                    # reply's own language its reading
                    for j in span:
                        own_only.setdefault(j, set()).add(lang)
                    continue
                blocked.update(span)
                continue
            entries[(lang, i)] = entry.text
            covered.setdefault(lang, set()).update(spots)
            if entry.concept == "instead":
                # Romanian "mai bine" (rather) holds no "mai" (more)
                first = [(lg, c) for lg, c in first if c != "more" or lg != lang]
                for j in spots[1:]:
                    per_word[j] = [(lg, c) for lg, c in per_word[j] if c != "more" or lg != lang]
            if entry.concept not in CONTENT:
                # "any more", "mailing list": a modifier; "base de datos" is a store, not data
                if entry.concept in _TARGETS:
                    first = [(lg, c) for lg, c in first if c not in _TARGETS or lg != lang]
                    for j in spots[1:]:
                        per_word[j] = [(lg, c) for lg, c in per_word[j] if c not in _TARGETS or lg != lang]
                first.append((lang, entry.concept))
                added.append((lang, entry.concept))
                continue
            # A request phrase stands for its words ("take ... off", "no thanks"): in its own
            # language they keep only the parts they can add to it; another language that
            # shares the phrase keeps what it has read there (Croatian and Slovenian "nas ne
            # zanima"), and one that does not still reads its own words.
            first = [(lg, c) for lg, c in first if c in keep or lg != lang or (lg, c) in added]
            first.append((lang, entry.concept))
            added.append((lang, entry.concept))
            for j in spots[1:]:
                per_word[j] = [(lg, c) for lg, c in per_word[j] if c in keep or lg != lang]
        per_word[i] = first
    at: dict[str, dict[str, list[int]]] = {}
    for i, senses in enumerate(per_word):
        if i in blocked:
            continue
        silenced = own_only.get(i, set())
        for lang, concept in senses:
            if lang in silenced:
                continue
            at.setdefault(lang, {}).setdefault(concept, []).append(i)
            if concept.startswith(NEGATED):
                base = at[lang].setdefault(concept[len(NEGATED) :], [])
                if i not in base:
                    base.append(i)
    return _Tagged(at, entries, covered)


def _infix_negates_interest(words: Sequence[str], per_word: list[list[tuple[str, str]]], lex: Lexicon) -> None:
    """ "Böyle bir hizmete ihtiyacımız bulunmamaktadır", "ilgimizi çekmemektedir": a verb no
    list knows, negated inside (Turkish "-mama-"), negates the interest word just before it."""
    needs = [(j, lg) for j, senses in enumerate(per_word) for lg, c in senses if c == "interest"]
    if not needs:
        return
    for j, lang in needs:
        for i in range(j + 1, min(j + 4, len(words))):
            if per_word[i]:
                continue
            word = words[i][2:]
            if any(infix in word for infix, lgs in lex.negation_infixes.items() if lang in lgs):
                per_word[j].append((lang, NEGATED + "interest"))
                break


def _shows_elsewhere(per_word: Sequence[Sequence[tuple[str, str]]], lang: str, span: range) -> bool:
    """Whether ``lang`` knows a word of the sentence outside ``span``."""
    return any(lg == lang for i, senses in enumerate(per_word) if i not in span for lg, _ in senses)


def _negated(
    pos: int, negs: Sequence[int], after: frozenset[int], content: dict[int, None], clause: Sequence[float]
) -> bool:
    """Whether a negation in the same clause attaches to the concept at ``pos``.

    A negation attaches to the nearest content concept after it within NEG_AHEAD words;
    failing that, one that may follow its verb (``negation_after``: "nicht", "inte") attaches
    to the nearest one before it within NEG_BEHIND words.
    """
    for n in negs:
        if clause[n] != clause[pos]:
            continue
        ahead = [p for p in content if n < p <= n + NEG_AHEAD and clause[p] == clause[n]]
        if ahead:
            if min(ahead) == pos:
                return True
            continue
        if n not in after:
            continue
        behind = [p for p in content if n - NEG_BEHIND <= p < n and clause[p] == clause[n]]
        if behind and max(behind) == pos:
            return True
    return False


_T = TypeVar("_T")


class _computed_once(Generic[_T]):
    """A property computed on first use and kept in the instance, like
    ``functools.cached_property`` but without its lock (Python 3.11 takes one per access),
    which cost about a twentieth of the reader's time: a ``_Concepts`` is used by one thread."""

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        value = self.compute(obj)
        obj.__dict__[self.name] = value  # found before this descriptor from now on
        return value


@dataclass(frozen=True)
class _Concepts:
    """One language's view of one sentence."""

    lang: str
    pos: dict[str, list[int]]
    free: dict[str, list[int]]  # content concepts not negated
    negated: dict[str, list[int]]
    clause: list[float]
    leading_word: int  # position of the first word that is not a greeting or politeness

    def told(self, name: str) -> bool:
        """A free ``name`` in a clause that does not report the past ("we have removed our
        old supplier", "I deleted your mail by mistake"), or in one with a request word of
        its own ("I asked you to remove me")."""
        free = self.free.get(name, ())
        if not free:
            return False
        if "past" not in self.pos:
            return True
        asking = {self.clause[p] for k in ("please", "want") for p in self.pos.get(k, ())}
        marked = set(self.pos["past"])
        past = self.past_clauses() - asking
        lead = self.leading_word
        # an imperative leads its sentence ("Slett alle opplysninger dere har om meg"), unless
        # the verb itself is in the past ("Poistin vahingossa viestisi")
        return any(self.clause[p] not in past or (p == lead and p not in marked) for p in free)

    @_computed_once
    def _past_clauses(self) -> frozenset[float]:
        return frozenset(self.clause[p] for p in self.pos.get("past", ()))

    @_computed_once
    def negating_clauses(self) -> frozenset[float]:
        """Clauses with a negation, or a request or refusal that carries its own."""
        kinds = ("negation", "negation_after", "request", "refusal")
        return frozenset(self.clause[p] for k in kinds for p in self.pos.get(k, ()))

    def past_clauses(self) -> frozenset[float]:
        return self._past_clauses

    def told_neg(self, name: str) -> bool:
        past = self._past_clauses
        return any(self.clause[p] not in past for p in self.negated.get(name, ()))

    def has(self, *names: str) -> bool:
        return not self.pos.keys().isdisjoint(names)

    # free and negated hold no empty lists: a name there is a position there
    def free_(self, *names: str) -> bool:
        return not self.free.keys().isdisjoint(names)

    def neg(self, *names: str) -> bool:
        return not self.negated.keys().isdisjoint(names)


def _concepts(
    sentence: Sentence, lang: str, found: dict[str, list[int]], english: dict[str, list[int]] | None
) -> _Concepts:
    pos = {k: list(v) for k, v in found.items()}
    _no_price_lists(pos)
    if 0 in pos.get("negation", ()) and 1 in pos.get("please", ()) and 2 in pos.get("remove", ()):
        # "No please remove me": a "no" that answers, before "please" and a removal, negates
        # nothing after it (unlike Estonian "Ärge palun mulle kirju saatke": don't send me mail)
        pos["negation"] = [p for p in pos["negation"] if p != 0]
        if not pos["negation"]:
            del pos["negation"]
    if english is not None and lang != "en":
        # English pronouns and "please" mix into every language ("please remove me, danke").
        for k in ("self", "please"):
            for p in english.get(k, ()):
                pos.setdefault(k, []).append(p)
    if "left" in pos and "contact" in pos:
        # "om dere sluttet å sende", "om ni slutade skicka": the verb of leaving a job with
        # contacting right after it is stopping that contact
        contacts = pos["contact"]
        stops = [
            p for p in pos["left"] if any(p < q <= p + 2 and sentence.clause[q] == sentence.clause[p] for q in contacts)
        ]
        if stops:
            pos["left"] = [p for p in pos["left"] if p not in stops]
            if not pos["left"]:
                del pos["left"]
            pos.setdefault("stop", []).extend(stops)
    if "passive" in pos:
        _passive_removal(sentence, pos)
    clause = [float(c) for c in sentence.clause]
    for b in sorted(pos.get("but", ())):
        # "but", "aber", "mais" end a clause as a comma does
        for i in range(b, len(clause)):
            if clause[i] != sentence.clause[b]:
                break
            clause[i] += 0.5 if i > b else 0.25
    negs = pos.get("negation", []) + pos.get("negation_after", [])
    after = frozenset(pos.get("negation_after", []))
    content = {p: None for k, v in pos.items() if k in CONTENT for p in v}
    if negs and "conjunction" in pos:
        _and_ends_negation(sentence, pos, negs, content, clause)
    free: dict[str, list[int]] = {}
    negated: dict[str, list[int]] = {}
    for k, v in pos.items():
        if k not in CONTENT:
            continue
        prefixed = set(pos.get(NEGATED + k, ()))
        for p in v:
            # a refusal carries its own negation ("ne m'intéresse pas"): nothing reverses it
            no = k != "refusal" and (p in prefixed or bool(negs and _negated(p, negs, after, content, clause)))
            if not no and k == "interest" and negs:
                # "Это не то, что нам нужно", "nicht das, was wir brauchen": a negation with
                # nothing to negate in its clause reaches the need in the next one
                no = any(
                    0 < n < p <= n + NEG_AHEAD
                    and 0 < clause[p] - clause[n] <= 1
                    and not any(q < p and (n < q or clause[q] == clause[n]) for q in content)
                    for n in negs
                )
            if not no and k in ("contact", "receive") and negs:
                # "Pyydän, ettei minuun oteta tämän asian tiimoilta enää yhteyttä": a negation
                # reaches a contact further on in its clause when nothing it could negate
                # stands between (only the person, "any more" and the matter of the mail)
                no = any(
                    n + NEG_AHEAD < p <= n + 2 * NEG_AHEAD
                    and n not in after
                    and clause[n] == clause[p]
                    and not any(n < q < p for q in content)
                    for n in negs
                )
            if not no and k == "positive" and negs:
                # "não faz qualquer sentido continuarmos a conversar": a negation reaches a sign
                # of interest further on when nothing else it could negate stands between them
                no = any(
                    n < p <= n + 2 * NEG_AHEAD and clause[n] == clause[p] and not any(n < q < p for q in content)
                    for n in negs
                )
            (negated if no else free).setdefault(k, []).append(p)
    asking = _negated_asking(pos, clause)
    if "want" in negated or asking:
        _negated_wish([*negated.get("want", ()), *asking], free, negated, clause)
    if negated and "contact" in free:
        _coordinated(sentence, pos, free, negated, clause)
    if any(k in negated for k in _STAYING) and any(k in free for k in _STAYING):
        # "or", "eller", "vagy" between two removing verbs: a little longer than "me", "to"
        _coordinated(sentence, pos, free, negated, clause, _STAYING, _STAYING, short=5)
    filler = {p for k in ("please", "polite") for p in pos.get(k, ())}
    lead = next((i for i in range(len(sentence.words)) if i not in filler), 0)
    return _Concepts(lang, pos, free, negated, clause, lead)


def _no_price_lists(pos: dict[str, list[int]]) -> None:
    """ "price list", "Preisliste": a list that is part of a sign of interest is no mailing list."""
    positive = set(pos.get("positive", ()))
    if positive and "list" in pos:
        pos["list"] = [p for p in pos["list"] if p not in positive and p - 1 not in positive]
        if not pos["list"]:
            del pos["list"]


def _and_ends_negation(
    sentence: Sentence, pos: dict[str, list[int]], negs: Sequence[int], content: dict[int, None], clause: list[float]
) -> None:
    """ "Согласия я не давал и возражаю", "I never agreed and I object": a negation followed by
    a verb of its own (a word no list knows) and then "and" has negated that verb; what comes
    after the "and" starts a clause of its own."""
    known = {p for v in pos.values() for p in v}
    for a in sorted(pos["conjunction"]):
        for n in negs:
            if not n < a or clause[n] != clause[a]:
                continue
            between = range(n + 1, a)
            if any(i in content for i in between):
                continue
            if any(i not in known and len(sentence.words[i]) >= 3 for i in between):
                own = clause[a]
                for i in range(a, len(clause)):
                    if clause[i] != own:
                        break
                    clause[i] += 0.125 if i > a else 0.0625
                break


_STAYING = ("unsubscribe", "remove", "delete", "stop")


def _governs(w: int, p: int, clause: Sequence[float]) -> bool:
    """Whether the wish at ``w`` is the wish of the verb at ``p``: the verb up to five words
    after it ("I don't want to unsubscribe", "nem szeretnék leiratkozni") or right before it
    ("aboneliğimi iptal etmek istemiyorum")."""
    if clause[w] == clause[p]:
        return w < p <= w + 5 or w - 3 <= p < w
    # "Nem kérem, hogy töröljenek", "Не хочу, чтобы вы меня удаляли": a wish that ends its
    # clause governs the verb of the clause right after it
    return w + 1 < len(clause) and clause[w + 1] != clause[w] and _behind_joining_word(w, p, clause)


def _behind_joining_word(last: int, p: int, clause: Sequence[float]) -> bool:
    """Whether ``p`` is in the clause right after the one that ends at ``last``, behind the
    word that joins them ("..., hogy töröljenek", "..., чтобы вы меня удаляли"), at most five
    words on; an imperative that opens its clause is asked on its own ("nu vreau, ștergeți-mă")."""
    return (
        last + 1 < p <= last + 5
        and {clause[i] for i in range(last + 1, p + 1)} == {clause[p]}
        and clause[p - 1] == clause[p]
    )


def _negated_wish(
    wants: Sequence[int], free: dict[str, list[int]], negated: dict[str, list[int]], clause: Sequence[float]
) -> None:
    """ "I don't want to unsubscribe, just change my address", "No quiero darme de baja": a
    negated wish negates the removing or stopping verb it governs, which then asks to stay."""
    for k in _STAYING:
        for p in list(free.get(k, ())):
            if any(_governs(w, p, clause) for w in wants):
                free[k].remove(p)
                negated.setdefault(k, []).append(p)
        if k in free and not free[k]:
            del free[k]


def _negated_asking(pos: dict[str, list[int]], clause: Sequence[float]) -> list[int]:
    """ "Nežádám o smazání", "Neprašau jų ištrinti", "Удалять не прошу": an asking word
    negated by its own prefix or by the negation right in front of it is a wish negated ("No
    please remove me" lost its "no" in ``_concepts``)."""
    negs = set(pos.get("negation", ()))
    return [
        *pos.get(NEGATED + "please", ()),
        *(q for q in pos.get("please", ()) if q - 1 in negs and clause[q - 1] == clause[q]),
    ]


def _ends_clause(c: _Concepts, v: int) -> bool:
    """Whether only "any more", politeness or the person follow ``v`` in its clause."""
    light = {p for k in ("more", "please", "polite", "self") for p in c.pos.get(k, ())}
    return all(i in light for i in range(v + 1, len(c.clause)) if c.clause[i] == c.clause[v])


def _asked_of_them(c: _Concepts) -> bool:
    """ "Our auditors asked us to delete old CVs": an asking word right before the person (not
    leading the sentence or its clause) is what someone asked of the person; what is removed, with no list,
    address, data, record, mail or colleague in sight, is their own thing."""
    if c.has("list", "address", "data", "store", "mail", "them", "contact", "more", "negation", "unsubscribe", "stop"):
        return False  # "Proto vás prosím, abyste mi už nic neposílal": "that you ... me" asks
    selves = set(c.pos.get("self", ()))
    # an asking word that leads its clause asks ("Mam dość, proszę mnie usunąć")
    return any(
        p > c.leading_word and p + 1 in selves and c.clause[p - 1] == c.clause[p] for p in c.pos.get("please", ())
    )


def _refused_removal(c: _Concepts) -> bool:
    """ "Nem kérem a törlésüket, csak tudni szeretném", "Níl mé ag iarraidh iad a scriosadh, ach
    eolas amháin": a refusal of a removal in its own clause, with the removal negated or
    "only" something else asked in a later clause, refuses the removal, not us."""
    verbs = [p for k in _STAYING for p in c.pos.get(k, ())]
    negated = {c.clause[p] for k in _STAYING for p in c.negated.get(k, ())}
    for r in c.free.get("refusal", ()):
        where = c.clause[r]
        # "Nem kérem, hogy töröljenek": a refusal that ends its clause refuses the verb right after
        last = max(i for i in range(len(c.clause)) if c.clause[i] == where)
        after = last <= r + 2 and any(r < p <= r + 5 and _behind_joining_word(last, p, c.clause) for p in verbs)
        if not any(r < p and c.clause[p] == where for p in verbs) and not after:
            continue
        if where in negated or any(c.clause[i] > where for i in c.pos.get("instead", ())):
            return True
    return False


def _wish_to_stay(c: _Concepts, w: int) -> bool:
    """A negated wish that governs a removing or stopping verb: the person wants to stay."""
    return any(_governs(w, p, c.clause) for k in _STAYING for p in c.negated.get(k, ()))


_JOINED = ("contact", "positive")  # "don't call me or write to me": a call is a contact too


def _coordinated(
    sentence: Sentence,
    pos: dict[str, list[int]],
    free: dict[str, list[int]],
    negated: dict[str, list[int]],
    clause: Sequence[float],
    kinds: Sequence[str] = ("contact",),
    heads_of: Sequence[str] = _JOINED,
    short: int = 3,
) -> None:
    """ "Don't call me or write to me", "Nie dzwońcie ani nie piszcie": a contact verb joined
    to a negated one in its clause by short words only ("or", "me", "to") is negated too; so is
    a removing verb joined to a negated removing one ("Please don't delete or unsubscribe me",
    "Ich möchte nicht gelöscht oder ausgetragen werden", "borttagen eller avregistrerad")."""
    known = {p for v in pos.values() for p in v}
    light = {p for k in ("self", "polite", "please", "negation") for p in pos.get(k, ())}
    heads = sorted(p for k in heads_of for p in negated.get(k, ()))
    for k in kinds:
        for q in sorted(free.get(k, ())):
            for h in heads:
                between = range(h + 1, q)
                if (
                    h < q <= h + 5
                    and clause[h] == clause[q]
                    and all(i in light or (i not in known and len(sentence.words[i]) <= short) for i in between)
                ):
                    free[k].remove(q)
                    negated.setdefault(k, []).append(q)
                    heads.append(q)
                    break
        if k in free and not free[k]:
            del free[k]


def _passive_removal(sentence: Sentence, pos: dict[str, list[int]]) -> None:
    """ "Can I be removed from your list?", "Kann ich aus dem Verteiler gestrichen werden?",
    "¿Podemos ser eliminados de su lista?": a removing verb next to a word of the passive
    (``passive``: be, werden, ser) is no past tense, whatever its ending, and the person
    named as its subject (``subject``: I, we, "podemos") is the one removed."""
    verbs = [v for k in ("remove", "delete", "unsubscribe") for v in pos.get(k, ())]
    passive = [
        v
        for v in verbs
        for a in pos["passive"]
        if (v - 2 <= a < v or a == v + 1) and sentence.clause[a] == sentence.clause[v]
    ]
    if not passive:
        return
    if "past" in pos:
        pos["past"] = [p for p in pos["past"] if p not in passive]
        if not pos["past"]:
            del pos["past"]
    first = min(passive)
    subjects = [s for s in pos.get("subject", ()) if s < first and sentence.clause[s] == sentence.clause[first]]
    if subjects and "self" not in pos:
        pos["self"] = subjects


def _withdraws_consent(sentence: Sentence, c: _Concepts) -> bool:
    """ "Hvis jeg har krydset af i en boks, så trækker jeg samtykket tilbage", "Võtan tagasi
    igasuguse nõusoleku", "Согласие отзываю": consent (``consent``) and a verb that withdraws
    it (``withdraw``) in one sentence, said by the person (named, leading with the verb, or
    in a few words) and not told of the past."""
    if not c.has("consent") or not c.told("withdraw"):
        return False
    return c.has("self", "subject", "law") or _leads(c, "withdraw") or _short(sentence, c)


def _forbids_use(c: _Concepts) -> bool:
    """ "Ma ei luba oma kontaktandmeid teie turunduseks kasutada", "Mina uppgifter ska inte
    användas till marknadsföring", "I do not allow you to use my data": a use (``use``) of the
    person's own data or address, negated, not wished or not permitted (``permit``); "we do not
    use Excel" names no data."""
    if not c.has("use") or not c.has("data", "address") or not c.has("self", "subject"):
        return False
    return c.told_neg("use") or c.told_neg("want") or c.told_neg("permit")


def _bare_no(sentence: Sentence, c: _Concepts) -> bool:
    """ "No.", "Nee.", "Tak, men nej.", "Hayır!": a sentence that is the answer no and nothing
    else but thanks, a greeting or "but" answers our question (a call, a demo) with a refusal;
    "No?" asks.  A no that ends a longer clause is left alone: "Adesso proprio no" is "not
    now", "yes or no" a choice."""
    noes = c.pos.get("answer_no")
    if not noes or len(noes) > 2 or _asked(sentence.text):
        return False
    light = set(noes) | {p for k in ("polite", "please", "but") for p in c.pos.get(k, ())}
    return all(i in light for i in range(len(sentence.words)))


# the reason of a reply that calls our mail spam: the weakest reading of a request
_SPAM = "calls our mail spam"


def _short(sentence: Sentence, c: _Concepts) -> bool:
    """At most three words besides politeness and the person ("Stop.", "Remove us please")."""
    filler = {p for k in ("please", "self", "polite") for p in c.pos.get(k, ())}
    return sum(1 for i in range(len(sentence.words)) if i not in filler) <= 3


def judge_sentence(sentence: Sentence, c: _Concepts, previous: _Concepts | None) -> tuple[str, str] | None:
    """(kind, reason) of a request, refusal, sign of interest or of "later" in one sentence."""
    person = c.has("self", "them")
    target = person or c.has("list", "address")
    # "Kunnen medewerkers zich zelf afmelden?": a question about what others can do asks nothing;
    # "los encargados tienen que borrar a mano los fichajes duplicados": nor does work done by
    # hand, automatically or by someone themselves, told without a wish or "please"
    asking = not _asks_about_others(sentence, c) and not (c.has("ourselves") and not c.has("please", "want"))
    if c.free_("erasure") and asking:
        return "erasure", "invokes the right to erasure"
    # "Emma has left. Her mail is not read any more": no request about her
    left = c.has("left") or (previous is not None and previous.has("left"))
    # "Nous avons supprimé notre ancien prestataire": a report of the past asks nothing,
    # unless it repeats a request ("I asked you to remove me").
    # "remove item 3 from the offer", "take my colleague off this thread": a removal from a
    # thing, a thread or a copy is no removal from our mailing, and a need refused beside it
    # ("we don't need it") is the removed item's
    thing = _from_a_thing(c) or _replaced(c)
    # "I will delete my old account once we switch to you": the person's own plan; "Nem kérem
    # a törlést, csak tudni szeretném": a removal refused
    asking = asking and not _own_plan(c) and not _refused_removal(c) and not _asked_of_them(c)
    # "Lars har sluttet hos oss, og e-postkontoen hans blir slettet": the mailbox of someone who
    # left is being closed; "please", a list or a removal that leads its sentence still asks
    closing = left and not c.has("please", "list") and not _leads(c, "remove", "delete")
    if asking and (c.told("delete") or c.told("remove")) and not _removed_a_mail(c) and not thing and not closing:
        deleting = c.told("delete")
        if c.has("data") and (deleting or not c.has("list")):
            # "cancellate i miei dati e toglietemi dalle liste": deleting the data is erasure
            return "erasure", "asks for their data to be deleted"
        if (c.has("completely") and c.has("store", "address", "data")) or (c.has("completely") and c.has("away")):
            return "erasure", "asks to be deleted from all records"
        # "you can list the keys and call delete for each", "delete them one at a time": with
        # neither the person, an address, a wish, "please" nor the verb leading its sentence,
        # "them" are things, not colleagues, and a list before the verb is no mailing list
        addressed = c.has("self", "please", "address", "want") or _short(sentence, c) or _leads(c, "remove", "delete")
        verbs = [p for k in ("remove", "delete") for p in c.free.get(k, ())]
        after_verb = any(v < p and c.clause[p] == c.clause[v] for v in verbs for p in c.pos.get("list", ()))
        # "listeden silin artık": a verb that ends its clause (but for "any more" and politeness)
        # takes the list in front of it
        after_verb = after_verb or any(
            p < v and c.clause[p] == c.clause[v] and _ends_clause(c, v) for v in verbs for p in c.pos.get("list", ())
        )
        if c.has("list") and (addressed or after_verb):
            return "opt-out", "asks to be removed from the list"
        if deleting and (c.has("store") or (previous is not None and previous.has("data")) or c.has("law")):
            return "erasure", "asks for their data to be deleted"
        if (target and addressed) or c.has("store") or _short(sentence, c) or _wishes_removal(sentence, c):
            return "opt-out", "asks to be removed"
    if asking and c.told("unsubscribe"):
        return "opt-out", "asks to be unsubscribed"
    if asking and c.has("away") and c.has("list") and person and not _kept_on(c):
        return "opt-out", "asks to be taken off the list"
    if c.has("away") and c.has("store") and c.has("completely") and c.has("address", "data", "self"):
        return "erasure", "asks to be deleted from all records"
    if c.free_("object"):
        return "opt-out", "objects to the use of their data"
    if asking and _withdraws_consent(sentence, c):
        return "opt-out", "withdraws their consent"
    if asking and _forbids_use(c):
        return "opt-out", "forbids the use of their data"
    context = previous is not None and previous.has("law", "spam")
    if (_threatens(c, "authority") and (context or _against_us(c))) or (
        _threatens(c, "complain") and (c.has("law", "spam", "data") or context or _one_more_and(c))
    ):
        return "opt-out", "threatens a complaint to the data protection authority"
    if _prefers(sentence, c) or _declines_a_thing(sentence, c):
        # "Please don't phone me, e-mail is fine": a channel or a document preferred;
        # "Demo nepotřebujeme, pošlete rovnou nabídku": the demo is refused, the offer asked for
        return _shown_or_later(c)
    if c.free_("request") and not _hands_over(sentence, c):
        return "opt-out", "asks for no more mail"
    if asking and c.told("stop") and (_stops_contact(c) or _short(sentence, c) or _stop_alone(sentence, c)):
        return "opt-out", "asks us to stop"
    if (
        asking
        and c.neg("contact")
        and not left
        and c.told_neg("contact")
        and (c.has("self", "them", "please") or _short(sentence, c) or _forbids_more(c) or _bare_forbid(sentence, c))
        and not _refers_elsewhere(sentence, c)
    ):
        return "opt-out", "asks not to be contacted"
    if asking and not left and _wants_no_contact(c) and not _refers_elsewhere(sentence, c):
        return "opt-out", "does not want to be contacted"
    if asking and _kept_out(c):
        return "opt-out", "asks for no more mail"
    if c.neg("want") and c.has("store") and c.has("data", "address", "self"):
        return "erasure", "does not want their data kept"
    if asking and c.neg("want") and (_no_wish_for_ours(sentence, c) or _bare_more(sentence, c)):
        return "opt-out", "does not want our mail"
    if c.neg("receive") and c.has("more") and (c.has("mail", "contact") or c.free_("want")) and not c.has("past"):
        # "Ich will das nicht mehr bekommen": a wish not to receive any more
        return "opt-out", "does not want our mail"
    if (
        asking
        and c.neg("receive")
        and c.has("mail")
        and c.has("please", "want")
        and not c.has("past", "left")
        and not _asked(sentence.text)
    ):
        # "Os pedimos que ninguno de nuestros buzones reciba correos vuestros": asked not to receive
        return "opt-out", "does not want our mail"
    if (
        c.neg("mail")
        and not left
        and not _refers_elsewhere(sentence, c)
        and (c.has("more") or _asked_beside(c, "mail") or _short(sentence, c))
    ):
        return "opt-out", "wants no more mail"
    if (
        c.free_("spam")
        and not (c.has("delete", "remove") and _removed_a_mail(c))
        and not _told_complaint(c)
        and not _landed_in_spam(c)
    ):
        # "your mail went to spam and I deleted it": where it landed, reported, is no complaint
        return "opt-out", _SPAM
    # "Aboneliğimi iptal etmek istemiyorum": a refusing wish of staying refuses no one
    staying = any(_wish_to_stay(c, p) for p in c.free.get("refusal", ())) or _refused_removal(c)
    if _asked(sentence.text) and c.has("condition"):
        # "y si al final no nos convence, ¿darse de baja es fácil?": a refusal in a clause of
        # condition is what might be, not what is
        iffy = _conditions(sentence, c)
        refused = [*c.free.get("refusal", ()), *c.negated.get("interest", ())]
        staying = staying or bool(refused and all(c.clause[p] in iffy for p in refused))
    if ((c.neg("interest") or c.free_("refusal")) and not thing and not staying) or _thanks_but_no(sentence, c):
        return "refusal", "is not interested"
    if _bare_no(sentence, c):
        return "refusal", "answers no"
    return _shown_or_later(c)


def _declines_a_thing(sentence: Sentence, c: _Concepts) -> bool:
    """ "Nie potrzebujemy prezentacji, proszę od razu przesłać ofertę", "Δεν χρειαζόμαστε demo,
    στείλτε μας απευθείας προσφορά", "No call needed, just send me the price list": a refusal
    whose clause names a thing (a demo, a call, a document) followed by a later clause that
    asks for something (an offer, a price list) refuses that thing, not us.  The thing may be
    a noun no list knows when it leads the clause right before the negation ("Оглед не ни
    трябва, пратете оферта").  "Not interested at the moment, but send me a price list"
    names no thing: a refusal beside interest, for a person to look at."""
    refused = [*c.free.get("refusal", ()), *c.negated.get("interest", ()), *c.negated.get("contact", ())]
    if not refused or c.has(*_LEFT_OUT) or c.free_("request"):
        return False
    clauses = {c.clause[p] for p in refused}
    if len(clauses) != 1:
        return False
    (where,) = clauses
    things = [p for k in ("thread", "positive", "contact") for p in c.pos.get(k, ()) if c.clause[p] == where]
    if not things:
        start = next(i for i, cl in enumerate(c.clause) if cl == where)
        known = {p for v in c.pos.values() for p in v}
        negs = {p for k in ("negation", "negation_after", "refusal") for p in c.pos.get(k, ())}
        if start in known or len(sentence.words[start]) < 4 or start + 1 not in negs:
            return False
    negs_at = c.negating_clauses
    return any(c.clause[p] > where and c.clause[p] not in negs_at for p in c.free.get("positive", ()))


def _thanks_but_no(sentence: Sentence, c: _Concepts) -> bool:
    """ "Thanks, but no.", "Muchas gracias, pero no.", "Merci, mais non.": thanks, "but" and a
    negation that ends the sentence, with at most one other word, refuse; not "Obrigado, mas
    não posso terça" (a negation with more to say)."""
    if not (c.has("polite") and c.has("but")) or _asked(sentence.text):
        return False
    last = len(sentence.words) - 1
    if last not in c.pos.get("negation", ()):
        return False
    known = {p for k in ("polite", "please", "but", "negation", "self") for p in c.pos.get(k, ())}
    return sum(1 for i in range(last) if i not in known) <= 1


def _shown_or_later(c: _Concepts) -> tuple[str, str] | None:
    """What a sentence that asks nothing still says: doubt, "later" or interest."""
    if c.has("doubt"):
        return "doubt", "takes it back"
    if _later(c):
        return "later", "asks to be contacted later"
    if _shown(c) and not _conceded(c):
        return "positive", "shows interest"
    return None


# a sentence that names one of these asks to be left out whatever else it prefers
_LEFT_OUT = ("more", "spam", "list", "unsubscribe", "remove", "delete", "stop", "complain", "authority", "object",
             "erasure", "law")  # fmt: skip


def _prefers(sentence: Sentence, c: _Concepts) -> bool:
    """ "Please don't phone me, e-mail is fine", "Bitte rufen Sie nicht an, schreiben Sie lieber",
    "Don't send the paper contract, a scan is enough", "No me mandes el PDF, mejor un enlace":
    a negated contact, need or request followed in a later clause by another way or thing
    offered (``instead``: rather, instead, is enough, only) with a word of its own, in a
    clause that negates nothing, is a preference, not an opt-out.  "Don't call or write"
    offers nothing; "don't write any more, rather call my colleague" still says "any more"."""
    offered = c.pos.get("instead")
    if not offered or c.has(*_LEFT_OUT):
        return False
    refused = [*c.negated.get("contact", ()), *c.negated.get("mail", ()), *c.negated.get("receive", ()),
               *c.free.get("request", ())]  # fmt: skip
    sending = {c.clause[p] for k in ("contact", "request") for p in c.pos.get(k, ())}
    # a need refused is about sending only in a clause that sends ("Não precisa mandar o PDF");
    # "I am not interested" in a clause of its own refuses us
    needs = [*c.negated.get("interest", ()), *c.free.get("refusal", ())]
    refused += needs
    if not refused or any(c.clause[p] not in sending for p in needs):
        return False
    first = min(c.clause[p] for p in refused)
    if any(c.clause[p] != first for p in refused):
        return False
    negs = c.negating_clauses
    for p in offered:
        cl = c.clause[p]
        if cl <= first or cl in negs:
            continue
        own = [i for i, w in enumerate(sentence.words) if c.clause[i] == cl and i not in offered and len(w) >= 4]
        if own:
            return True
    return False


def _hands_over(sentence: Sentence, c: _Concepts) -> bool:
    """ "Не пишите мне по этому вопросу, пишите Ольге из закупок", "Don't write to me about
    this, write to Olga in purchasing": a negated contact (or a request that carries its
    negation) without "any more", followed in a later clause that negates nothing by the same
    contact verb leading that clause, hands the matter to someone else."""
    if c.has(*_LEFT_OUT):
        return False
    refused = [*c.negated.get("contact", ()), *c.free.get("request", ())]
    if not refused:
        return False
    first = min(c.clause[p] for p in refused)
    own = [w for i, w in enumerate(sentence.words) if c.clause[i] == first]
    negs = c.negating_clauses
    filler = {p for k in ("please", "polite") for p in c.pos.get(k, ())}
    for p in c.free.get("contact", ()):
        cl = c.clause[p]
        if cl <= first or cl in negs:
            continue
        lead = next(i for i in range(len(sentence.words)) if c.clause[i] == cl and i not in filler)
        if lead == p and any(_same_verb(sentence.words[p], w) for w in own):
            return True
    return False


def _same_verb(a: str, b: str) -> bool:
    """The same verb with a prefix or another ending: "пишите", "تواصلوا" / "تتواصلوا",
    "kirjoittako" / "kirjoittakaa"."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) >= 4 and long.endswith(short) and len(long) - len(short) <= 2:
        return True
    # Finnish "älkää kirjoittako ..., kirjoittakaa": the negative imperative is another ending
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(short))
    return shared >= 6 and shared >= len(short) - 2 and len(long) - len(short) <= 1


def _asked_beside(c: _Concepts, name: str) -> bool:
    """A "please" in the clause of a negated ``name`` ("Bitte keine Mails"), not in another
    one that asks something else ("Nu găsesc mailul, îl puteți retrimite?")."""
    negated = {c.clause[p] for p in c.negated.get(name, ())}
    return any(c.clause[p] in negated for p in c.pos.get("please", ()))


def _threatens(c: _Concepts, name: str) -> bool:
    """A free complaint or authority that is no report of the past: "we complained to the CNIL
    about another firm last year", "W zeszłym roku złożyliśmy skargę do UODO" tell what
    happened, "I will report you to the ICO" threatens.  In a clause that reports the past it
    still counts when that clause names our mail, contacting, spam or "any more" ("I have
    already reported your mails to the ICO")."""
    free = c.free.get(name, ())
    if not free:
        return False
    past = c.past_clauses()
    if not past:
        return True
    # not spam, nor "spam" read as mail: "we complained about another firm because of spam"
    # is what happened
    spam = set(c.pos.get("spam", ()))
    ours = {c.clause[p] for k in ("contact", "mail", "more") for p in c.pos.get(k, ()) if p not in spam}
    return any(c.clause[p] not in past or c.clause[p] in ours for p in free)


def _landed_in_spam(c: _Concepts) -> bool:
    """ "Viestisi oli mennyt roskapostiin", "mailul tău ajunsese la spam", "već sam to htio
    obrisati kao spam": spam with our mail or a deleting verb in a clause that reports the past
    (or what nearly happened), with no complaint in it, tells where the mail landed or nearly
    did."""
    if c.has("complain", "authority"):
        return False
    past = c.past_clauses()
    spam = set(c.pos["spam"])
    told = {c.clause[p] for k in ("mail", "delete", "remove") for p in c.pos.get(k, ()) if p not in spam}
    return all(c.clause[p] in past and c.clause[p] in told for p in c.free["spam"])


def _told_complaint(c: _Concepts) -> bool:
    """ "Last year we complained to the regulator about another firm because of spam": spam in
    a clause that reports the past beside a complaint or an authority that is no threat tells
    what happened to someone else."""
    if not c.has("complain", "authority") or _threatens(c, "complain") or _threatens(c, "authority"):
        return False
    past = c.past_clauses()
    return all(c.clause[p] in past for p in c.free["spam"])


def _against_us(c: _Concepts) -> bool:
    """An authority named with a complaint, our mail or contact, spam, the law, the person's
    data or plan, or "any more" ("I will go to the ICO", "one more mail and it goes to the
    CNIL"), or one the person turns to ("Ich gehe zur Datenschutzbehörde"); the subject of a
    statement is a mention ("Die Datenschutzbehörde verlangt von uns Schulungen. Bieten Sie
    sowas an?")."""
    if c.has("complain", "more", "contact", "mail", "receive", "plan", "spam", "data", "object", "erasure", "stop"):
        return True
    # the authority's own name may be a law word too ("Datenschutzbehörde")
    if any(p not in c.pos["authority"] for p in c.pos.get("law", ())):
        return True
    # the subject of a statement leads its clause ("The ICO requires us to ..."); one gone to
    # comes after the person's words ("Ich gehe zur Datenschutzbehörde")
    starts = {cl: i for i, cl in reversed(list(enumerate(c.clause)))}
    return any(p > starts[c.clause[p]] + 1 for p in c.pos["authority"])


def _one_more_and(c: _Concepts) -> bool:
    """ "If you email me again I will report you", "Если вы ещё раз напишете, я на вас
    пожалуюсь", "One more mail and I'll sue": a complaint after both our contact or mail and
    "again / any more" is the threat that follows the condition (not "our clients complain
    more and more about phishing mails")."""
    ours = [p for k in ("contact", "mail") for p in c.pos.get(k, ())]
    more = c.pos.get("more", ())
    if not ours or not more or c.has("past", "positive", "interest", "question"):
        return False
    return any(max(min(ours), min(more)) < p for p in c.free.get("complain", ()))


def _later(c: _Concepts) -> bool:
    """ "Write again next year", not "we had a case in the spring" (a report of the past) nor
    "not now and not later either" ("nyt eikä myöhemmin": a later right after a negation)."""
    past = c.past_clauses()
    negs = {p for k in ("negation", "negation_after") for p in c.pos.get(k, ())}
    laters = [p for p in c.pos.get("later", ()) if c.clause[p] not in past]
    negated = [p for p in laters if any(n in negs and c.clause[n] == c.clause[p] for n in (p - 1, p - 2, p - 3))]
    # "Inte nu, inte efter nyår och inte när ni har en ny kampanj": a "not now" beside a
    # later refused refuses that too ("Not before spring, write in March" still asks later)
    not_now = {p for p in laters if p in negs or p + 1 in negs}
    return any(p not in negated and not (negated and p in not_now) for p in laters)


def _conceded(c: _Concepts) -> bool:
    """ "Sounds interesting, but we have just signed with another supplier": interest that a
    "but" after it turns round is conceded, not shown."""
    shown = _shown(c)
    buts = c.pos.get("but", ())
    return bool(shown and buts) and max(shown) < max(buts)


def _shown(c: _Concepts) -> list[int]:
    """Positions of signs of interest that count: not "thank you for your interest", not in
    a clause that reports the past ("wir hatten letztes Jahr ein Gespräch mit einem Anbieter"),
    not in one that refuses ("een demo heeft dus geen zin") and not right after a negation
    ("ärge helistage mulle")."""
    found = c.free.get("positive", []) + ([] if _thanked(c) else c.free.get("interest", []))
    if not found:
        return found
    closed = c.past_clauses() | {c.clause[p] for k in ("refusal",) for p in c.pos.get(k, ())}
    closed |= {c.clause[p] for p in c.negated.get("interest", ())}
    # "Ärge helistage mulle", "Älä soita minulle": right after a negation or a request
    # phrase that carries one, "call me" is what the person forbids
    forbidding = {
        p + 1
        for k in ("negation", "request", "refusal")
        for p in c.pos.get(k, ())
        if p + 1 < len(c.clause) and c.clause[p + 1] == c.clause[p]
    }
    return [p for p in found if c.clause[p] not in closed and p not in forbidding]


def _asks_about_others(sentence: Sentence, c: _Concepts) -> bool:
    """A question that names neither the person (or their company), a list nor an address and
    says no "please" ("Can employees unsubscribe themselves?", "Kann man die Simulationen so
    einstellen, dass die Geschäftsführung nicht angeschrieben wird?", "Kas hinnas sisaldub
    andmete kustutamine?"): it asks how the product works.  "Can you remove me?" names the
    person, "Could you please stop?" asks, "Can you stop emailing our director?" names the
    company; a role alone ("die Geschäftsführung") is no one the person writes for."""
    asked = _asked(sentence.text)
    if not asked:
        return False
    questions = c.pos.get("question", ())
    # "¿Los empleados pueden darse de baja?": the "can" of a question phrase is no "please"
    please = [p for p in c.pos.get("please", ()) if not any(q < p <= q + 2 for q in questions)]
    # "Can we remove drops ourselves?", "Ali lahko zaposleni sam zahteva izbris ...?": who does
    # it, or whether it happens by itself, is how the product works, whatever "can" asks
    if c.has("ourselves"):
        return True
    if please:
        return False
    if _hypothetical(sentence, c) or _asks_for_information(c):
        return True
    if questions:
        # "Can my team unsubscribe contacts in bulk?", "Wie gehen Ihre Kunden mit Löschanfragen
        # um?": a question word asks how the product works, whoever and whatever it names
        return True
    if c.has("self", "address", "list"):
        return False
    # A lone word ("Stop?", "Unsubscribe?") asks about nothing else: it is the request itself.
    filler = {p for k in ("please", "polite") for p in c.pos.get(k, ())}
    return sum(1 for i in range(len(sentence.words)) if i not in filler) > 1


def _asks_for_information(c: _Concepts) -> bool:
    """ "What happens to our data if we cancel, is it deleted?", "Wie läuft die Löschung unserer
    Daten ab?", "Who deletes the records, you or us?": a question led by a question word
    (``interrogative``) asks how something is done, not for it to be done.  Not one about a
    list, unsubscribing or our mail ("How do I get off your list?", "How do I unsubscribe?",
    "Why do you keep emailing me?"): that is the person wanting out."""
    words = c.pos.get("interrogative")
    if not words:
        return False
    lead = c.leading_word
    light = {p for k in ("conjunction", "but") for p in c.pos.get(k, ())}
    if lead not in words and not (lead in light and lead + 1 in words):
        return False
    return not c.has("list", "unsubscribe", "contact", "mail", "receive", "more", "spam", "complain", "authority")


def _hypothetical(sentence: Sentence, c: _Concepts) -> bool:
    """ "Kui me lepingu lõpetame, kas te kustutate meie andmed?", "Question préalable : si nous
    résilions, comment se passe la suppression ?", "és ha egy vevő leiratkozik, ...?": a
    question with a clause of condition (``_conditions``) asks what would happen, not for it
    to be done."""
    return bool(_conditions(sentence, c))


def _conditions(sentence: Sentence, c: _Concepts) -> frozenset[float]:
    """The clauses of condition of a sentence: led by a condition word (after a greeting,
    "and" or a short word at most), followed by another clause and with nothing refused before.
    The condition needs a word of its own that no list knows (what the person would do: cancel, end the contract):
    "If possible, can you remove me?", "If you can, ..." make none, and neither does one about
    our mail ("if you keep emailing me, ...")."""
    spots = c.pos.get("condition")
    if not spots:
        return frozenset()
    known = {p for v in c.pos.values() for p in v}
    light = {p for k in ("please", "polite", "conjunction") for p in c.pos.get(k, ())}
    ours = {c.clause[p] for k in ("contact", "receive", "spam") for p in c.pos.get(k, ())}
    last = max(c.clause)
    found = set()
    for s in spots:
        where = c.clause[s]
        start = next(i for i, cl in enumerate(c.clause) if cl == where)
        before = range(start, s)
        if len(before) > 2 or any(i not in light and len(sentence.words[i]) > 3 for i in before):
            continue
        if where == last or where in ours:
            continue
        refused = [p for v in c.negated.values() for p in v]
        refused += [p for k in ("refusal", "request") for p in c.pos.get(k, ())]
        if any(c.clause[p] < where for p in refused):
            continue  # "Negribu saņemt vēstules, bet ja ...?": the refusal comes before the condition
        own = [i for i in range(s + 1, len(sentence.words)) if c.clause[i] == where]
        if len(own) >= 2 and any(i not in known and len(sentence.words[i]) >= 5 for i in own):
            found.add(where)
    return frozenset(found)


_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")


def _asked(text: str) -> bool:
    """Whether a sentence ends with a question mark: "?" in every script, and the Greek ";"
    (its own sign or the semicolon it is typed with) in a Greek sentence."""
    text = text.rstrip()
    if text.endswith(("?", "؟", "？")):
        return True
    return text.endswith((";", "\u037e")) and _GREEK.search(text) is not None


def _stops_contact(c: _Concepts) -> bool:
    """A free "stop" with contacting, our mail, spam or receiving in its own clause: "please
    stop emailing me", not "we stopped working with them, so email me" or "we stop with our
    current supplier"."""
    others = [p for k in ("contact", "mail", "spam", "receive") for p in c.pos.get(k, ())]
    return any(c.clause[p] == c.clause[q] for p in c.free.get("stop", ()) for q in others)


def _refers_elsewhere(sentence: Sentence, c: _Concepts) -> bool:
    """ "Please don't write to me, write to my colleague Anna instead", "schreiben Sie nicht
    mir, sondern meiner Kollegin": after the negated contact, a clause without negation that
    names someone else (or an address) and contacts them or starts with "but", or a "but"
    clause with another way of contacting, is a referral or a correction."""
    negated = [*c.negated.get("contact", ()), *c.negated.get("mail", ())]
    if not negated:
        return False
    if _hands_over(sentence, c):
        return True
    first = min(c.clause[p] for p in negated)
    if _corrects(c, first):
        return True
    negs = {c.clause[p] for k in ("negation", "negation_after") for p in c.pos.get(k, ())}
    contacts = {c.clause[p] for p in c.free.get("contact", ())}
    buts = {c.clause[p] + 0.25 for p in c.pos.get("but", ())}  # the words after "but"
    others = {c.clause[p] for p in c.pos.get("them", ())}
    if _ADDRESS.search(sentence.text):
        others |= {cl for cl in set(c.clause) if cl > first}
    # "nicht per Post, sondern per Mail": after a "but", another way of contacting is a correction
    # (not "..., però se ha un listino me lo mandi": sending *me* something else is no correction)
    own = {c.clause[p] for p in c.pos.get("self", ())}
    others |= (contacts & buts) - own
    if any(cl > first and cl not in negs and (cl in contacts or cl in buts) for cl in others):
        return True
    # "don't send it to my personal email, use my work address": an address in the negated
    # clause and another one of the person's in a later clause that asks nothing else
    channels = {c.clause[p] for k in ("address", "mail") for p in c.pos.get(k, ())}
    asks = {c.clause[p] for k in ("remove", "delete", "unsubscribe", "stop", "refusal") for p in c.pos.get(k, ())}
    addresses = {c.clause[p] for p in c.pos.get("address", ())}
    return first in addresses and any(cl > first and cl not in negs and cl not in asks and cl in own for cl in channels)


def _leads(c: _Concepts, *names: str) -> bool:
    """Whether a free ``names`` concept is the sentence's first word besides greetings and
    politeness (an imperative: "Remove him from the list")."""
    return any(c.leading_word in c.free.get(name, ()) for name in names)


def _stop_alone(sentence: Sentence, c: _Concepts) -> bool:
    """A "stop" in a clause of at most three words besides politeness and the person:
    "Okamžite to zastavte, inak ..." ("stop it at once, or ...")."""
    filler = {p for k in ("please", "self", "polite") for p in c.pos.get(k, ())}
    wants = {c.clause[p] for p in c.free.get("want", ())}
    ours = {c.clause[p] for k in _OURS for p in c.pos.get(k, ())}
    for p in c.free.get("stop", ()):
        words = [i for i in range(len(sentence.words)) if c.clause[i] == c.clause[p] and i not in filler]
        if len(words) > 3:
            continue
        # "Szeretnénk abbahagyni, hogy éjjel én válaszolgatok" (we'd like to stop answering
        # customers at night myself): a wish to stop told in the next clause, which names
        # nothing of ours, is the person's own plan
        told_after = any(cl > c.clause[p] for cl in set(c.clause)) and not any(cl > c.clause[p] for cl in ours)
        if not (c.clause[p] in wants and told_after):
            return True
    return False


# what a clause names when it is about our mail
_OURS = ("contact", "mail", "spam", "receive", "complain", "authority", "law", "more")


def _wants_no_contact(c: _Concepts) -> bool:
    """ "Wir möchten nicht kontaktiert werden", "vi ønsker ikke å bli kontaktet": a wish in
    front of a negated contact in its clause is the request, whoever the negation attached to."""
    if c.has("left"):
        return False
    wants = [p for p in c.free.get("want", ()) if c.clause[p] not in c.past_clauses()]
    return any(w < p and c.clause[w] == c.clause[p] for w in wants for p in c.negated.get("contact", ()))


def _removed_a_mail(c: _Concepts) -> bool:
    """ "Tu correo llegó a spam y lo borré", "I deleted your mail by mistake", "please delete
    the attachment I sent you by mistake yesterday": in a sentence that reports the past,
    removing with only a mail in sight is what the person did or wants done with a message,
    not what they ask of us.  A list, address, data or record counts against it in the
    clause of the removing verb, or in a clause of the person's own that reports nothing
    ("the file in my previous mail was sent by mistake" is no "my data")."""
    verbs = {p for k in ("remove", "delete") for p in c.pos.get(k, ())}
    # a past ending on the removing verb alone is no proof: Czech "abyste nás vyřadili" asks
    reported = any(p not in verbs for p in c.pos.get("past", ()))
    if not reported or not c.has("mail"):
        return False
    verb_clauses = {c.clause[p] for p in verbs}
    if any(c.clause[p] in verb_clauses for p in c.pos.get("self", ())) and not any(
        c.clause[p] in verb_clauses for k in ("mail", "past") for p in c.pos.get(k, ())
    ):
        # "Vi prego di cancellarmi, ho deciso di non ricevere più proposte": the person removed,
        # the mail and the past told in another clause
        return False
    past = c.past_clauses()
    own = {c.clause[p] for p in c.pos.get("self", ())} - past
    targets = [p for k in ("list", "address", "data", "store") for p in c.pos.get(k, ())]
    return not any(c.clause[p] in verb_clauses or c.clause[p] in own for p in targets)


def _wishes_removal(sentence: Sentence, c: _Concepts) -> bool:
    """ "I'd like to be removed", "Ich möchte gelöscht werden", "Chtěl bych být odstraněn":
    a wish before the removing verb with at most two short words besides in its clause ("to
    be", "werden", "bych být") is the person's own removal; "I would like to remove the
    duplicates in our CRM" names what is removed, "Ich möchte das Feld löschen" a thing (a
    capitalised word after the first: a noun or a name), "remove them" someone else."""
    if c.has("them", "mail", "thread", "list", "address", "data", "store"):
        return False
    known = {p for k in ("want", "please", "polite", "self", "more") for p in c.pos.get(k, ())}
    verbs = [p for k in ("remove", "delete") for p in c.free.get(k, ())]
    marked = set(c.pos.get("past", ())) - set(verbs)  # the participle itself may look past
    for v in verbs:
        clause = [i for i in range(len(sentence.words)) if c.clause[i] == c.clause[v]]
        objects = set(c.pos.get("polite", ()))  # "we want to delete it"
        if any(i in marked or (i > v and i in objects) for i in clause):
            continue
        if not any(w < v and c.clause[w] == c.clause[v] for w in c.free.get("want", ())):
            continue
        others = [sentence.words[i] for i in clause if i != v and i not in known and len(sentence.words[i]) > 2]
        if len(others) <= 2 and all(len(w) <= 6 for w in others) and not _names_a_noun(sentence.text):
            return True
    return False


def _names_a_noun(text: str) -> bool:
    """A capitalised word after the first (not "I"): a German noun, a name."""
    return any(w[:1].isupper() and w != "I" and not w.startswith("I'") for w in text.split()[1:])


def _kept_on(c: _Concepts) -> bool:
    """ "Ta inte bort mig från listan", "Nehmen Sie uns bitte nicht von der Liste": a negated
    removal, or a negation in the clause of "off" that negates nothing else there, asks to
    stay on the list."""
    if c.neg("remove", "unsubscribe", "delete"):
        return True
    negs = [p for k in ("negation", "negation_after") for p in c.pos.get(k, ())]
    negated = {c.clause[p] for v in c.negated.values() for p in v}
    return any(c.clause[n] == c.clause[a] and c.clause[n] not in negated for n in negs for a in c.pos["away"])


def _corrects(c: _Concepts, first: float) -> bool:
    """ "Don't send me the brochure, but the price list", "niet naar mij sturen, maar naar de
    inkoop": after a negated contact with no "any more", a "but" clause that names something
    or someone else and asks, refuses, thanks and negates nothing corrects what to send or to
    whom, it asks nothing.  Not "please don't send me any more emails, but thank you"."""
    if c.has("more", "spam"):
        return False
    buts = {c.clause[p] + 0.25 for p in c.pos.get("but", ())}
    closing = {
        c.clause[p]
        for k in ("negation", "negation_after", "polite", "remove", "delete", "unsubscribe", "stop", "refusal",
                  "complain", "authority", "law", "object", "request")
        for p in c.pos.get(k, ())
    }  # fmt: skip
    return any(cl > first and cl not in closing for cl in buts)


def _forbids_more(c: _Concepts) -> bool:
    """ "Don't send any more offers", "Schicken Sie keine weiteren Angebote", "Nepište už
    více": a negated contact that leads its sentence (an imperative: the negation or the
    negated verb comes first) with "any more" in its clause needs no "me" to be addressed
    to us.  Not "we don't send more than two mails a week" (a statement)."""
    lead = c.leading_word
    negs = {p for k in ("negation", "negation_after") for p in c.pos.get(k, ())}
    if lead not in negs and lead not in c.negated.get("contact", ()):
        return False
    more = {c.clause[p] for p in c.pos.get("more", ())}
    return any(c.clause[p] == c.clause[lead] and c.clause[p] in more for p in c.negated.get("contact", ()))


def _bare_forbid(sentence: Sentence, c: _Concepts) -> bool:
    """ "Don't call or write.", "Nicht anrufen und nicht schreiben.": a sentence led by a
    negation and made of nothing but negations, negated contact verbs and short words
    forbids both."""
    negs = {p for k in ("negation", "negation_after") for p in c.pos.get(k, ())}
    if c.leading_word not in negs:
        return False
    known = negs | {p for k in ("please", "polite", "self") for p in c.pos.get(k, ())}
    known |= set(c.negated.get("contact", ()))
    return all(i in known or len(w) <= 3 for i, w in enumerate(sentence.words))


def _own_plan(c: _Concepts) -> bool:
    """ "We will unsubscribe our team from the old vendor's newsletter", "Ich werde meinen
    alten Account löschen": a ``plan`` word just in front of the removing verb tells
    what the person will do, unless they say "please" or want no more of our mail ("I will
    delete any further emails unread" stays a refusal)."""
    plans = c.pos.get("plan")
    if not plans or c.has("more", "spam"):
        return False
    # "please" asks in the plan's own clause, not in a question after it ("Nous allons supprimer
    # les factures papier, pouvez-vous nous aider ?")
    if any(c.clause[q] == c.clause[p] for q in c.pos.get("please", ()) for p in plans):
        return False
    verbs = [p for k in ("remove", "delete", "unsubscribe", "stop") for p in c.free.get(k, ())]
    # the plan (its first word) governs the verb: at most four words between ("ich werde meinen alten Account
    # löschen"), not "we will be glad if you remove us"
    return any(p < v <= p + 5 and c.clause[p] == c.clause[v] for p in plans for v in verbs)


def _kept_out(c: _Concepts) -> bool:
    """ "Vă rog să nu mă mai includeți în campaniile dumneavoastră", "please don't put me in
    your campaigns any more": "please", the person, a list, a negation and "any more" in one
    clause ask to be kept out of it, whatever the verb."""
    if not c.has("please", "want") or not c.has("self"):
        return False
    negs = {c.clause[p] for k in ("negation", "negation_after") for p in c.pos.get(k, ())}
    more = {c.clause[p] for p in c.pos.get("more", ())}
    return any(c.clause[p] in negs and c.clause[p] in more for p in c.pos.get("list", ()))


def _no_wish_for_ours(sentence: Sentence, c: _Concepts) -> bool:
    """A negated wish with our mail, contacting or receiving: in its own clause, or in a later
    one when the wish has nothing of its own ("Ich möchte nicht, dass Sie mir weiter
    schreiben"); a wish with words of its own ("Nem akarok tovább éjjel válaszolni a
    vásárlóknak, küldjenek árat": I don't want to keep answering customers at night, send a
    price) does not reach the next clause."""
    known = {p for v in c.pos.values() for p in v}
    ours = [p for k in ("mail", "contact", "receive") for p in c.pos.get(k, ())]
    for w in c.negated.get("want", ()):
        if _wish_to_stay(c, w):
            continue
        own = [
            i
            for i in range(w + 1, len(sentence.words))
            if c.clause[i] == c.clause[w] and i not in known and len(sentence.words[i]) >= 3
        ]
        if any(c.clause[p] <= c.clause[w] or len(own) < 2 for p in ours):
            return True
    return False


def _bare_more(sentence: Sentence, c: _Concepts) -> bool:
    """A negated wish with only "any more" after it ("Je n'en veux plus", "ich will nichts
    mehr davon"), not one that wants no more of something else: "we don't want to pay more
    for licences" has a verb no list knows between the wish and the "more", "wir wollen nicht
    mehr so viel für Lizenzen zahlen" more than one such word after it."""
    known = {p for v in c.pos.values() for p in v}

    def unknown(i: int) -> bool:
        return i not in known and len(sentence.words[i]) >= 3

    for w in c.negated.get("want", ()):
        if _wish_to_stay(c, w):
            continue
        for m in c.pos.get("more", ()):
            if m > w and c.clause[m] == c.clause[w] and not any(unknown(i) for i in range(w + 1, m)):
                after = [i for i in range(m + 1, len(sentence.words)) if c.clause[i] == c.clause[m] and unknown(i)]
                if len(after) <= 1:
                    return True
    return False


def _replaced(c: _Concepts) -> bool:
    """ "Удалите старый адрес нашего склада и внесите новый", "remove our old address and use
    the new one": removing an address with "new" after both corrects what we hold, it asks to
    stay.  Not "remove me from your list, we have a new supplier", "delete me, we have a new
    provider": without an address removed the new thing is something else."""
    if c.has("list", "data", "more", "spam", "unsubscribe", "stop", "complain", "authority", "object", "erasure"):
        return False
    verbs = [p for k in ("remove", "delete") for p in c.free.get(k, ())]
    addresses = c.pos.get("address", ())
    return any(v < p and a < p for v in verbs for a in addresses for p in c.pos.get("replacement", ()))


def _from_a_thing(c: _Concepts) -> bool:
    """ "Please remove item 3 from the offer", "nehmen Sie meinen Kollegen aus dem Verlauf",
    "usuńcie z oferty szkolenie": a removing verb with a thread, a copy or a document in the
    sentence and no list, address, data, record or other mail of ours (not "remove me from
    your offers and newsletters") takes something off that thing, not off our mailing."""
    things = c.pos.get("thread")
    if not things or not (c.free.get("remove") or c.free.get("delete")):
        return False
    if c.has("list", "address", "data", "store"):
        return False
    return all(p in things for p in c.pos.get("mail", ()))


def _thanked(c: _Concepts) -> bool:
    """ "Thank you for your interest": the person thanks us for ours, which is no interest of theirs."""
    thanks = {c.clause[p] for p in c.pos.get("polite", ())}
    return all(c.clause[p] in thanks for p in c.free.get("interest", ()))


_REQUESTS = ("opt-out", "erasure")
_ACROSS = frozenset({"refusal", "polite", "positive", "later", "not_request", "left", "doubt"})
_TARGETS = frozenset({"data", "store", "list", "address"})
EXPLICIT_REASONS = frozenset(
    {
        "asks to be removed",
        "asks to be removed from the list",
        "asks to be unsubscribed",
        "asks to be taken off the list",
        "objects to the use of their data",
        "withdraws their consent",
        "forbids the use of their data",
        "threatens a complaint to the data protection authority",
        "asks for no more mail",
        "asks us to stop",
    }
)


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    evidence: str = ""  # the sentence(s) that decided, as written
    where: str = ""
    language: str | None = None
    reason: str = ""
    explicit: bool = False  # a request in so many words, which an absence notice never makes


def read_sentences(
    found: Sequence[Sentence], lex: Lexicon, guess: str | None, latin: Lexicon | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    previous: dict[str, _Concepts] = {}
    last_positive: Finding | None = None  # the previous sentence's only finding, a sign of interest
    for sentence in found:
        tagged = tag(sentence, lex, latin if latin_typed(sentence, guess) else None, guess)
        english = tagged.at.get("en")
        best: Finding | None = None
        extra: list[Finding] = []
        views: dict[str, _Concepts] = {}
        # Only the languages that know the most words of the sentence read it (and the
        # reply's language): a sentence in Croatian is not read with the Spanish lists,
        # which do not know its negations.
        covered = tagged.covered
        cover = {lg: len(set(covered.get(lg, ())).union(*found.values())) for lg, found in tagged.at.items()}
        best_cover = max(cover.values(), default=0)
        if guess in cover and cover[guess] >= best_cover - 1:
            # the reply's language, and any that knows strictly more of the sentence's words
            readers = [guess] + [lg for lg, n in cover.items() if n > cover[guess]]
        else:
            readers = [lg for lg, n in cover.items() if n == best_cover]
        # The guessed language first, so that its reading wins a tie.
        order = sorted(readers, key=lambda lg: (lg != guess, lg != "en", lg))
        for lang in order:
            c = _concepts(sentence, lang, tagged.at[lang], english)
            views[lang] = c
            got = judge_sentence(sentence, c, previous.get(lang))
            if got is None:
                continue
            kind, reason = got
            f = Finding(kind, lang, reason, sentence)
            if kind in ("positive", "later", "doubt"):
                # in the reply's language; "later" also in one that knows more of the sentence
                # (a Norwegian "ta kontakt igjen i januar" in a reply guessed Danish)
                if lang in (guess, order[0]) or guess is None or kind == "later":
                    extra.append(f)
                continue
            if best is None or _rank(kind) > _rank(best.kind):
                best = f
            # interest or "later" in another clause of the same sentence
            if _later(c):
                extra.append(Finding("later", lang, "asks to be contacted later", sentence))
            if c.has("doubt"):
                extra.append(Finding("doubt", lang, "takes it back", sentence))
            if _positive_elsewhere(c):
                extra.append(Finding("positive", lang, "shows interest", sentence))
        if (
            last_positive is not None
            and not any(f.kind in _REQUESTS for f in findings)
            and any(c.has("but") and not _shown(c) for lg, c in views.items() if lg in (guess, order[0]))
        ):
            # "Ihr Ansatz ist sicher interessant. Wir sind aber gebunden.": interest that the
            # next sentence turns round with a "but", before anything was asked, is conceded
            findings = [f for f in findings if f is not last_positive]
        last_positive = None
        if best is not None:
            findings.append(best)
            # another language's reading of the same words is no sign of interest
            extra = [f for f in extra if f.language == best.language]
        elif extra and extra[0].kind == "positive" and len({f.kind for f in extra}) == 1:
            last_positive = extra[0]
        seen = set()
        for f in extra:
            if f.kind not in seen:
                seen.add(f.kind)
                findings.append(f)
        previous = views
    return findings


def _rank(kind: str) -> int:
    return {"refusal": 1, "opt-out": 2, "erasure": 3}.get(kind, 0)


def _positive_elsewhere(c: _Concepts) -> bool:
    """A sign of interest in a sentence that also asks to stop, unless a "but" turns it round."""
    pos = _shown(c)
    if not pos:
        return False
    buts = c.pos.get("but", [])
    requests = [p for k in ("remove", "delete", "unsubscribe", "stop", "refusal", "interest") for p in c.pos.get(k, [])]
    # "sounds interesting, but please take us off the list"
    return not (buts and requests and max(pos) < max(buts) < max(requests))


def decide(findings: Sequence[Finding], guess: str | None, referral: bool = False) -> Judgement:
    """``referral``: the text names someone else's address ("talk to jan@..."), so a bare
    "not interested" is "not me", not "not us"."""
    requests = [f for f in findings if f.kind in _REQUESTS]
    refusals = [f for f in findings if f.kind == "refusal"]
    positives = [f for f in findings if f.kind in ("positive", "doubt")]
    laters = [f for f in findings if f.kind == "later"]
    deciding = requests or refusals
    if not deciding:
        return Judgement("none", language=guess)
    first = deciding[0]
    evidence = " ".join(dict.fromkeys(f.sentence.text for f in deciding[:3]))
    where = f"body line {first.sentence.line}"
    language = first.language
    if positives and all(f.reason == _SPAM for f in deciding):
        # "A colleague clicked on a spam mail last week, so yes, Tuesday works": spam named in
        # a reply that shows interest is some other mail's, not a name for ours
        return Judgement("none", language=language, reason=f"names spam, but {positives[0].reason}")
    if positives:
        other = positives[0]
        reason = f"{first.reason}, but {other.reason}: {other.sentence.text!r}"
        return Judgement("uncertain", evidence, where, language, reason, any(f.explicit for f in requests))
    if not requests and laters:
        return Judgement("none", language=language, reason=f"not now: {laters[0].sentence.text!r}")
    if not requests and referral:
        return Judgement("none", language=language, reason="refers us to someone else")
    outcome: Outcome = "erasure" if any(f.kind == "erasure" for f in requests) else "opt-out"
    reasons = "; ".join(dict.fromkeys(("refuses: " if f.kind == "refusal" else "") + f.reason for f in deciding))
    return Judgement(outcome, evidence, where, language, reasons, any(f.explicit for f in requests))


def guess_language(words: Sequence[str], rules: ReplyRules) -> str | None:
    votes: dict[str, int] = {}
    for word in words:
        for code in rules.common_words.get(word, ()):
            votes[code] = votes.get(code, 0) + 1
    if votes:
        count = max(votes.values())
        if count < 2:
            return None
        tied = [code for code, n in votes.items() if n == count]
        if len(tied) == 1:
            return tied[0]
        # A tie of short words ("de", "la" in "Dezabonați-mă de la newsletter") goes to the
        # language that reads more in the text's words ("dezabonati-ma" is a Romanian
        # unsubscribe and "me"), then to English: its short words are the ones other
        # languages borrow
        known = dict.fromkeys(tied, 0)
        for word in dict.fromkeys(words):
            for code, _ in rules.lexicon.senses(word):
                if code in known:
                    known[code] += 1
        return max(tied, key=lambda code: (known[code], code == "en"))
    return None


def _is_signoff(line: str, rules: ReplyRules) -> bool:
    return rules.signoffs is not None and rules.signoffs.fullmatch(normalize(line.rstrip(" ,.!-"))) is not None


# "Sent from my iPhone", "Išsiųsta iš mano iPhone", "Von meinem Samsung Galaxy gesendet", "Get
# Outlook for Android": a mobile client's line names the device in every language
_DEVICE = re.compile(r"\b(?:iPhone|iPad|Android|Samsung|Galaxy|BlackBerry|Huawei|Xiaomi|Outlook for)\b", re.IGNORECASE)


def _is_device_line(line: str) -> bool:
    return len(line.split()) <= 7 and _DEVICE.search(line) is not None


def _is_disclaimer(line: str, rules: ReplyRules) -> bool:
    if len(line) < 40:
        return False
    words = tokens(line)
    present = frozenset(words)
    notices = rules.notices
    return any(c == "disclaimers" for w in words for _, c in notices.senses(w)) or any(
        e.concept == "disclaimers"
        for i, w in enumerate(words)
        if notices.starts_phrase(w)
        for _, _, e in notices.phrase_hits(words, i, present)
    )


def person_text(text: str, rules: ReplyRules) -> str:
    """What the person wrote without the sign-off and what follows it (name, title, phone,
    company register, confidentiality notice): lines after it are blanked, so line numbers stay."""
    lines = text[:MAX_TEXT_CHARS].split("\n")
    out: list[str] = []
    seen_text = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            out.append("")
            continue
        if (seen_text and (_is_signoff(stripped, rules) or _is_device_line(stripped))) or _is_disclaimer(
            stripped, rules
        ):
            break
        seen_text = True
        out.append(line)
    return "\n".join(out)


def auto_reply_phrase(text: str, rules: ReplyRules) -> tuple[str, str] | None:
    """(phrase, language) of an absence notice or ticket acknowledgement in the body."""
    words = tokens(text[:4000])
    present = frozenset(words)
    for i, word in enumerate(words):
        for code, concept in rules.notices.senses(word):
            if concept == "auto_reply":
                return word, code
        if not rules.notices.starts_phrase(word):
            continue
        for _, code, entry in rules.notices.phrase_hits(words, i, present):
            if entry.concept == "auto_reply":
                return entry.text, code
    return None


def _subject_text(subject: str, rules: ReplyRules) -> str:
    folded = fold(subject)
    if rules.reply_prefix is not None:
        folded = rules.reply_prefix.sub("", folded)
    return folded.strip()


def _whole(sentence: Sentence, lex: Lexicon, language: str) -> bool:
    """Whether the subject is mostly the request ("unsubscribe", "Remove me from your list"),
    not our own subject coming back in "Re:" ("Stop losing deals")."""
    covered = sum(1 for w in sentence.words if any(lg == language for lg, _ in lex.senses(w)))
    return (len(sentence.words) - covered) * 2 < len(sentence.words)


def _is_name_line(sentence: Sentence, lex: Lexicon, guess: str | None) -> bool:
    """The last line a single capitalised word that neither the reply's language nor English
    knows: a first name under the text ("Silvia", which Turkish reads as "sil" = delete),
    not "Stop" or "Abmelden"."""
    text = sentence.text.strip()
    if guess is None or len(sentence.words) != 1 or not text.isalpha() or not text[:1].isupper():
        return False
    return text[1:].islower() and not any(lg in (guess, "en") for lg, _ in lex.senses(sentence.words[0]))


@dataclass
class _SubjectReadings:
    """Replies to one campaign share its subject ("Re: <our subject>"): its reading is kept
    for the word lists in use (a reload brings new lists and starts afresh)."""

    lexicon: Lexicon | None = None
    found: dict[tuple[str | None, str], Finding | None] = dataclasses.field(default_factory=dict)


_SUBJECTS = _SubjectReadings()
_SUBJECT_READINGS = 4096


def _subject_request(subject: str, rules: ReplyRules, guess: str | None) -> Finding | None:
    """The request the subject makes by itself (our List-Unsubscribe mailto sets it), if any."""
    if _SUBJECTS.lexicon is not rules.lexicon:
        _SUBJECTS.lexicon = rules.lexicon
        _SUBJECTS.found = {}
    key = (guess, subject)
    if key in _SUBJECTS.found:
        return _SUBJECTS.found[key]
    found: Finding | None = None
    subject_sentences = sentences(_subject_text(subject, rules))
    if subject_sentences:
        for f in read_sentences(subject_sentences[:1], rules.lexicon, guess):
            if f.kind in _REQUESTS and _whole(f.sentence, rules.lexicon, f.language):
                found = Finding(f.kind, f.language, f.reason, Sentence(subject, 0, (), ()))
                break
    if len(_SUBJECTS.found) < _SUBJECT_READINGS:
        _SUBJECTS.found[key] = found
    return found


_BODIES: dict[tuple[str, int], tuple[ReplyRules, str, tuple[Sentence, ...], str | None]] = {}
_BODY_MEMO = 64


def read_body(new_text: str, rules: ReplyRules) -> tuple[list[Sentence], str | None]:
    """The sentences of what the person wrote (``person_text``, before a first name under the
    text is dropped) and the language their words tell, kept for the last few texts so that
    the same reply read again (by ``judge`` or by a caller looking at its sentences) costs a
    look-up."""
    _, body, guess = _read_body(new_text, rules)
    return list(body), guess


def _read_body(new_text: str, rules: ReplyRules) -> tuple[str, tuple[Sentence, ...], str | None]:
    key = (new_text, id(rules))
    kept = _BODIES.get(key)
    if kept is None or kept[0] is not rules:
        if len(_BODIES) >= _BODY_MEMO:
            _BODIES.clear()
        text = person_text(new_text, rules)
        body = tuple(sentences(text))
        guess = guess_language([w for s in body for w in s.words], rules)
        kept = _BODIES[key] = (rules, text, body, guess)
    return kept[1], kept[2], kept[3]


def _alone(sentence: Sentence, rules: ReplyRules, guess: str | None) -> Finding | None:
    """ "Хватит!", "Genug!", "Enough is enough.": a reply that is nothing but a word or phrase
    of ``alone`` has had enough; the same word in a longer sentence ("нам хватит тарифа",
    "good enough for us") says nothing."""
    tagged = tag_in_reply(sentence, rules, guess)
    for lang, at in tagged.at.items():
        spots = at.get("alone")
        if spots and len(set(spots) | tagged.covered.get(lang, set())) == len(sentence.words):
            return Finding("refusal", lang, "has had enough", sentence)
    return None


def _only_polite(sentence: Sentence, rules: ReplyRules, guess: str | None) -> bool:
    """A sentence of thanks or greeting only ("Ačiū.", "Thanks!"): "Užteks. Ačiū" is the
    word of having had enough alone."""
    tagged = tag(sentence, rules.lexicon, None, guess)
    return any(
        len({p for k in ("polite", "please") for p in at.get(k, ())}) == len(sentence.words)
        for at in tagged.at.values()
    )


def judge(subject: str, new_text: str, rules: ReplyRules) -> Judgement:
    text, found, guess = _read_body(new_text, rules)
    body = list(found)
    if len(body) > 1 and body[-1].line != body[-2].line and _is_name_line(body[-1], rules.lexicon, guess):
        body = body[:-1]
    findings = read_sentences(body, rules.lexicon, guess, rules.latin)
    said = [s for s in body if not _only_polite(s, rules, guess)] if len(body) > 1 and not findings else body
    if len(said) == 1 and not findings:
        alone = _alone(said[0], rules, guess)
        if alone is not None:
            findings = [alone]
    subject_finding = _subject_request(subject, rules, guess)
    if subject_finding is not None:
        findings = [subject_finding, *findings]
    judgement = decide(findings, guess, referral=_ADDRESS.search(text) is not None)
    if judgement.where == "body line 0":
        return dataclasses.replace(judgement, where="subject")
    return judgement
