"""Tokens of what a person wrote, and the concepts the reply word lists give them."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from proxy.classify.textnorm import fold

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
# English contractions lose their apostrophe ("don't" = "dont"); any other short word
# before an apostrophe is an elision that stays a word of its own ("l'article", "d'arrêter").
_CONTRACTION = {"t", "s", "re", "ve", "ll", "d", "m"}
# Pronouns joined to a verb by a hyphen are words of their own: "retirez-moi", "peço-vos",
# "remova-me"; other hyphenated words stay whole ("e-mail", "non-stop", "opt-out").
_CLITICS = frozenset(
    [
        "moi",
        "toi",
        "nous",
        "vous",
        "lui",
        "leur",
        "le",
        "la",
        "les",
        "en",
        "y",
        "me",
        "te",
        "se",
        "nos",
        "vos",
        "lo",
        "lhe",
        "lhes",
        "mi",
        "ti",
        "ci",
        "vi",
        "si",
    ]
)


def tokens(text: str) -> list[str]:
    """The folded words of a text (a new list: callers may change it)."""
    return list(_tokens(text))


@functools.lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for word in _WORD.findall(fold(text)):
        if "-" not in word and "'" not in word:
            out.append(word)
            continue
        if "'" not in word:
            head, dash, tail = word.rpartition("-")
            if dash and tail in _CLITICS and head:
                out.extend(head.split("-") if head.count("-") and head.rsplit("-", 1)[1] in _CLITICS else [head])
                out.append(tail)
            else:
                out.append(word)
            continue
        head, _, tail = word.partition("'")
        if tail in _CONTRACTION or (tail.split("'")[0] in _CONTRACTION and len(tail) <= 2):
            out.append(word.replace("'", ""))
        elif tail in _CASE_ENDINGS and len(head) >= 3 and not head.endswith("qu"):
            # Turkish writes a name's case ending after an apostrophe: "KVKK'ya", "e-posta'yı"
            out.append(head)
        elif len(head) <= 4 and tail:
            out.append(head + "'")
            out.extend(tokens(tail))
        else:
            out.append(word.replace("'", ""))
    return tuple(out)


# Pronouns written as one word with the verb before them, by language (folded; the longer
# ending first): "self" is the person writing (me, us), "them" someone else.
_FUSED_PRONOUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (("gli", "them"), ("mi", "self"), ("ci", "self"), ("lo", "them"), ("la", "them"), ("li", "them"),
           ("le", "them")),
    "es": (("nos", "self"), ("los", "them"), ("las", "them"), ("les", "them"), ("me", "self"), ("lo", "them"),
           ("la", "them"), ("le", "them")),
    "ro": (("-ma", "self"), ("-ne", "self"), ("-le", "them"), ("-l", "them"), ("-o", "them"), ("-i", "them")),
}  # fmt: skip
_FUSED_VERBS = frozenset({"remove", "delete", "contact", "unsubscribe"})

# Turkish case endings after an apostrophe (folded, two letters or more: a lone vowel after
# an apostrophe is as often an Italian "cos'è" or "dov'è").
_CASE_ENDINGS = frozenset({
    "ya", "ye", "yi", "yu", "na", "ne", "ni", "nu", "in", "un", "nin", "nun", "da", "de", "ta", "te", "nda", "nde",
    "dan", "den", "tan", "ten", "ndan", "nden", "la", "le", "yla", "yle", "lar", "ler", "daki", "deki", "taki", "teki",
})  # fmt: skip

GAP = "..."
MAX_GAP = 3
MIN_STEM = 3  # phrase keys: shorter stems are never looked up
MIN_TYPO = 7
SHORT_STEM = 3  # stems this short meet words of other languages by chance
PAST_VERBS = frozenset({"remove", "delete", "unsubscribe", "stop", "withdraw"})
NEGATED = "not:"  # concept prefix of a word negated by its own prefix
NEGATABLE = frozenset(
    {"contact", "receive", "want", "interest", "unsubscribe", "remove", "delete", "stop", "mail", "please", "use",
     "permit"}
)
_TYPO_STEM_CONCEPTS = frozenset({"unsubscribe", "remove", "delete"})
# word-list keys that hold parts of words, read by Lexicon.build itself
_WORD_PARTS = frozenset(
    {"negation_prefixes", "negation_infixes", "negation_suffixes", "past_endings", "prefix_variants"}
)


@dataclass(frozen=True)
class Entry:
    """One word or phrase of a word list: pieces are exact words, stems ("entfern*") or gaps."""

    concept: str
    pieces: tuple[str, ...]
    text: str  # as written in the rule file
    # the exact words the entry cannot match without
    needs: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", frozenset(p for p in self.pieces if p != GAP and "*" not in p))


def parse_entry(concept: str, text: str) -> Entry | None:
    pieces: list[str] = []
    for raw in text.replace("…", f" {GAP} ").split():
        if raw == GAP:
            if pieces and pieces[-1] != GAP:
                pieces.append(GAP)
            continue
        star = raw.endswith("*")
        lead = raw.startswith("*") and len(raw) > 1
        found = tokens(raw.strip("*"))
        if not found:
            continue
        if _elision(raw.strip("*"), found[-1]):
            found[-1] += "'"  # "n'", "m'": the elided word as a text gives it ("n'envoyez")
        if lead:
            found[0] = "*" + found[0]
        pieces.extend(found[:-1])
        pieces.append(found[-1] + ("*" if star else ""))
    while pieces and pieces[-1] == GAP:
        pieces.pop()
    while pieces and pieces[0] == GAP:
        pieces.pop(0)
    return Entry(concept, tuple(pieces), text) if pieces else None


def _may_share(lang: str, concept: str, exact: Sequence[tuple[str, str]]) -> bool:
    """Whether a stem's sense may stand beside the exact senses of a word: the stem's own
    language knows the word too, or another language gives it the same concept."""
    return any(lg == lang or c == concept for lg, c in exact)


def _elision(raw: str, last: str) -> bool:
    """Whether an entry ends in a short word and its apostrophe, as "n'" or "m'": the
    apostrophe that tokens() keeps when a word follows it."""
    folded = fold(raw)
    return folded.endswith("'") and len(last) <= 4 and "'" not in last and folded[:-1].endswith(last)


def _matches(piece: str, word: str) -> bool:
    if piece.startswith("*"):
        inner = piece.strip("*")
        return word.endswith(inner) if not piece.endswith("*") else inner in word
    if piece.endswith("*"):
        return word.startswith(piece[:-1])
    return word == piece


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str, substitute: bool = True) -> bool:
    """Damerau-Levenshtein distance at most 1 (one letter missing, extra, wrong or swapped)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return substitute
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b = b, a
    return any(a == b[:i] + b[i + 1 :] for i in range(len(b)))


