"""The validated-rules cache: a start with unchanged files skips re-reading them, any change reads them again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.rules import ruleset
from proxy.rules.ruleset import RulesError
from proxy.rules.ruleset import load_rules as _load


@pytest.fixture(autouse=True)
def steady(tmp_path: Path, monkeypatch) -> None:
    """A private copy of the shipped rules and a fixed code stamp: nothing else edits them meanwhile."""
    shipped = tmp_path / "shipped"
    shutil.copytree(ruleset.SHIPPED_RULES, shipped)
    monkeypatch.setattr(ruleset, "_code_stamp", lambda: ["steady"])
    monkeypatch.setattr(ruleset, "SHIPPED_RULES", shipped)


def load_rules(user: Path | None, shipped: Path | None = None, cache: Path | None = None):  # type: ignore[no-untyped-def]
    return _load(user, shipped or ruleset.SHIPPED_RULES, cache)


def test_unchanged_files_come_from_the_cache_and_a_changed_file_is_read_again(tmp_path: Path, monkeypatch) -> None:
    cache, user = tmp_path / "cache", tmp_path / "rules"
    user.mkdir()
    first = load_rules(user, cache=cache)
    assert list(cache.glob("rules-*.pickle"))

    def fail(*_args: object) -> None:
        raise AssertionError("files read although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(ruleset, "_load_rules", fail)
        again = load_rules(user, cache=cache)
    assert again == first or again.trackers == first.trackers
    assert again.sources == first.sources

    (user / "policies.yaml").write_text("this: [is not valid\n")
    with pytest.raises(RulesError):  # a broken user file is still an error at start-up
        load_rules(user, cache=cache)


def test_a_cache_file_others_could_write_is_not_read(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    load_rules(None, cache=cache)
    for path in cache.glob("rules-*.pickle"):
        path.chmod(0o666)
    calls = []
    real = ruleset._load_rules
    monkeypatch.setattr(ruleset, "_load_rules", lambda *a: calls.append(a) or real(*a))
    load_rules(None, cache=cache)
    assert calls


def test_missing_shipped_file_is_an_error_even_with_a_cache(tmp_path: Path) -> None:
    shipped = ruleset.SHIPPED_RULES
    cache = tmp_path / "cache"
    load_rules(None, shipped, cache)
    (shipped / "trackers.yaml").write_text("")
    with pytest.raises(RulesError, match="empty"):
        load_rules(None, shipped, cache)


def test_two_rule_folders_without_files_share_the_entry_and_name_their_own_folder(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    load_rules(one, cache=cache)
    monkeypatch.setattr(ruleset, "_load_rules", lambda *a: (_ for _ in ()).throw(AssertionError("read again")))
    rules = load_rules(two, cache=cache)
    assert rules.sources["replies"] == str(two / ruleset.REPLIES_DIR)


# The service checks the reply word lists in a forked child only while it is single-threaded
# (before it starts any thread); the test process has threads of its own, so each case runs
# in a fresh interpreter.
_FORK_CASES = {
    "same rules and errors": """
el = ruleset._ReplyWordsElsewhere.start(shipped / "replies", None)
assert el is not None, "no child process was started"
assert same(el.result(), load_reply_words(shipped / "replies", None))
user = Path(work) / "rules"
(user / "replies").mkdir(parents=True)
(user / "replies" / "de.yaml").write_text("add:\\n  stop:\\n    - '!!!'\\n")
try:
    load_rules(user)
except RulesError as exc:
    child = exc
else:
    raise AssertionError("a bad user word file was accepted")
try:
    load_reply_words(shipped / "replies", user / "replies")
except SchemaError as exc:
    here = exc
assert "de.yaml:" in str(child), str(child)
assert [str(e) for e in child.errors] == [str(e) for e in here.errors]
""",
    "a child that dies": """
real = ruleset.cached_reply_words
calls = []

def dies_in_the_child(*args):
    if not calls:  # the child's call (the parent's list stays as it was in the child)
        os._exit(3)
    return real(*args)

ruleset.cached_reply_words = dies_in_the_child
el = ruleset._ReplyWordsElsewhere.start(shipped / "replies", None)
assert el is not None, "no child process was started"
calls.append(1)
assert same(el.result(), real(shipped / "replies", None))
""",
}
_FORK_PRELUDE = """
import dataclasses, os, sys, threading
from pathlib import Path
from proxy.rules import ruleset
from proxy.rules.replies import load_reply_words
from proxy.rules.ruleset import RulesError, load_rules
from proxy.schema import SchemaError
work = sys.argv[1]
shipped = ruleset.SHIPPED_RULES
assert threading.active_count() == 1

def same(a, b):  # ReplyWords compare by identity (they key a cache): compare what they hold
    return dataclasses.astuple(a) == dataclasses.astuple(b)
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: the words are always checked in-process")
@pytest.mark.parametrize("case", sorted(_FORK_CASES))
def test_reply_words_checked_in_a_child_process(case: str, tmp_path: Path) -> None:
    """On a multi-core Linux machine the reply word lists are checked in a forked child while
    the other files are checked: the outcome is the same as checking them in-process, and a
    child that dies leaves them checked in the process itself."""
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("CACHE_DIRECTORY", None)
    done = subprocess.run(
        [sys.executable, "-c", _FORK_PRELUDE + _FORK_CASES[case], str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
