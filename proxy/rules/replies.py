"""The reply word lists: one shipped file per language, a user's file adding to or removing from it.

``rules/replies/<lang>.yaml`` holds only words and phrases a salesperson can read and edit
(README.md in that folder explains each list); ``rules/replies/quoting.yaml`` holds the
engineers' patterns for finding where a quoted original starts.  A user's
``replies/<lang>.yaml`` never replaces the shipped file: it has an ``add:`` and a
``remove:`` part with the same lists, so an upgrade's new words still arrive and every
other language keeps working.  A user file for a language we do not ship adds a language.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from proxy.classify.words import parse_entry
from proxy.schema import Regex, SchemaError, SourceError, load_file

# ISO 639-1, so that a typo such as "gr" for Greek ("el") is caught when the file loads.
_ISO_639_1 = """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
    hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la
    lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj
    om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv
    sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
ISO_639_1 = frozenset(_ISO_639_1.split())

REPLIES_DIR = "replies"  # inside the shipped rules folder and the user's
QUOTING_FILE = "quoting.yaml"
Words = tuple[str, ...]


@dataclass(frozen=True)
class LanguageWords:
    """The lists of one language; README.md in the shipped replies folder explains each."""

    # whole replies or sentences
    refusal: Words = ()
    request: Words = ()
    erasure: Words = ()
    not_request: Words = ()
    # the parts a request is made of
    unsubscribe: Words = ()
    remove: Words = ()
    delete: Words = ()
    stop: Words = ()
    contact: Words = ()
    receive: Words = ()
    want: Words = ()
    mail: Words = ()
    list: Words = ()
    store: Words = ()
    completely: Words = ()
    address: Words = ()
    data: Words = ()
    self: Words = ()
    them: Words = ()
    away: Words = ()  # "off", "aus": taking someone away from a list
    more: Words = ()
    negation: Words = ()
    negation_after: Words = ()
    negation_prefixes: Words = ()
    negation_infixes: Words = ()
    negation_suffixes: Words = ()
    prefix_variants: Words = ()  # "gc>c": a word starting "gc" is also read starting "c"
    past: Words = ()
    but: Words = ()
    conjunction: Words = ()  # "and": after a negated verb of its own, the negation ends there
    please: Words = ()
    polite: Words = ()
    interest: Words = ()
    object: Words = ()
    authority: Words = ()
    complain: Words = ()
    spam: Words = ()
    law: Words = ()
    positive: Words = ()
    later: Words = ()
    doubt: Words = ()
    left: Words = ()
    thread: Words = ()  # a thread, a copy, a document: taking something off it is no opt-out
    plan: Words = ()  # "I will", "wir werden": what the person says they will do themselves
    question: Words = ()  # "how does your tool", "can my team": a question about how the product works
    condition: Words = ()  # "if", "wenn": a question that starts with a condition asks what would happen
    replacement: Words = ()  # "new": removing something old and giving the new one corrects data
    instead: Words = ()  # "rather", "instead", "is enough": another way or thing offered after a refused one
    alone: Words = ()  # "Enough!", "Хватит!": a stop word that is a refusal only as the whole reply
    passive: Words = ()  # "be", "werden": a removing verb next to one is passive, not past ("can I be removed")
    subject: Words = ()  # "I", "we", "podemos": the person as the subject of a passive removal
    answer_no: Words = ()  # "no", "nein", "hayır": the answer no, a refusal as a sentence of its own
    consent: Words = ()  # "consent", "Einwilligung": what a person gave and can withdraw
    withdraw: Words = ()  # "withdraw", "widerrufen": withdrawing consent, with a consent word
    use: Words = ()  # "use", "verwenden": a use of the person's data, an objection when refused
    permit: Words = ()  # "allow", "erlauben": a use not permitted is refused
    interrogative: Words = ()  # "how", "what": a question led by one asks how something is done
    ourselves: Words = ()  # "ourselves", "automatically": a question with one asks how the product works
    past_endings: Words = ()
    # the rest of a reply
    signoffs: Words = ()
    disclaimers: Words = ()
    auto_reply: Words = ()
    auto_reply_subjects: Words = ()
    reply_prefixes: Words = ()
    common: Words = ()

    def check(self) -> Iterator[tuple[str, str]]:
        for name, entries in self.lists():
            seen: dict[tuple[str, ...], int] = {}
            for i, text in enumerate(entries):
                entry = parse_entry(name, text)
                if entry is None:
                    yield f"{name}[{i}]", f"{text!r} has no letters or digits to match"
                    continue
                if entry.pieces in seen:
                    yield (
                        f"{name}[{i}]",
                        f"{text!r} repeats {name}[{seen[entry.pieces]}] (case and accents are ignored)",
                    )
                else:
                    seen[entry.pieces] = i
                stem = entry.pieces[0]
                if len(entry.pieces) == 1 and stem.endswith("*") and len(stem) < 4:
                    yield f"{name}[{i}]", f"{text!r}: a stem needs at least three letters before the '*'"

    def lists(self) -> Iterator[tuple[str, Words]]:
        for f in dataclasses.fields(self):
            yield f.name, getattr(self, f.name)