@dataclass
class Lexicon:
    """All word lists of the languages in use, indexed for one pass over a text."""

    exact: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # word -> (language, concept)
    stems: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # stem -> (language, concept)
    phrases: dict[str, list[tuple[str, Entry]]] = field(default_factory=dict)  # first piece -> entries
    fuzzy: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # deletion -> (word, lang, concept)
    stem_lengths: tuple[int, ...] = ()
    inner: list[tuple[str, str, str]] = field(default_factory=list)  # "*liste*": (piece, language, concept)
    negation_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "ne" -> languages
    negation_infixes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "miyor" -> languages
    past_endings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # language -> endings of past verbs
    negation_suffixes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "x" -> languages (Maltese)
    prefix_variants: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # language -> (from, to)
    _cache: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _phrase_cache: dict[str, _Candidates | tuple[()]] = field(default_factory=dict)
    _inner_gate: tuple[int, re.Pattern[str] | None] = (-1, None)  # (len(inner) it was built for, pattern)
    _infix_gate: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)  # (the infixes it was built for, pattern)
    _heads: tuple[int, frozenset[str]] = (-1, frozenset())  # (len(stems) it was built for, beginnings)
    _fuzzy_heads: tuple[int, frozenset[str]] = (-1, frozenset())  # (len(fuzzy) it was built for, beginnings)
    _phrase_heads: tuple[int, frozenset[str]] = (-1, frozenset())  # (len(phrases) it was built for, beginnings)
    _variant_index: tuple[
        tuple[tuple[str, tuple[tuple[str, str], ...]], ...], dict[str, tuple[tuple[str, str, str], ...]]
    ] = (
        (),
        {},
    )  # (the variants it was built for, index)

    @classmethod
    def build(cls, languages: Mapping[str, Mapping[str, Iterable[str]]], fuzzy_concepts: Iterable[str]) -> Lexicon:
        lex = cls()
        typo = set(fuzzy_concepts)
        lengths: set[int] = set()
        for lang, entry in _entries(languages):
            concept = entry.concept
            if len(entry.pieces) > 1:
                lex.phrases.setdefault(entry.pieces[0], []).append((lang, entry))
                continue
            piece = entry.pieces[0]
            if piece.startswith("*"):
                # the end of a compound: "*liste" meets "Korrespondenzliste"
                lex.inner.append((piece, lang, concept))
                continue
            if piece.endswith("*"):
                stem = piece[:-1]
                lex.stems.setdefault(stem, []).append((lang, concept))
                lengths.add(len(stem))
            else:
                lex.exact.setdefault(piece, []).append((lang, concept))
            bare = piece.rstrip("*")
            # Typos are only forgiven in longer words: one letter off in "stop" is "step",
            # in "remove" it is "remote".
            # a stem may be shorter ("afmeld*" meets "afmleden"), but only for the
            # request verbs, where a near miss is still a request
            stem_ok = piece.endswith("*") and len(bare) >= 5 and concept in _TYPO_STEM_CONCEPTS
            if concept in typo and (len(bare) >= MIN_TYPO or stem_ok):
                for key in {bare} | _deletions(bare):
                    lex.fuzzy.setdefault(key, []).append((piece, lang, concept))
        lex.stem_lengths = tuple(sorted(lengths))
        for lang, concepts in languages.items():
            for prefix in concepts.get("negation_prefixes", ()):
                for p in tokens(prefix):
                    lex.negation_prefixes[p] = (*lex.negation_prefixes.get(p, ()), lang)
            for suffix in concepts.get("negation_suffixes", ()):
                for p in tokens(suffix):
                    lex.negation_suffixes[p] = (*lex.negation_suffixes.get(p, ()), lang)
            variants = []
            for rule in concepts.get("prefix_variants", ()):
                a, _, b = rule.partition(">")
                variants.append((fold(a).strip(), fold(b).strip()))  # "l-" keeps its hyphen
            if variants:
                lex.prefix_variants[lang] = tuple(v for v in variants if v[0])
            endings = [t for e in concepts.get("past_endings", ()) for t in tokens(e)]
            if endings:
                lex.past_endings[lang] = tuple(endings)
            for infix in concepts.get("negation_infixes", ()):
                for p in tokens(infix):
                    lex.negation_infixes[p] = (*lex.negation_infixes.get(p, ()), lang)
        return lex

    def senses(self, word: str) -> tuple[tuple[str, str], ...]:
        """(language, concept) pairs of one word: exact, by stem, then forgiving one typo.

        A pure function of the word, worked out once per lexicon (the cache is bounded)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        result = self._senses(word)
        if len(self._cache) < 200_000:
            self._cache[word] = result
        return result

    def senses_each(self, words: Iterable[str]) -> list[list[tuple[str, str]]]:
        """``list(senses(w))`` for each word, in one call: a sentence's words at once."""
        return [list(self.senses(word)) for word in words]

    def _senses(self, word: str) -> tuple[tuple[str, str], ...]:
        found = self._plain(word)
        if self._inner_may_match(word):
            for piece, lang, concept in self.inner:
                if _matches(piece, word):
                    found.append((lang, concept))
        if not found and ("ae" in word or "oe" in word or "ue" in word):
            # "hoert", "loeschen": umlauts typed as two letters on a keyboard without them
            found = self._plain(word.replace("ae", "a").replace("oe", "o").replace("ue", "u"))
        if not found and self.prefix_variants:
            # "وحذف" = "و" + "حذف", Irish "gcuirfeá" = "cuirfeá": a letter in front of the word
            for lang, a, b in self._variants_by_letter().get(word[:1], ()):
                if word.startswith(a) and len(word) - len(a) >= 3:
                    found.extend((lg, c) for lg, c in self._plain(b + word[len(a) :]) if lg == lang)
        if self.negation_suffixes and word.endswith(tuple(self.negation_suffixes)):
            # Maltese "tibgħatlix" = "ma tibgħatli" + "x": the negation closes the verb, also
            # when a stem of the verb would take the "x" for an ending ("tibgħat*" and "tibgħatx")
            for suffix, langs in self.negation_suffixes.items():
                if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                    stem = word[: -len(suffix)]
                    negated = [(lg, NEGATED + c) for lg, c in self._plain(stem) if lg in langs and c in NEGATABLE]
                    if negated:
                        plain = {(lg, NEGATED + c) for lg, c in found}
                        if not found or plain.issuperset(negated):
                            found = [f for f in found if (f[0], NEGATED + f[1]) not in negated] + negated
                        break
        if not found and len(word) >= MIN_TYPO and self.fuzzy:
            found = self._typo(word)
        if not found and self.negation_prefixes and word.startswith(tuple(self.negation_prefixes)):
            # "neposílejte", "nezasílala": a negation written as part of the verb
            for prefix, langs in self.negation_prefixes.items():
                if word.startswith(prefix) and len(word) - len(prefix) >= 4:
                    rest = word[len(prefix) :]
                    found = [(lg, NEGATED + c) for lg, c in self.senses(rest) if lg in langs and c in NEGATABLE]
        if found and self.past_endings:
            # "удалили", "apaguei", "çıkardık": a verb in the past reports, it does not ask
            verbs = {lg for lg, c in found if c in PAST_VERBS}
            if verbs:
                for lang, ends in self.past_endings.items():
                    if lang in verbs and any(word.endswith(e) and len(word) > len(e) + 3 for e in ends):
                        found.append((lang, "past"))
        if found:
            found.extend(self._fused_persons(word, found))
        if found and self.negation_infixes and self._infix_may_match(word):
            # "istemiyoruz", "göndermeyin": Turkish negates inside the verb
            tail = word[3:]
            for infix, langs in self.negation_infixes.items():
                if infix in tail:
                    found = [(lg, NEGATED + c if lg in langs and c in NEGATABLE else c) for lg, c in found]
        return tuple(dict.fromkeys(found))

    def _fused_persons(self, word: str, found: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Who a verb is about when the pronoun is fused to it ("toglimi", "cancellatemi",
        "quitadme", "bórrame", "escribirme", "scoateți-mă", "ștergeți-l"): a known pronoun
        ending of the language, after a stem that is one of its request verbs."""
        out: list[tuple[str, str]] = []
        langs = {lg for lg, c in found if c in _FUSED_VERBS and lg in _FUSED_PRONOUNS}
        for lang in sorted(langs):
            for ending, concept in _FUSED_PRONOUNS[lang]:
                if word.endswith(ending) and len(word) - len(ending) >= 4:
                    stem = word[: -len(ending)]
                    if any(lg == lang and c in _FUSED_VERBS for lg, c in self._plain(stem)):
                        out.append((lang, concept))
                    break
        return out

    def _infix_may_match(self, word: str) -> bool:
        """Whether any negation infix is in the word after its third letter: one search."""
        infixes, gate = self._infix_gate
        if infixes != tuple(self.negation_infixes):
            infixes = tuple(self.negation_infixes)
            gate = re.compile("|".join(re.escape(t) for t in sorted(infixes, key=len, reverse=True)))
            self._infix_gate = (infixes, gate)
        return gate is not None and gate.search(word, 3) is not None

    def _variants_by_letter(self) -> dict[str, tuple[tuple[str, str, str], ...]]:
        """The prefix variants by their first letter: (language, from, to), in their order."""
        rules, index = self._variant_index
        current = tuple(self.prefix_variants.items())
        if rules != current:
            grouped: dict[str, list[tuple[str, str, str]]] = {}
            for lang, pairs in current:
                for a, b in pairs:
                    grouped.setdefault(a[:1], []).append((lang, a, b))
            index = {k: tuple(v) for k, v in grouped.items()}
            self._variant_index = (current, index)
        return index

    def _inner_may_match(self, word: str) -> bool:
        """Whether any "*liste" or "*liste*" entry can match: one search of all their texts
        instead of trying each of them on every new word."""
        size, gate = self._inner_gate
        if size != len(self.inner):
            texts = sorted({piece.strip("*") for piece, _, _ in self.inner}, key=len, reverse=True)
            gate = re.compile("|".join(re.escape(t) for t in texts)) if texts else None
            self._inner_gate = (len(self.inner), gate)
        return gate is not None and gate.search(word) is not None

    def _plain(self, word: str) -> list[tuple[str, str]]:
        """Exact and stem senses only (no typo, no variants): for words rebuilt from parts."""
        exact = self.exact.get(word, ())
        found = list(exact)
        heads = self._stem_heads()
        stems = self.stems
        size = len(word)
        for n in self.stem_lengths:
            if n > size:
                break
            head = word[:n]
            if head not in heads:
                break  # no longer stem starts so
            senses = stems.get(head, ())
            if exact and senses and n <= SHORT_STEM:
                # A short stem of one language does not read a word that another language
                # knows as a word meaning something else: Turkish "sil*" (delete) is no
                # Finnish "silti" (still) or "silloin" (then).
                senses = [(lg, c) for lg, c in senses if _may_share(lg, c, exact)]
            found.extend(senses)
        return found

    def _stem_heads(self) -> frozenset[str]:
        """Every beginning of every stem, at least as long as the shortest: a word whose
        beginning is none of them has no stem of that length or longer."""
        size, heads = self._heads
        if size != len(self.stems):
            low = self.stem_lengths[0] if self.stem_lengths else 0
            heads = frozenset(stem[:n] for stem in self.stems for n in range(low, len(stem) + 1))
            self._heads = (len(self.stems), heads)
        return heads

    def _phrase_stem_heads(self) -> frozenset[str]:
        """Every beginning (MIN_STEM letters or more) of the stems that start phrases."""
        size, heads = self._phrase_heads
        if size != len(self.phrases):
            stems = [key[:-1] for key in self.phrases if key.endswith("*")]
            heads = frozenset(stem[:n] for stem in stems for n in range(MIN_STEM, len(stem) + 1))
            self._phrase_heads = (len(self.phrases), heads)
        return heads

    def _fuzzy_prefixes(self) -> frozenset[str]:
        """Every beginning of every typo key."""
        size, prefixes = self._fuzzy_heads
        if size != len(self.fuzzy):
            prefixes = frozenset(key[:n] for key in self.fuzzy for n in range(1, len(key) + 1))
            self._fuzzy_heads = (len(self.fuzzy), prefixes)
        return prefixes

    def _typo(self, word: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for key in self._typo_keys(word):
            for piece, lang, concept in self.fuzzy[key]:
                bare = piece.rstrip("*")
                if word.startswith(bare) or word[0] != bare[0]:
                    # an ending, not a typo ("unsubscribed"); and people get the first letter
                    # right ("eletricos" is no "delet*")
                    continue
                if piece.endswith("*"):
                    # after a stem any ending may follow, so only a letter missing, doubled or
                    # swapped counts: "afmleden", not "otpuske" for "otpis*"
                    # A stem's last letter left out reads a stem's own other ending
                    # ("zaličen" for "zaliči*"), not any longer word sharing the shorter
                    # beginning ("vyhovuje" is no "vyhod*").
                    ok = any(
                        within_one_edit(word[:n], bare, substitute=False)
                        for n in (len(bare) - 1, len(bare), len(bare) + 1)
                        if word[:n] != bare[:-1] or len(word) <= len(bare) + 2
                    )
                else:
                    ok = within_one_edit(word, bare)
                if ok:
                    found.append((lang, concept))
        return found

    def _typo_keys(self, word: str) -> list[str]:
        """The typo keys the word meets: its beginnings (from MIN_TYPO - 3 letters on), each
        also with one letter left out.

        The keys are walked like a trie (``_fuzzy_prefixes`` holds every beginning of every
        key): a beginning that starts no key cannot grow into one, so each letter left out
        costs only as many steps as the word keeps agreeing with some key."""
        prefixes = self._fuzzy_prefixes()
        fuzzy = self.fuzzy
        low = MIN_TYPO - 3
        size = len(word)
        shared = 0
        while shared < size and word[: shared + 1] in prefixes:
            shared += 1
        keys: dict[str, None] = {}
        for n in range(low, shared + 1):
            head = word[:n]
            if head in fuzzy:
                keys[head] = None
        # A key agrees with the word up to the letter left out (at i), so only letters within
        # the longest beginning some key shares can be left out.
        for i in range(min(shared + 1, size)):
            before = word[:i]
            for n in range(i + 1, size + 1):
                key = before + word[i + 1 : n]
                if key and key not in prefixes:
                    break
                if n >= low and key in fuzzy:
                    keys[key] = None
        return list(keys)

    def starts_phrase(self, word: str) -> bool:
        """Whether some multi-word entry may start at this word (as its exact first word or
        under a stem of it): when not, ``phrase_hits`` at that word finds nothing."""
        candidates = self._phrase_cache.get(word)
        if candidates is None:
            candidates = self._phrase_candidates(word)
        return bool(candidates)

    def phrase_hits(
        self, words: Sequence[str], start: int, present: frozenset[str] | None = None
    ) -> list[tuple[tuple[int, ...], str, Entry]]:
        """Multi-word entries starting at ``start``: (positions matched, language, entry).

        ``present`` (the set of the text's words) lets entries that need an absent word be
        skipped without trying them."""
        word = words[start]
        candidates = self._phrase_cache.get(word)
        if candidates is None:
            candidates = self._phrase_candidates(word)
        if not candidates:
            return []
        ordered, keyed = candidates
        hits = []
        if keyed is not None and present is not None:
            # many entries start so: only those whose key word (the longest word they need)
            # is in the text, in the word lists' order
            tried = [c for key in present if key in keyed for c in keyed[key] if c[3] <= present]
            tried.sort(key=_first)
            for _, lang, entry, _needs in tried:
                at = _match_at(entry.pieces, words, start)
                if at is not None:
                    hits.append((at, lang, entry))
            return hits
        for _, lang, entry, needs in ordered:
            if present is not None and not needs <= present:
                continue
            at = _match_at(entry.pieces, words, start)
            if at is not None:
                hits.append((at, lang, entry))
        return hits

    def _phrase_candidates(self, word: str) -> _Candidates | tuple[()]:
        """The entries that may start at this word, in their order; when there are many,
        also filed under the longest word each needs."""
        found = list(self.phrases.get(word, ()))
        heads = self._phrase_stem_heads()
        for n in range(MIN_STEM, len(word) + 1):
            head = word[:n]
            if head not in heads:
                break  # no phrase starts with a stem beginning so
            found.extend(self.phrases.get(head + "*", ()))
        candidates: _Candidates | tuple[()] = ()
        if found:
            ordered = tuple((k, lang, entry, entry.needs) for k, (lang, entry) in enumerate(found))
            keyed: dict[str, list[tuple[int, str, Entry, frozenset[str]]]] | None = None
            if len(ordered) > _INDEXED and all(c[3] for c in ordered):
                keyed = {}
                for c in ordered:
                    keyed.setdefault(max(sorted(c[3]), key=len), []).append(c)
            candidates = (ordered, None if keyed is None else {k: tuple(v) for k, v in keyed.items()})
        if len(self._phrase_cache) < 200_000:
            self._phrase_cache[word] = candidates
        return candidates


def _first(item: tuple[int, str, Entry, frozenset[str]]) -> int:
    return item[0]


_Candidate = tuple[int, str, Entry, frozenset[str]]  # (place in the word lists, language, entry, its needs)
_Candidates = tuple[tuple[_Candidate, ...], dict[str, tuple[_Candidate, ...]] | None]
_INDEXED = 24  # more entries than this starting at one word: filed by the word they need


def _match_at(pieces: Sequence[str], words: Sequence[str], start: int) -> tuple[int, ...] | None:
    """Positions of the words that the pieces matched (gap words are not part of the entry)."""
    matched: list[int] = []
    i = start
    k = 0
    while k < len(pieces):
        piece = pieces[k]
        if piece == GAP:
            nxt = pieces[k + 1]
            for j in range(i, min(i + MAX_GAP + 1, len(words))):
                if _matches(nxt, words[j]):
                    matched.append(j)
                    i = j + 1
                    k += 2
                    break
            else:
                return None
            continue
        if i >= len(words) or not _matches(piece, words[i]):
            return None
        matched.append(i)
        i += 1
        k += 1
    return tuple(matched)


# Cyrillic typed in Latin letters ("udalite menya iz rassylki", "mahnete me ot spisaka"):
# both sides are reduced to one rough Latin skeleton, so that the many ways people
# transliterate (sh/š, ya/ja/ia/q, h/kh/x) meet.
_CYRILLIC = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "є": "e", "ё": "e", "ж": "z",
        "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
        "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "c", "ш": "s",
        "щ": "s", "ъ": "a", "ь": "", "ы": "i", "э": "e", "ю": "u", "я": "a",
    }
)  # fmt: skip
_LATIN_DIGRAPHS = (("shch", "s"), ("sht", "s"), ("sch", "s"), ("sh", "s"), ("ch", "c"), ("zh", "z"), ("kh", "h"),
                   ("ts", "c"), ("tz", "c"), ("ya", "a"), ("ia", "a"), ("ja", "a"), ("yu", "u"), ("iu", "u"),
                   ("ju", "u"), ("yo", "o"), ("ye", "e"), ("je", "e"))  # fmt: skip
_LATIN_LETTERS = str.maketrans({"y": "i", "j": "i", "w": "v", "x": "h", "q": "a", "g": "h"})
_REPEATS = re.compile(r"(.)\1+")


def is_cyrillic(word: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in word)


@functools.lru_cache(maxsize=65536)
def skeleton(word: str) -> str:
    """The rough Latin shape of a Cyrillic or Latin word, for transliterated replies."""
    star = word.endswith("*")
    word = word.rstrip("*")
    if is_cyrillic(word):
        word = word.translate(_CYRILLIC)
    else:
        for a, b in _LATIN_DIGRAPHS:
            word = word.replace(a, b)
    word = _REPEATS.sub(r"\1", word.translate(_LATIN_LETTERS))
    return word + ("*" if star else "")


def romanized(languages: Mapping[str, Mapping[str, Iterable[str]]]) -> dict[str, dict[str, list[str]]]:
    """The Cyrillic entries of the word lists as skeletons (see ``skeleton``), by language."""
    out: dict[str, dict[str, list[str]]] = {}
    for lang, entry in _entries(languages):
        if not any(is_cyrillic(p) for p in entry.pieces):
            continue
        shaped = " ".join(GAP if p == GAP else skeleton(p) for p in entry.pieces)
        if len(shaped.replace("*", "").replace(" ", "")) >= 2:
            out.setdefault(lang, {}).setdefault(entry.concept, []).append(shaped)
    return out


def _entries(languages: Mapping[str, Mapping[str, Iterable[str]]]) -> Iterator[tuple[str, Entry]]:
    """(language, entry) of every word and phrase of the word lists, in their order: the
    lists of word parts (negation prefixes, past endings, ...) are no entries."""
    for lang, concepts in languages.items():
        for concept, texts in concepts.items():
            if concept in _WORD_PARTS:
                continue
            for text in texts:
                entry = parse_entry(concept, text)
                if entry is not None:
                    yield lang, entry
