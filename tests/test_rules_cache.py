"""The validated-rules cache: a start with unchanged files skips re-reading them, any change reads them again."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from proxy.rules import ruleset
from proxy.rules.replies import load_reply_words
from proxy.rules.ruleset import RulesError
from proxy.rules.ruleset import load_rules as _load
from proxy.schema import SchemaError


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


def same_words(a: object, b: object) -> bool:
    """ReplyWords compare by identity (they key a cache): compare what they hold."""
    return dataclasses.astuple(a) == dataclasses.astuple(b)  # type: ignore[call-overload]


def test_reply_words_checked_in_a_child_process_give_the_same_rules_and_the_same_errors(tmp_path: Path) -> None:
    """On a multi-core Linux machine the reply word lists are checked in a forked child while
    the other files are checked here: the outcome must be the same as checking them in-process."""
    shipped = ruleset.SHIPPED_RULES
    elsewhere = ruleset._ReplyWordsElsewhere.start(shipped / "replies", None)
    if elsewhere is None:
        pytest.skip("no fork here (not Linux, one core, or threads running)")
    assert same_words(elsewhere.result(), load_reply_words(shipped / "replies", None))

    user = tmp_path / "rules"
    (user / "replies").mkdir(parents=True)
    (user / "replies" / "de.yaml").write_text("add:\n  stop:\n    - '!!!'\n")
    with pytest.raises(RulesError) as child:
        load_rules(user)
    with pytest.raises(SchemaError) as here:
        load_reply_words(shipped / "replies", user / "replies")
    assert "de.yaml:" in str(child.value)
    assert [str(e) for e in child.value.errors] == [str(e) for e in here.value.errors]


def test_a_child_that_dies_leaves_the_words_checked_here(tmp_path: Path, monkeypatch) -> None:
    shipped = ruleset.SHIPPED_RULES
    real = ruleset.cached_reply_words
    calls: list[int] = []

    def dies_in_the_child(*args: object) -> object:
        import os

        if not calls:  # the child's call (the parent's list stays as it was in the child)
            os._exit(3)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ruleset, "cached_reply_words", dies_in_the_child)
    elsewhere = ruleset._ReplyWordsElsewhere.start(shipped / "replies", None)
    if elsewhere is None:
        pytest.skip("no fork here (not Linux, one core, or threads running)")
    calls.append(1)
    assert same_words(elsewhere.result(), real(shipped / "replies", None))
