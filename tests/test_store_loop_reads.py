"""The relay's lookups read on the event loop: they see what is committed, and a transaction sees its own writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from proxy.store import Store


async def test_lookups_see_commits_and_a_transaction_its_own_writes(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "store.sqlite3")
    other = await Store.open(tmp_path / "store.sqlite3")  # another process's view: the watcher
    try:
        assert await store.find_suppression("a@firma.de") is None
        await other.add_suppression("address", "a@firma.de", "opt_out", "reply")
        found = await store.find_suppression("a@firma.de")
        assert found is not None and found.reason == "opt_out"  # committed elsewhere, seen at once

        inside = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with store.transaction():
                await store.add_suppression("address", "b@firma.de", "opt_out", "reply")
                seen = await store.find_suppression("b@firma.de")
                assert seen is not None  # its own uncommitted write
                inside.set()
                await release.wait()

        task = asyncio.create_task(writer())
        await inside.wait()
        assert await store.find_suppression("b@firma.de") is None  # not committed yet
        release.set()
        await task
        assert await store.find_suppression("b@firma.de") is not None
        assert (await store.contacts_for(["b@firma.de"])) == {}
    finally:
        await other.close()
        await store.close()