CONCEPT_KEYS = tuple(
    f.name
    for f in dataclasses.fields(LanguageWords)
    if f.name
    not in ("signoffs", "disclaimers", "auto_reply", "auto_reply_subjects", "reply_prefixes", "common", "past_endings")
    and f.name != "prefix_variants"
)


@dataclass(frozen=True)
class UserLanguageFile:
    """A user's replies/<lang>.yaml: what to add to the shipped lists and what to take out."""

    add: LanguageWords = field(default_factory=LanguageWords)
    remove: LanguageWords = field(default_factory=LanguageWords)


@dataclass(frozen=True)
class LanguageQuoting:
    attribution: tuple[Regex, ...] = ()  # the whole line above a quoted original, from its first word
    attribution_line: tuple[Regex, ...] = ()  # the end of such a line ("... wrote:$")
    header_from: Words = ()  # labels of the quoted header block ("From", "Von", "De")
    header_sent: Words = ()  # ("Sent", "Gesendet", "Date")


@dataclass(frozen=True)
class QuotingFile:
    separators: tuple[Regex, ...] = ()  # lines (stripped, case ignored) where a forwarded original starts
    languages: dict[str, LanguageQuoting] = field(default_factory=dict)


@dataclass(frozen=True)
class UserQuotingFile:
    add: QuotingFile = field(default_factory=QuotingFile)


@dataclass(frozen=True)
class Change:
    """What a user file does to one list, for ``rules check``."""

    language: str
    key: str
    added: Words
    removed: Words


@dataclass(frozen=True, eq=False)  # compared and cached by identity: one object per set of files
class ReplyWords:
    """Every language's lists after the user's changes, and where they came from."""

    languages: dict[str, LanguageWords]
    quoting: QuotingFile
    files: tuple[Path, ...] = ()
    changes: tuple[Change, ...] = ()


def _entry_key(name: str, text: str) -> tuple[str, ...]:
    entry = parse_entry(name, text)
    return entry.pieces if entry else (text,)


def merge(shipped: LanguageWords, user: UserLanguageFile) -> tuple[LanguageWords, list[Change], list[tuple[str, str]]]:
    """Shipped lists plus the user's additions minus the user's removals.

    Returns the merged lists, what changed, and (key, message) problems: a removal of an
    entry the shipped list does not have is almost always a typo, so it is reported.
    """
    values: dict[str, Words] = {}
    changes: list[Change] = []
    problems: list[tuple[str, str]] = []
    for name, base in shipped.lists():
        added = getattr(user.add, name)
        removed = getattr(user.remove, name)
        have = {_entry_key(name, t) for t in base}
        drop = {_entry_key(name, t) for t in removed}
        for i, text in enumerate(removed):
            if _entry_key(name, text) not in have:
                problems.append((f"remove.{name}[{i}]", f"{text!r} is not in the shipped list, so nothing is removed"))
        kept = tuple(t for t in base if _entry_key(name, t) not in drop)
        new = tuple(t for t in added if _entry_key(name, t) not in have)
        values[name] = kept + new
        if new or len(kept) != len(base):
            changes.append(Change("", name, new, tuple(t for t in base if _entry_key(name, t) in drop)))
    return LanguageWords(**values), changes, problems


def _language_files(folder: Path | None) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.name != QUOTING_FILE}


def reply_files(shipped: Path, user: Path | None) -> list[Path]:
    """Every file the reply rules are read from (shipped and the user's), for reloading on change."""
    found = [*_language_files(shipped).values(), shipped / QUOTING_FILE]
    if user is not None:
        found += [*_language_files(user).values()]
        if (user / QUOTING_FILE).is_file():
            found.append(user / QUOTING_FILE)
    return found


def _check_code(code: str, path: Path, errors: list[SourceError]) -> bool:
    if code not in ISO_639_1:
        errors.append(SourceError(str(path), None, "", f"{code!r} (the file name) is not an ISO 639-1 language code"))
        return False
    return True


