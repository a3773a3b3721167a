"""The rule set: what users edit in rules/*.yaml, loaded, validated and held immutable.

The shipped rule files travel inside the package (``proxy/rules/shipped/``, which the
checkout also shows as the top-level ``rules/``) and are found through ``importlib.resources``,
so a wheel, pipx or an editable checkout all read the same files.  A shipped file that is
missing or empty is an incomplete installation and stops start-up: never an empty rule set.
A file of the same name in the user's rule directory replaces the shipped one, so upgrades
never overwrite a user's edits.  A rule set that does
not validate never replaces a working one: ``RuleHolder.reload`` keeps the old set and
remembers the errors for ``status``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import pickle
import re
import sys
import threading
from dataclasses import dataclass, field
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

from proxy.classify.reply_rules import ReplyRules
from proxy.mime import TrackerRules
from proxy.mime.trackers import compile_rules as compile_trackers
from proxy.rules.answers import AnswerRules
from proxy.rules.bounces import BounceFile, BounceRules
from proxy.rules.footers import FooterRules, RenderedFooter
from proxy.rules.policies import FreemailRules, PolicyRules
from proxy.rules.regions import RegionRules
from proxy.rules.replies import REPLIES_DIR, ReplyWords, cached_reply_words, reply_files
from proxy.rules.sources import SourceRules
from proxy.schema import SchemaError, SourceError, load_file

log = logging.getLogger("gdpr_proxy.rules")

SHIPPED_RULES = Path(str(files("proxy.rules") / "shipped"))

# file name -> (attribute of RuleSet, schema)
RULE_FILES: dict[str, tuple[str, type[Any]]] = {
    "regions.yaml": ("regions", RegionRules),
    "freemail.yaml": ("freemail", FreemailRules),
    "policies.yaml": ("policies", PolicyRules),
    "footers.yaml": ("footers", FooterRules),
    "trackers.yaml": ("trackers", TrackerRules),
    "answers.yaml": ("answers", AnswerRules),
    "bounces.yaml": ("bounces", BounceFile),
    "sources.yaml": ("vocabulary", SourceRules),
}


@dataclass(frozen=True)
class RuleSet:
    regions: RegionRules = field(default_factory=RegionRules)
    freemail: FreemailRules = field(default_factory=FreemailRules)
    policies: PolicyRules = field(default_factory=PolicyRules)
    footers: FooterRules = field(default_factory=lambda: FooterRules(languages={}))
    trackers: TrackerRules = field(default_factory=TrackerRules)
    replies: ReplyWords | None = None  # the reply word lists (replies/<lang>.yaml), after the user's changes
    answers: AnswerRules = field(default_factory=lambda: AnswerRules(languages={}))
    bounces: BounceFile = field(default_factory=BounceFile)
    vocabulary: SourceRules = field(default_factory=SourceRules)  # footer words for sources and reasons
    sources: dict[str, str] = field(default_factory=dict)  # attribute -> file it came from

    @cached_property
    def rendered_footers(self) -> dict[tuple[Any, ...], RenderedFooter]:
        """Footers already rendered with these rules, by (language, kind, values)."""
        return {}

    @cached_property
    def reply_rules(self) -> ReplyRules:
        """The reply word lists compiled for the classifier, once per rule set."""
        return compiled_reply_rules(self.replies or cached_reply_words(SHIPPED_RULES / REPLIES_DIR))

    @cached_property
    def bounce_rules(self) -> BounceRules:
        """The delivery-failure wordings compiled for the bounce reader, once per rule set."""
        return BounceRules.compile(self.bounces)

    @cached_property
    def footer_fingerprints(self) -> tuple[str, ...]:
        """Beginnings of our own footer sentences, so a quoted footer is never read as a reply."""
        found: list[str] = []
        for texts in self.footers.languages.values():
            for template in (texts.first_contact, texts.follow_up, texts.consent):
                for sentence in re.split(r"(?<=[.!?:])\s+|\n+", template):
                    words = sentence.split("{")[0].split()
                    if len(words) >= 4:
                        found.append(" ".join(words[:5]))
        return tuple(dict.fromkeys(found))


class RulesError(Exception):
    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def rule_file_paths(shipped: Path, user: Path | None) -> dict[str, Path]:
    """Which file each rule comes from: the user's copy when there is one."""
    chosen = {}
    for name in RULE_FILES:
        user_file = user / name if user else None
        if user_file is not None and user_file.is_file():
            chosen[name] = user_file
        elif (shipped / name).is_file():
            chosen[name] = shipped / name
    return chosen


