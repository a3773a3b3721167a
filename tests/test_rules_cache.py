"""The validated-rules cache: a start with unchanged files skips re-reading them, any change reads them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.rules import ruleset
from proxy.rules.ruleset import RulesError, load_rules


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
    shipped = tmp_path / "shipped"
    import shutil

    shutil.copytree(ruleset.SHIPPED_RULES, shipped)
    cache = tmp_path / "cache"
    load_rules(None, shipped, cache)
    (shipped / "trackers.yaml").write_text("")
    with pytest.raises(RulesError, match="empty"):
        load_rules(None, shipped, cache)
