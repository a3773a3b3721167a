"""What one store read costs the relay: through aiosqlite's thread, or on the event loop itself.

    .venv/bin/python -m bench.store_hop [N]      (N suppressions in the store; default 100,000)

The relay's recipient check is one indexed SELECT on the suppressions table.  Through the
store (aiosqlite) every query is a hop to the database thread and back (a queue, a future,
a wake-up of the loop); the same SELECT run with sqlite3 on the loop thread has none of
that.  Printed: microseconds of wall time and of process CPU per lookup, each way, for
lookups one after another and for 10 at once (as with 10 clients at RCPT).
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
            ("store (aiosqlite thread), one at a time", *await _through_store(store, addresses, 1)),
            ("store (aiosqlite thread), 10 at once", *await _through_store(store, addresses, 10)),
            ("sqlite3 on the event loop, one at a time", *_on_loop(db, store, addresses)),
        ]
    finally:
        db.close()
        await store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 100_000
    rows = asyncio.run(measure(count))
    print(f"One suppression lookup ({count:,} suppressions, none matching), microseconds per lookup")
    print(f"{'way':<44} {'wall':>8} {'CPU':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<44} {wall:>8.0f} {cpu:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
