"""The store: one schema, versioned migrations, one API for the relay, the watcher and the CLI.

SQLite (aiosqlite) in WAL mode.  Personal data is kept to the minimum the features need:
addresses, the contact fields a user imports, dates, and Message-IDs of relayed mail.
Message bodies are never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from .addresses import domain_of, parent_domains

SuppressionKind = Literal["address", "domain", "hash"]


class StoreError(Exception):
    """The store cannot be used right now (missing, locked, read-only, disk full, corrupt)."""


MIGRATIONS: list[str] = [
    # 1: the relay core, plus the tables the watcher and data-rights features fill.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('address', 'domain', 'hash')),
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (kind, value)
    );
    CREATE TABLE contacts (
        address TEXT PRIMARY KEY,
        name TEXT, company TEXT, role TEXT, language TEXT, country TEXT,
        source TEXT, reason TEXT,
        tracking_consent TEXT NOT NULL DEFAULT 'unknown'
            CHECK (tracking_consent IN ('unknown', 'granted', 'denied')),
        marketing_consent TEXT NOT NULL DEFAULT 'unknown'
            CHECK (marketing_consent IN ('unknown', 'granted', 'denied')),
        first_contact_at TEXT, last_contact_at TEXT, last_reply_at TEXT,
        bounce_state TEXT, soft_bounces INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE TABLE consent_events (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('tracking', 'marketing')),
        value TEXT NOT NULL,
        how TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX consent_events_address ON consent_events (address);
    CREATE TABLE sent_messages (
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (message_id, address)
    );
    CREATE INDEX sent_messages_address ON sent_messages (address);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        message_id TEXT,
        verdict TEXT NOT NULL,
        evidence TEXT NOT NULL,
        where_found TEXT NOT NULL,
        language TEXT,
        status TEXT NOT NULL CHECK (status IN ('applied', 'pending', 'dismissed', 'confirmed')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX verdicts_address ON verdicts (address);
    CREATE TABLE imap_checkpoints (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account, folder)
    );
    CREATE TABLE daily_counts (
        day TEXT NOT NULL,
        name TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (day, name)
    );
    """,
]


@dataclass(frozen=True)
class Suppression:
    kind: SuppressionKind
    value: str
    reason: str
    source: str
    note: str | None
    created_at: str

    @property
    def date(self) -> str:
        return self.created_at[:10]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _create_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


class Store:
    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        self._secret = b""

    @classmethod
    async def open(cls, path: Path | str) -> Store:
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

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
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

    # -- suppressions -------------------------------------------------------------------

    def address_hash(self, address: str) -> str:
        """Keyed hash kept after erasure, so a forgotten address stays blocked."""
        return hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()

    async def add_suppression(
        self, kind: SuppressionKind, value: str, reason: str, source: str, note: str | None = None
    ) -> bool:
        """Add one entry; False when it was already there (the earlier entry is kept)."""
        count = await self._write(
            "INSERT INTO suppressions (kind, value, reason, source, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING",
            (kind, value, reason, source, note, now()),
        )
        if count:
            await self.count_event(f"suppressed.{reason}")
        return count > 0

    async def remove_suppression(self, kind: SuppressionKind, value: str) -> bool:
        return await self._write("DELETE FROM suppressions WHERE kind = ? AND value = ?", (kind, value)) > 0

    async def list_suppressions(self) -> list[Suppression]:
        rows = await self._all(
            "SELECT kind, value, reason, source, note, created_at FROM suppressions ORDER BY created_at, id"
        )
        return [Suppression(*row) for row in rows]

    async def find_suppression(self, address: str) -> Suppression | None:
        """The entry that blocks ``address`` (normalised), by address, keyed hash or domain."""
        domains = parent_domains(domain_of(address))
        marks = ",".join("?" * len(domains))
        row = await self._read_one(
            "SELECT kind, value, reason, source, note, created_at FROM suppressions "
            f"WHERE (kind = 'address' AND value = ?) OR (kind = 'hash' AND value = ?) "
            f"OR (kind = 'domain' AND value IN ({marks})) ORDER BY created_at LIMIT 1",
            (address, self.address_hash(address), *domains),
        )
        return Suppression(*row) if row else None

    # -- contacts and deliveries --------------------------------------------------------

    async def contact(self, address: str) -> dict[str, Any] | None:
        row = await self._read_one("SELECT * FROM contacts WHERE address = ?", (address,))
        return dict(row) if row else None

    async def contacts_for(self, addresses: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(addresses))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        try:
            rows = await self._all(f"SELECT * FROM contacts WHERE address IN ({marks})", wanted)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from None
        return {row["address"]: dict(row) for row in rows}

    async def record_delivery(self, message_id: str | None, addresses: Iterable[str]) -> None:
        """Mark addresses as contacted (first and last contact) once upstream accepted the mail."""
        stamp = now()
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            for address in addresses:
                await self._db.execute(
                    "INSERT INTO contacts (address, first_contact_at, last_contact_at, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
                    "first_contact_at = COALESCE(first_contact_at, excluded.first_contact_at), "
                    "last_contact_at = excluded.last_contact_at, updated_at = excluded.updated_at",
                    (address, stamp, stamp, stamp, stamp),
                )
                if message_id:
                    await self._db.execute(
                        "INSERT INTO sent_messages (message_id, address, sent_at) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (message_id, address, stamp),
                    )
            await self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            await self._rollback()
            raise StoreError(str(exc)) from None

    async def recipients_of(self, message_ids: Iterable[str]) -> list[str]:
        """Addresses a relayed message went to, for replies that follow In-Reply-To/References."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._all(
            f"SELECT DISTINCT address FROM sent_messages WHERE message_id IN ({marks}) ORDER BY address", ids
        )
        return [row[0] for row in rows]

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    # -- IMAP checkpoints ---------------------------------------------------------------

    async def get_checkpoint(self, account: str, folder: str) -> tuple[int, int] | None:
        row = await self._read_one(
            "SELECT uidvalidity, last_uid FROM imap_checkpoints WHERE account = ? AND folder = ?",
            (account, folder),
        )
        return (int(row[0]), int(row[1])) if row else None

    async def set_checkpoint(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        await self._write(
            "INSERT INTO imap_checkpoints (account, folder, uidvalidity, last_uid, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, folder) DO UPDATE SET "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
            (account, folder, uidvalidity, last_uid, now()),
        )

    # -- counters for `status` ----------------------------------------------------------

    async def count_event(self, name: str, amount: int = 1) -> None:
        await self._write(
            "INSERT INTO daily_counts (day, name, count) VALUES (?, ?, ?) "
            "ON CONFLICT (day, name) DO UPDATE SET count = count + excluded.count",
            (today(), name, amount),
        )

    async def counts_for(self, day: str) -> dict[str, int]:
        rows = await self._all("SELECT name, count FROM daily_counts WHERE day = ?", (day,))
        return {row[0]: int(row[1]) for row in rows}
