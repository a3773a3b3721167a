"""Soft failures, suspensions that lift by themselves, sender-side warnings, and re-judged old bounces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.rules.bounces import shipped_bounce_rules
from proxy.store import Store
from proxy.watcher.actions import judged_gone, rejudge_bounce_suppressions


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "store.db")
    yield opened
    await opened.close()


async def test_suspension_blocks_until_it_ends_then_lifts(store: Store) -> None:
    assert await store.suspend_address("voll@firma.de", 2 / 86400, "3 temporary failures")
    found = await store.find_suppression("voll@firma.de")
    assert found is not None and found.reason == "suspended"
    assert await store.suspended_count() == 1
    await asyncio.sleep(2.2)
    assert await store.find_suppression("voll@firma.de") is None  # ended: mailable again at once
    assert await store.lift_expired_suspensions() == 1
    assert await store.suspended_count() == 0


async def test_suspension_never_replaces_a_lasting_suppression(store: Store) -> None:
    await store.add_suppression("address", "weg@firma.de", "opt-out", "watcher")
    assert not await store.suspend_address("weg@firma.de", 30, "mailbox full")
    found = await store.find_suppression("weg@firma.de")
    assert found is not None and found.reason == "opt-out"


async def test_temporary_failures_are_counted_per_address(store: Store) -> None:
    for category in ("temporary", "mailbox-full", "recipient-policy"):
        await store.record_delivery_failure("a@firma.de", "firma.de", category, "x", "Status: 4.2.2", None)
    await store.record_delivery_failure("b@firma.de", "firma.de", "temporary", "x", "Status: 4.7.1", None)
    assert await store.temporary_failures("a@firma.de", 15) == 2
    assert await store.temporary_failures("b@firma.de", 15) == 1


async def test_sender_side_warnings_keep_no_recipient_address(store: Store) -> None:
    await store.record_delivery_failure(None, "gmail.example", "sender-side", "dmarc", "Status: 5.7.26", "b-1")
    await store.record_delivery_failure(None, "web.example", "sender-side", "dmarc", "Status: 5.7.26", "b-2")
    warnings = await store.sender_side_warnings()
    assert [(w["reason"], w["count"]) for w in warnings] == [("dmarc", 2)]
    assert await store.mentions("kunde@gmail.example") == 0


async def test_old_bounce_suppressions_are_rejudged_from_their_evidence(store: Store) -> None:
    rules = shipped_bounce_rules()
    old = {
        "gone@firma.de": "Action: failed; Status: 5.1.1",
        "full@firma.de": "Action: failed; Status: 5.2.2",
        "dmarc@firma.de": "Action: failed; Status: 5.7.26",
        "vague@firma.de": "this message was created automatically by mail delivery software",
        "new@firma.de": 'Status: 5.1.1; recipient-gone (no-such-user); "user unknown"',
    }
    for address, note in old.items():
        await store.add_suppression("address", address, "bounce", "watcher", note)
    await store.add_suppression("address", "stop@firma.de", "opt-out", "watcher", "Action: failed; Status: 5.2.2")
    lifted = await rejudge_bounce_suppressions(store, rules)
    assert sorted(lifted) == ["dmarc@firma.de", "full@firma.de", "vague@firma.de"]
    for address in ("gone@firma.de", "new@firma.de", "stop@firma.de"):
        assert await store.find_suppression(address) is not None
    assert judged_gone("Action: failed; Status: 5.1.2", rules)
    assert await store.first_time("bounces_rejudged_v1") and not await store.first_time("bounces_rejudged_v1")
