"""The store's foundation: opening, migrating, and the query helpers every part uses.

The store lives in an embedded SQLite file (the default) or in a PostgreSQL database a
sales team shares (``store: postgresql://...``); backend.py holds what differs.  Personal
data is kept to the minimum the features need: addresses, the contact fields a user
imports, dates, and Message-IDs of relayed mail.  Message bodies are never stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from proxy.config.store_url import is_postgresql_url
from proxy.errors import StoreError

from .backend import Backend, PostgresBackend, Row, SqliteBackend

S = TypeVar("S", bound="StoreBase")

__all__ = ["Row", "StoreBase", "StoreError", "now", "today"]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


class StoreBase:
    def __init__(self, backend: Backend):
        self._backend = backend
        # The SQLite file, for the commands that work on it directly; None on PostgreSQL.
        self.path: Path | None = backend.path if isinstance(backend, SqliteBackend) else None
        self._secret = b""

    @classmethod
    async def open(cls: type[S], target: Path | str) -> S:
        """Open (creating and migrating as needed) a SQLite file, or a ``postgresql://`` URL."""
        backend: Backend
        if is_postgresql_url(target):
            backend = await PostgresBackend.open(str(target))
        else:
            backend = await SqliteBackend.open(Path(target).expanduser())
        store = cls(backend)
        try:
            await store._setup()
        except BaseException:
            await backend.close()
            raise
        return store

    @property
    def location(self) -> str:
        """Where the store is, for messages: a path, or a URL without its password."""
        return self._backend.location

    @property
    def shared(self) -> bool:
        """True on PostgreSQL, where other relays and watchers use the same store."""
        return isinstance(self._backend, PostgresBackend)

    async def _setup(self) -> None:
        await self._backend.migrate()
        # Relays of a team may start at the same moment: the first secret written wins,
        # and every one of them reads back that one.
        query = "SELECT value FROM meta WHERE key = 'hash_secret'"
        row = await self._one(query)
        if row is None:
            await self._backend.execute(
                "INSERT INTO meta (key, value) VALUES ('hash_secret', ?) ON CONFLICT (key) DO NOTHING",
                (secrets.token_hex(32),),
            )
            row = await self._one(query)
        if row is None:
            raise StoreError(f"store {self.location} has no hash secret")
        self._secret = str(row[0]).encode()

    async def close(self) -> None:
        await self._backend.close()

    # -- query helpers: ``?`` placeholders on both backends; errors become StoreError --------

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._backend.fetchone(sql, params)

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._backend.fetchall(sql, params)

    async def _read_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """One row of a short read by an index (the relay's lookups: may run on the event loop)."""
        rows = await self._backend.fetch_indexed(sql, params)
        return rows[0] if rows else None

    async def _read_indexed(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a short read by an index (a handful of rows at most)."""
        return await self._backend.fetch_indexed(sql, params)

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write (inside the current task's transaction, if any): rows changed."""
        return await self._backend.execute(sql, params)

    async def _insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT into a table with an ``id`` column: the new row's id."""
        return await self._backend.insert_id(sql, params)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold one connection for this task (re-entrant within the task)."""
        async with self._backend.exclusive():
            yield

    @contextlib.asynccontextmanager
    async def transaction(self, commit: bool = True) -> AsyncIterator[None]:
        """All of the body's statements or none (ROLLBACK on error, or when ``commit`` is false).

        Errors become StoreError; a transaction opened inside another joins it.
        """
        async with self._backend.transaction(commit):
            yield

    def address_hash(self, address: str) -> str:
        """Keyed hash kept after erasure, so a forgotten address stays blocked."""
        return hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()

    # counters for `status`: per day, no personal data

    async def count_event(self, name: str, amount: int = 1) -> None:
        await self._write(
            "INSERT INTO daily_counts (day, name, count) VALUES (?, ?, ?) "
            "ON CONFLICT (day, name) DO UPDATE SET count = daily_counts.count + excluded.count",
            (today(), name, amount),
        )

    async def counts_for(self, day: str) -> dict[str, int]:
        rows = await self._all("SELECT name, count FROM daily_counts WHERE day = ?", (day,))
        return {row[0]: int(row[1]) for row in rows}
