"""First contact means the full notice was delivered: the store's side, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.store import Store
from tests.pg_server import PostgresServer, pg_url, postgres_server  # noqa: F401 (fixtures)

JAN, EVA, TOM = "jan@kunde.example", "eva@kunde.example", "tom@nordlicht.example"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(target: str) -> AsyncIterator[Store]:
    s = await Store.open(target)
    yield s
    await s.close()


async def test_only_notified_copies_make_a_first_contact(store: Store) -> None:
    await store.record_delivery("m1", [JAN, EVA], notified=[JAN])
    jan, eva = await store.contact(JAN), await store.contact(EVA)
    assert jan is not None and jan["first_contact_at"]
    assert eva is not None and eva["last_contact_at"] and not eva["first_contact_at"]
    await store.record_delivery("m2", [EVA], notified=[EVA])
    assert (await store.contact(EVA) or {}).get("first_contact_at")


async def test_queued_copies_are_recorded_as_noted_before_sending(store: Store) -> None:
    await store.note_copies("m1", [(JAN, "full_notice"), (TOM, "colleague")])
    await store.record_queued_delivery("m1", [JAN, EVA, TOM])
    assert (await store.contact(JAN) or {}).get("first_contact_at")
    eva = await store.contact(EVA)
    assert eva is not None and not eva["first_contact_at"]  # no note: its copy had no full notice
    assert await store.contact(TOM) is None  # a colleague never becomes a contact
    assert await store.recipients_of(["m1"]) == [EVA, JAN]
    # the notes have served: none is left behind for these copies
    assert await store._all("SELECT * FROM copy_notes WHERE message_id = 'm1'") == []


async def test_erasure_and_retention_take_the_notes_too(store: Store) -> None:
    await store.note_copies("m9", [(JAN, "full_notice")])
    removed = await store.erase_address(JAN, "cli")
    assert removed["sent_messages"] == 1
    await store.note_copies("old", [(EVA, "full_notice")])
    counts = await store.purge_older("9999-01-01", "9999-01-01", "0000-01-01")
    assert counts["sent_messages"] == 1
    assert await store._all("SELECT * FROM copy_notes") == []


async def test_the_unsubscribe_key_is_one_per_store(store: Store, target: str) -> None:
    key = await store.unsubscribe_key()
    assert len(key) == 32
    other = await Store.open(target)  # a colleague's relay on the same store
    try:
        assert await other.unsubscribe_key() == key
    finally:
        await other.close()
