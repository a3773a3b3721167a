"""Pre-fill a relay store with N suppressions (default 100,000) in one transaction.

    python -m bench.store_fill STORE.sqlite3 [N]

The mix is roughly what a long-running sales team accumulates: 80 % single addresses,
15 % keyed hashes of erased addresses, 5 % whole domains.  None of them matches the
benchmark's recipients (``*@firma.de`` and ``*@firmaNNN.de``), so every message is relayed and
every RCPT pays for a real index lookup in a large table.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from pathlib import Path

from proxy.store import Store, now
from proxy.store.reasons import REASONS


def rows(count: int, store: Store, seed: int = 100) -> list[tuple[str, str, str, str, None, str]]:
    rng = random.Random(seed)
    stamp = now()
    out: list[tuple[str, str, str, str, None, str]] = []
    tlds = ("com", "de", "fr", "nl", "it", "es", "pl", "co.uk", "se", "at")
    for i in range(count):
        roll = rng.random()
        domain = f"company{rng.randrange(count // 4 + 1)}.{rng.choice(tlds)}"
        reason = rng.choice(REASONS)
        if roll < 0.05:
            out.append(("domain", f"blocked{i}.{rng.choice(tlds)}", reason, "bench", None, stamp))
        elif roll < 0.20:
            out.append(("hash", store.address_hash(f"erased{i}@{domain}"), "erasure", "bench", None, stamp))
        else:
            out.append(("address", f"person{i}@{domain}", reason, "bench", None, stamp))
    return out


async def fill(path: Path, count: int = 100_000) -> int:
    """Create (or extend) the store at ``path``; returns the number of suppressions it holds.

    The relay's own code creates and migrates the file and supplies the hash key; the rows go
    in through the standard sqlite3 module in one transaction (the store has no bulk API, and
    100,000 single awaited inserts would take a minute).
    """
    store = await Store.open(path)
    try:
        data = rows(count, store)
    finally:
        await store.close()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO suppressions (kind, value, reason, source, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING",
            data,
        )
        db.execute("COMMIT")
        return int(db.execute("SELECT count(*) FROM suppressions").fetchone()[0])
    finally:
        db.close()


if __name__ == "__main__":
    target = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    print(f"{target}: {asyncio.run(fill(target, n)):,} suppressions")