def missing_shipped_rules(shipped: Path) -> list[SourceError]:
    """The shipped rule files that are absent or empty: each one an installation fault."""
    problems = []
    for name in RULE_FILES:
        path = shipped / name
        if not path.is_file():
            problems.append(SourceError(str(path), None, "", "shipped rule file missing: reinstall gdpr-mail-proxy"))
        elif not path.read_text(encoding="utf-8", errors="replace").strip():
            problems.append(SourceError(str(path), None, "", "shipped rule file is empty: reinstall gdpr-mail-proxy"))
    return problems


def load_rules(user_dir: Path | None = None, shipped: Path = SHIPPED_RULES, cache: Path | None = None) -> RuleSet:
    """Read and validate every rule file.  With ``cache`` (a directory), a rule set already
    validated from exactly these files by exactly this code is read back from there instead
    (start-up in tens of milliseconds instead of a second); any change to a rule file, to the
    user's rule directory or to the program reads and validates the files again."""
    errors: list[SourceError] = missing_shipped_rules(shipped)
    if errors:
        raise RulesError(errors)
    key = _cache_key(user_dir, shipped) if cache is not None else None
    if cache is not None and key is not None:
        cached = _read_cache(cache, key)
        if cached is not None:
            # The one place the user's folder shows without a file of the user's in it.
            replies = str(user_dir / REPLIES_DIR if user_dir else shipped / REPLIES_DIR)
            return dataclasses.replace(cached, sources={**cached.sources, "replies": replies})
    rules = _load_rules(user_dir, shipped)
    if cache is not None and key is not None:
        _write_cache(cache, key, rules)
    return rules


def _load_rules(user_dir: Path | None, shipped: Path) -> RuleSet:
    errors: list[SourceError] = []
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    user_replies = user_dir / REPLIES_DIR if user_dir else None
    # The reply word lists are half of the checking: on a machine with a core to spare they
    # are checked by a child process while this one checks the other files.
    replies = _ReplyWordsElsewhere.start(shipped / REPLIES_DIR, user_replies)
    for name, path in rule_file_paths(shipped, user_dir).items():
        attribute, schema = RULE_FILES[name]
        try:
            values[attribute] = load_file(path, schema)
            sources[attribute] = str(path)
        except SchemaError as exc:
            errors.extend(exc.errors)
    try:
        if replies is not None:
            values["replies"] = replies.result()
        else:
            values["replies"] = cached_reply_words(shipped / REPLIES_DIR, user_replies)
        sources["replies"] = str(user_replies or shipped / REPLIES_DIR)
    except SchemaError as exc:
        errors.extend(exc.errors)
    if errors:
        raise RulesError(errors)
    if "vocabulary" in values and "footers" in values:  # a footer language without the words would mix languages
        errors.extend(
            SourceError(sources["vocabulary"], None, key, message)
            for key, message in values["vocabulary"].missing_languages(values["footers"].languages)
        )
    if errors:
        raise RulesError(errors)
    return RuleSet(**values, sources=sources)