def load_reply_words(shipped: Path, user: Path | None = None) -> ReplyWords:
    """Read the shipped replies folder and the user's; raises SchemaError listing every problem."""
    errors: list[SourceError] = []
    languages: dict[str, LanguageWords] = {}
    changes: list[Change] = []
    files: list[Path] = []
    for code, path in _language_files(shipped).items():
        if not _check_code(code, path, errors):
            continue
        try:
            languages[code] = load_file(path, LanguageWords)
            files.append(path)
        except SchemaError as exc:
            errors.extend(exc.errors)
    if not any(lang.unsubscribe or lang.refusal for lang in languages.values()) and not errors:
        errors.append(SourceError(str(shipped), None, "", "no reply word lists found: reinstall gdpr-mail-proxy"))
    quoting = QuotingFile()
    try:
        quoting = load_file(shipped / QUOTING_FILE, QuotingFile)
        files.append(shipped / QUOTING_FILE)
    except SchemaError as exc:
        errors.extend(exc.errors)
    for code, path in _language_files(user).items():
        if not _check_code(code, path, errors):
            continue
        try:
            mine = load_file(path, UserLanguageFile)
        except SchemaError as exc:
            errors.extend(exc.errors)
            continue
        merged, changed, problems = merge(languages.get(code, LanguageWords()), mine)
        languages[code] = merged
        changes.extend(dataclasses.replace(c, language=code) for c in changed)
        errors.extend(SourceError(str(path), _line_of(path, key), key, message) for key, message in problems)
        files.append(path)
    if user is not None and (user / QUOTING_FILE).is_file():
        try:
            extra = load_file(user / QUOTING_FILE, UserQuotingFile).add
            quoting = _add_quoting(quoting, extra)
            files.append(user / QUOTING_FILE)
        except SchemaError as exc:
            errors.extend(exc.errors)
    if errors:
        raise SchemaError(errors)
    return ReplyWords(languages, quoting, tuple(files), tuple(changes))


def _add_quoting(base: QuotingFile, extra: QuotingFile) -> QuotingFile:
    languages = dict(base.languages)
    for code, more in extra.languages.items():
        have = languages.get(code, LanguageQuoting())
        languages[code] = LanguageQuoting(
            *(getattr(have, f.name) + getattr(more, f.name) for f in dataclasses.fields(LanguageQuoting))
        )
    return QuotingFile(base.separators + extra.separators, languages)


def _line_of(path: Path, key: str) -> int | None:
    """The line of ``remove.<list>[i]`` in a user file, found by reading the file again."""
    try:
        name, index = key.split(".", 1)[1].rstrip("]").split("[")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (ValueError, OSError, UnicodeError, IndexError):
        return None
    in_remove = in_list = False
    count = -1
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not line.startswith((" ", "\t")) and stripped:
            in_remove, in_list = stripped.startswith("remove:"), False
            continue
        if in_remove and stripped.startswith(f"{name}:"):
            in_list = True
            rest = stripped[len(name) + 1 :].strip()
            if rest.startswith("["):
                return number
            continue
        if in_list and stripped.startswith("- "):
            count += 1
            if count == int(index):
                return number
        elif in_list and stripped and not stripped.startswith("#"):
            in_list = False
    return None


def describe_changes(words: ReplyWords) -> list[str]:
    """One line per list a user file changes: 'de remove: +2 (entfern*, ...) -1 (...)'."""
    out = []
    for c in words.changes:
        parts = []
        if c.added:
            parts.append(f"adds {len(c.added)}: " + ", ".join(c.added))
        if c.removed:
            parts.append(f"removes {len(c.removed)}: " + ", ".join(c.removed))
        out.append(f"{c.language} {c.key}: " + "; ".join(parts))
    return out


def reply_rules_report(words: ReplyWords | None, user_dir: Path | None) -> list[str]:
    """What ``rules check`` says about the reply word lists: their files and what yours change."""
    if words is None:
        return []
    shipped = [p for p in words.files if user_dir is None or not p.is_relative_to(user_dir)]
    mine = [p for p in words.files if user_dir is not None and p.is_relative_to(user_dir)]
    out = [f"reply word lists: {len(words.languages)} languages from {len(shipped)} shipped file(s): OK"]
    for path in mine:
        out.append(f"{path}: OK (yours, adds to and removes from the shipped lists)")
    out += [f"  {line}" for line in describe_changes(words)]
    if user_dir is not None and (user_dir / "optout.yaml").is_file():
        out.append(
            f"{user_dir / 'optout.yaml'}: no longer read; put your words in {user_dir / REPLIES_DIR}/<language>.yaml "
            "under add: (see the README.md of the shipped replies folder)"
        )
    return out


@functools.lru_cache(maxsize=4)
def _cached(shipped: str, user: str | None, stamp: tuple[int, ...]) -> ReplyWords:
    return load_reply_words(Path(shipped), Path(user) if user else None)


def cached_reply_words(shipped: Path, user: Path | None = None) -> ReplyWords:
    """load_reply_words, cached until one of the files changes."""
    stamp = []
    for p in reply_files(shipped, user):
        try:
            stamp.append(p.stat().st_mtime_ns)
        except OSError:
            stamp.append(-1)
    return _cached(str(shipped), str(user) if user else None, tuple(stamp))
