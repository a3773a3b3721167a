"""The validated-rules cache: a start with unchanged files skips re-reading them, any change reads them again."""

from __future__ import annotations

import shutil
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