class _ReplyWordsElsewhere:
    """``cached_reply_words`` run in a forked child, its result (or its SchemaError) sent back
    pickled through a pipe.  Only where forking is safe: Linux, a single-threaded process (the
    service before it starts any thread; never a reload, which runs in a thread), and more than
    one usable core.  Anything unexpected and the words are simply loaded here."""

    def __init__(self, pid: int, fd: int, shipped: Path, user: Path | None):
        self.pid, self.fd, self.shipped, self.user = pid, fd, shipped, user

    @classmethod
    def start(cls, shipped: Path, user: Path | None) -> _ReplyWordsElsewhere | None:
        if not sys.platform.startswith("linux") or threading.active_count() != 1 or len(os.sched_getaffinity(0)) < 2:
            return None
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return None
        if pid == 0:  # the child: check, send, leave without running any of the parent's clean-up
            code = 1
            try:
                os.close(read)
                try:
                    outcome: tuple[str, Any] = ("words", cached_reply_words(shipped, user))
                except SchemaError as exc:
                    outcome = ("errors", exc.errors)
                data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(data)
                while view:
                    view = view[os.write(write, view) :]
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        return cls(pid, read, shipped, user)

    def result(self) -> ReplyWords:
        chunks = []
        try:
            while chunk := os.read(self.fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(self.fd)
            _, status = os.waitpid(self.pid, 0)
        try:
            kind, value = pickle.loads(b"".join(chunks)) if status == 0 else ("", None)
        except Exception:
            kind, value = "", None
        if kind == "words" and isinstance(value, ReplyWords):
            return value
        if kind == "errors" and isinstance(value, list):
            raise SchemaError(value)
        return cached_reply_words(self.shipped, self.user)  # the child failed: check them here


# -- the validated-rules cache ------------------------------------------------------------

_CACHE_PREFIX = "rules-"
_CACHE_KEEP = 4  # rule sets kept (several instances or rule directories may share the folder)
_PACKAGE = Path(__file__).resolve().parent.parent


def _code_stamp() -> list[str]:
    """What the validation depends on besides the files: this program's modules and Python."""
    found = [sys.version]
    for path in sorted(_PACKAGE.rglob("*.py")):
        st = path.stat()
        found.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    return found


def _cache_key(user_dir: Path | None, shipped: Path) -> str | None:
    """A digest of every rule file's name and content (the user's files included: a user
    folder without any shares the shipped rules' entry), and of the code; None when a file
    cannot be read (then the files are simply loaded)."""
    digest = hashlib.sha256()
    try:
        for line in _code_stamp():
            digest.update(line.encode() + b"\0")
        user_replies = user_dir / REPLIES_DIR if user_dir else None
        paths = [*rule_file_paths(shipped, user_dir).values(), *reply_files(shipped / REPLIES_DIR, user_replies)]
        for path in paths:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def _read_cache(folder: Path, key: str) -> RuleSet | None:
    path = folder / f"{_CACHE_PREFIX}{key}.pickle"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        # Only a file this user wrote and nobody else can change is read back (pickle runs code).
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            rules = pickle.load(f)
    except Exception:  # a damaged or outdated cache file is no error: the files are read instead
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    return rules if isinstance(rules, RuleSet) else None


def _write_cache(folder: Path, key: str, rules: RuleSet) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL)
        path = folder / f"{_CACHE_PREFIX}{key}.pickle"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        old = sorted(folder.glob(f"{_CACHE_PREFIX}*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[_CACHE_KEEP:]:
            stale.unlink(missing_ok=True)
    except Exception as exc:  # the cache only saves time; never a reason not to start
        log.debug("rule cache not written in %s: %s", folder, exc)


@functools.lru_cache(maxsize=4)
def compiled_reply_rules(words: ReplyWords) -> ReplyRules:
    """Compiled once per set of reply files: a reload that changed nothing there costs nothing."""
    return ReplyRules.compile(words)


class RuleHolder:
    """The current rule set; each message takes a reference at its start and keeps it."""

    def __init__(self, user_dir: Path | None, shipped: Path = SHIPPED_RULES, cache: Path | None = None):
        self.user_dir = user_dir
        self.shipped = shipped
        self.cache = cache
        self.current = load_rules(user_dir, shipped, cache)
        self.errors: list[SourceError] = []

    def prepare(self, rules: RuleSet | None = None) -> None:
        """Compile what the relay needs per message (the tracker matchers) ahead of the first
        message; thread-safe, meant for a worker thread so the event loop never waits for it."""
        compile_trackers((rules or self.current).trackers)

    def reload(self) -> bool:
        try:
            new = load_rules(self.user_dir, self.shipped, self.cache)
            self.prepare(new)  # in the reloading thread, before any message sees the new rules
        except RulesError as exc:
            self.errors = exc.errors
            for error in exc.errors:
                log.error("rules not reloaded, keeping the running rules: %s", error)
            return False
        self.current = new
        self.errors = []
        log.info("rules reloaded")
        return True

    def watched_files(self) -> list[Path]:
        user_replies = self.user_dir / REPLIES_DIR if self.user_dir else None
        replies = reply_files(self.shipped / REPLIES_DIR, user_replies)
        return [*rule_file_paths(self.shipped, self.user_dir).values(), *replies]
