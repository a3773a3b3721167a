"""What one store read costs the relay through the store, and as a bare SELECT on the event loop.

    .venv/bin/python -m bench.store_hop [N]      (N suppressions in the store; default 100,000)

The relay's recipient check is one indexed SELECT on the suppressions table.  The store
runs it on the loop thread with its read connection (a hop to aiosqlite's database thread
and back, a queue, a future and a wake-up of the loop, cost about 140 us of CPU), adding its
file checks and the keyed hash; the bare SELECT with sqlite3 shows the floor.  Printed:
microseconds of wall time and of process CPU per lookup, each way, for lookups one after
another and for 10 at once (as with 10 clients at RCPT).  Then what the relay asks of the
store for one message (suppression and contact at RCPT, the contacts of the message, the
copy notes before sending, the records after it), one message at a time and 10 at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from proxy.store import Store

from .store_fill import fill

LOOKUPS = 3_000


async def _through_store(store: Store, addresses: list[str], concurrent: int) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(addresses), concurrent):
        await asyncio.gather(*(store.find_suppression(a) for a in addresses[i : i + concurrent]))
    return (time.perf_counter() - wall0) / len(addresses) * 1e6, (time.process_time() - cpu0) / len(addresses) * 1e6


def _on_loop(db: sqlite3.Connection, store: Store, addresses: list[str]) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for address in addresses:
        where, params = store.blocking(address)
        db.execute(
            f"SELECT kind, value, reason, source, note, created_at FROM suppressions WHERE {where} "
            "ORDER BY created_at LIMIT 1",
            params,
        ).fetchone()
    return (time.perf_counter() - wall0) / len(addresses) * 1e6, (time.process_time() - cpu0) / len(addresses) * 1e6


async def _per_message(store: Store, first: int, count: int, concurrent: int) -> tuple[float, float]:
    async def one(number: int) -> None:
        address = f"{number}kontakt@firma{number % 997}.de"
        await store.find_suppression(address)
        await store.contact(address)
        await store.contacts_for([address])
        await store.note_copies(f"<{number}@bench>", [(address, "full_notice")])
        await store.record_delivery(f"<{number}@bench>", [address], [address])

    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(first, first + count, concurrent):
        await asyncio.gather(*(one(n) for n in range(i, min(i + concurrent, first + count))))
    return (time.perf_counter() - wall0) / count * 1e6, (time.process_time() - cpu0) / count * 1e6


async def measure(count: int) -> list[tuple[str, float, float]]:
    directory = Path(tempfile.mkdtemp(prefix="gdpr-proxy-store-hop-"))
    path = directory / "store.sqlite3"
    await fill(path, count)
    store = await Store.open(path)
    db = sqlite3.connect(str(path), check_same_thread=False)
    addresses = [f"{i}kontakt@firma{i % 997}.de" for i in range(LOOKUPS)]
    try:
        await _through_store(store, addresses[:200], 1)  # warm: statement cache, pages
        _on_loop(db, store, addresses[:200])
        rows = [
            ("store.find_suppression, one at a time", *await _through_store(store, addresses, 1)),
            ("store.find_suppression, 10 at once", *await _through_store(store, addresses, 10)),
            ("sqlite3 on the event loop, one at a time", *_on_loop(db, store, addresses)),
        ]
        await _per_message(store, 0, 100, 1)  # warm
        rows += [
            ("a message's store work, one at a time", *await _per_message(store, 1_000, 1_500, 1)),
            ("a message's store work, 10 at once", *await _per_message(store, 10_000, 1_500, 10)),
        ]
    finally:
        db.close()
        await store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 100_000
    rows = asyncio.run(measure(count))
    print(f"One suppression lookup, and one message's store work ({count:,} suppressions), microseconds each")
    print(f"{'way':<44} {'wall':>8} {'CPU':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<44} {wall:>8.0f} {cpu:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
