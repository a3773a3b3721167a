"""The store's foundation: opening, migrating, and the query helpers every part uses.

SQLite (aiosqlite) in WAL mode.  Personal data is kept to the minimum the features need:
addresses, the contact fields a user imports, dates, and Message-IDs of relayed mail.
Message bodies are never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from .schema import MIGRATIONS

S = TypeVar("S", bound="StoreBase")


class StoreError(Exception):
    """The store cannot be used right now (missing, locked, read-only, disk full, corrupt)."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _create_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


class StoreBase:
    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        self._secret = b""
        # One connection is shared by every coroutine: a transaction spans several awaits,
        # so writers take turns, or one's statements would land in another's transaction.
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._in_transaction = False

    @classmethod
    async def open(cls: type[S], path: Path | str) -> S:
        path = Path(path).expanduser()
        try:
            if str(path) != ":memory:":
                _create_private_file(path)
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        db.row_factory = aiosqlite.Row
        store = cls(db, path)
        try:
            await store._setup()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot open store {path}: {exc}") from None
        return store

    async def _setup(self) -> None:
        await self._db.execute("PRAGMA busy_timeout = 5000")
        await self._db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a crash of the process; FULL adds an fsync per commit.
        await self._db.execute("PRAGMA synchronous = NORMAL")
        await self._db.execute("PRAGMA secure_delete = ON")
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._migrate()
        row = await self._one("SELECT value FROM meta WHERE key = 'hash_secret'")
        if row is None:
            secret = secrets.token_hex(32)
            await self._db.execute("INSERT INTO meta (key, value) VALUES ('hash_secret', ?)", (secret,))
            self._secret = secret.encode()
        else:
            self._secret = str(row[0]).encode()

    async def _migrate(self) -> None:
        row = await self._one("PRAGMA user_version")
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this program "
                f"({len(MIGRATIONS)}); upgrade gdpr-mail-proxy"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    async def close(self) -> None:
        await self._db.close()

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the connection for this task (re-entrant within the task)."""
        task = asyncio.current_task()
        if self._owner is task:
            yield
            return
        async with self._lock:
            self._owner = task
            try:
                yield
            finally:
                self._owner = None

    @contextlib.asynccontextmanager
    async def transaction(self, commit: bool = True) -> AsyncIterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error, or when ``commit`` is false).

        SQLite errors become StoreError; a transaction opened inside another joins it.
        """
        async with self.exclusive():
            if self._in_transaction:
                yield
                return
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from None
            self._in_transaction = True
            try:
                yield
            except sqlite3.Error as exc:
                await self._rollback()
                raise StoreError(str(exc)) from None
            except BaseException:
                await self._rollback()
                raise
            else:
                try:
                    await self._db.execute("COMMIT" if commit else "ROLLBACK")
                except sqlite3.Error as exc:
                    await self._rollback()
                    raise StoreError(str(exc)) from None
            finally:
                self._in_transaction = False

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.exclusive():
            try:
                cur = await self._db.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from None
        return cur.rowcount

    async def _read_one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        try:
            return await self._one(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from None

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def address_hash(self, address: str) -> str:
        """Keyed hash kept after erasure, so a forgotten address stays blocked."""
        return hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()

    # counters for `status`: per day, no personal data

    async def count_event(self, name: str, amount: int = 1) -> None:
        await self._write(
            "INSERT INTO daily_counts (day, name, count) VALUES (?, ?, ?) "
            "ON CONFLICT (day, name) DO UPDATE SET count = count + excluded.count",
            (today(), name, amount),
        )

    async def counts_for(self, day: str) -> dict[str, int]:
        rows = await self._all("SELECT name, count FROM daily_counts WHERE day = ?", (day,))
        return {row[0]: int(row[1]) for row in rows}
