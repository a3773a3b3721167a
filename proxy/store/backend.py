"""The two databases the store runs on, behind one small interface.

The store's SQL is written once, with ``?`` placeholders, in the common subset of SQLite
and PostgreSQL.  A backend runs it: the embedded SQLite file (one connection shared by a
process's coroutines, writers taking turns) or a PostgreSQL server shared by a team (a
small connection pool; every relay and watcher of the team sees every opt-out at once).

Every database error leaves a backend as StoreError, so the relay answers 451 and retries
later instead of sending to someone whose opt-out it could not read (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiosqlite

from proxy.config.store_url import mask_url
from proxy.errors import StoreError

from .schema import MIGRATIONS, postgresql_ddl

# aiosqlite.Row and asyncpg.Record both index by position and by column name, and both
# turn into a dict with dict(row).
Row = Any


@functools.lru_cache(maxsize=1024)
def numbered_placeholders(sql: str) -> str:
    """``?`` -> ``$1, $2 ...`` outside quoted literals and names (PostgreSQL's style)."""
    out: list[str] = []
    quote: str | None = None
    number = 0
    for char in sql:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def _rowcount(status: str) -> int:
    """asyncpg reports 'INSERT 0 1', 'DELETE 3', 'UPDATE 2': the last number is the row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Backend(ABC):
    #: selects a key naming a row, so that it can be updated again in the same transaction
    row_key: str
    #: a WHERE clause for the row with that key, as a parameter
    row_key_where: str
    #: added to a SELECT whose rows the transaction will update (keeps their keys valid)
    for_update: str
    #: shown in messages; never holds a password
    location: str

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""

    @abstractmethod
    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one write for each row of parameters, in a single trip to the database."""

    async def execute_batch(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Several writes (each SQL with its rows of parameters) in order, as one transaction."""
        async with self.transaction():
            for sql, rows in statements:
                if rows:
                    await self.execute_many(sql, rows)

    @abstractmethod
    async def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT into a table with an ``id`` column; the new row's id."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_indexed(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A short read by an index (the relay's per-message lookups); a backend may run it faster."""
        return await self.fetchall(sql, params)

    @abstractmethod
    def exclusive(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep one connection for the current task (re-entrant)."""

    @abstractmethod
    def transaction(self, commit: bool = True) -> contextlib.AbstractAsyncContextManager[None]:
        """Atomic: all of the body's statements, or none (a nested one joins the outer one)."""

    @abstractmethod
    async def migrate(self) -> None: ...

    @abstractmethod
    async def text_columns(self) -> list[tuple[str, str]]:
        """(table, column) of every text column that may hold personal data."""

    @abstractmethod
    async def compact(self, tables: Sequence[str]) -> None:
        """Leave no copy of deleted rows where the database can reach it."""

    @abstractmethod
    async def tidy(self, tables: Sequence[str]) -> bool:
        """Cheap clean-up after deletions; False when it had to be left for later."""

    @abstractmethod
    async def close(self) -> None: ...


# -- SQLite --------------------------------------------------------------------------------


def _create_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Only when absent: closing any descriptor of the file drops every POSIX lock this
    # process holds on it, so opening a second store in a process where one is open
    # (the CLI inside the service, tests) would let another process delete the live WAL.
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except FileExistsError:
        return
    os.close(fd)


# How long one task's look at the store files (see SqliteBackend._check) stands for its
# next statements.
CHECK_REUSE_SECONDS = 0.5


class SqliteBackend(Backend):
    """One file, WAL mode; one connection per process shared by its coroutines."""

    row_key = "rowid"
    row_key_where = "rowid = ?"
    for_update = ""  # the transaction already holds the whole file

    def __init__(self, db: aiosqlite.Connection, path: Path, reader: sqlite3.Connection | None = None):
        self._db = db
        # Short indexed reads run on the event loop through this second connection: about
        # 10 us instead of 70-145 us of CPU for the hop to aiosqlite's thread and back.  WAL
        # mode lets it read what was committed while the other connection writes.
        self._reader = reader
        self.path = path
        self.location = str(path)
        # One connection is shared by every coroutine: a transaction spans several awaits,
        # so writers take turns, or one's statements would land in another's transaction.
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._in_transaction = False
        self._closed = False
        self._identity = _file_identity(path)
        # The write-ahead log and its index: SQLite creates them with the first statement and
        # removes them only when the last connection closes, so while this one is open they
        # keep their inode.  Another process that finds them gone creates new ones and writes
        # where this connection never looks.
        self._companions: dict[str, tuple[int, int] | None] = {"-wal": None, "-shm": None}
        # The three names as strings, made once: this check runs before every statement.
        self._watched = [str(path), *(f"{path}{suffix}" for suffix in self._companions)]
        self._checked_task: asyncio.Task[Any] | None = None
        self._checked_at = 0.0
        # Batches of writes waiting for the writer task (see execute_batch).
        self._queued: list[tuple[Sequence[tuple[str, Sequence[Sequence[Any]]]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def _check(self) -> None:
        """Fail closed when the connection is gone or the file, its WAL or its index was deleted or replaced.

        A connection to an unlinked file would go on answering from a list nobody can
        update any more: an opt-out recorded in the new file would be ignored.
        """
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        if self._identity is None:
            return
        # The statements of one task in quick succession (one SMTP session's RCPT lookups,
        # plan and records) share one look at the files: three stat calls each would be a
        # tenth of a message's CPU.  Another task (the next connection) looks again.
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop running: nothing to share the look with
            task = None
        now = time.monotonic()
        if task is not None and task is self._checked_task and now - self._checked_at < CHECK_REUSE_SECONDS:
            return
        self._check_files()
        self._checked_task, self._checked_at = task, now

    def _check_files(self) -> None:
        main, *companions = self._watched
        if _file_identity(main) != self._identity:
            raise StoreError(f"store {self.path} was removed or replaced while in use; restart to use the new one")
        for (suffix, known), name in zip(self._companions.items(), companions, strict=True):
            current = _file_identity(name)
            if known is None:
                if current != (0, 0):
                    self._companions[suffix] = current  # created by this connection's first statement
            elif current != known:
                raise StoreError(
                    f"store file {self.path}{suffix} was removed or replaced while in use; "
                    "changes made since may be lost: restart to use the store as it is on disk"
                )

    @classmethod
    async def open(cls, path: Path) -> SqliteBackend:
        try:
            if str(path) != ":memory:":
                _create_private_file(path)
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        db.row_factory = aiosqlite.Row
        backend = cls(db, path)
        try:
            await db.execute("PRAGMA busy_timeout = 5000")
            await _switch_to_wal(db)
            # NORMAL in WAL mode survives a crash of the process; FULL adds an fsync per commit.
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA secure_delete = ON")
            await db.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                backend._reader = _open_reader(path)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot open store {path}: {exc}") from None
        return backend

    async def _write(self, sql: str, params: Sequence[Any]) -> aiosqlite.Cursor:
        self._check()
        async with self.exclusive():
            try:
                return await self._db.execute(sql, params)
            except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection was closed
                raise StoreError(str(exc)) from None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self._write(sql, params)).rowcount

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._owner is asyncio.current_task():  # inside this task's transaction: part of it
            self._check()
            try:
                await self._db.executemany(sql, rows)
            except (sqlite3.Error, ValueError) as exc:
                raise StoreError(str(exc)) from None
            return
        await self.execute_batch([(sql, rows)])

    async def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int((await self._write(sql, params)).lastrowid or 0)

    async def execute_batch(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """The statements as one transaction.  Outside a transaction of the caller's, batches
        that arrive while another is written are written together (group commit): one trip to
        the database thread and one commit for them all, each batch in a savepoint of its own,
        so that one that fails is undone alone and only its caller gets the error.  Every
        caller returns once its statements are committed, as with a transaction of its own."""
        self._check()
        if self._owner is asyncio.current_task():
            async with self.exclusive():
                await self._run_batches([statements], savepoints=False, outer=self._in_transaction)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queued.append((statements, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        await done

    async def _write_queued(self) -> None:
        batches: list[tuple[Sequence[tuple[str, Sequence[Sequence[Any]]]], asyncio.Future[None]]] = []
        try:
            while self._queued:
                async with self.exclusive():  # the writers' turn: after any transaction in progress
                    batches, self._queued = self._queued, []
                    try:
                        errors = await self._run_batches(
                            [statements for statements, _ in batches], savepoints=len(batches) > 1, outer=False
                        )
                    except StoreError as exc:
                        errors = [StoreError(str(exc)) for _ in batches]
                for (_, done), error in zip(batches, errors, strict=True):
                    if done.done():
                        continue  # its caller gave up waiting (the write happened all the same)
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
                batches = []
        except BaseException as exc:  # cancelled (the loop is closing): nobody may wait for ever
            waiting, self._queued = [*batches, *self._queued], []
            for _, done in waiting:
                if not done.done():
                    done.set_exception(StoreError(f"store write interrupted: {exc!r}"))
            raise

    async def _run_batches(
        self, batches: list[Sequence[tuple[str, Sequence[Sequence[Any]]]]], savepoints: bool, outer: bool
    ) -> list[StoreError | None]:
        """One trip to the database thread: every batch, each in a savepoint when ``savepoints``,
        in one transaction (none of its own when ``outer``: the caller's).  The error of each
        batch (None: written); a failure of the whole transaction raises StoreError."""

        def run(conn: sqlite3.Connection) -> list[StoreError | None]:
            errors: list[StoreError | None] = []
            if not outer:
                conn.execute("BEGIN IMMEDIATE")
            try:
                for statements in batches:
                    if savepoints:
                        conn.execute("SAVEPOINT batch")
                    try:
                        for sql, rows in statements:
                            if rows:
                                conn.executemany(sql, rows)
                    except (sqlite3.Error, ValueError) as exc:
                        if not savepoints:
                            raise
                        # (should SQLite have ended the whole transaction, this fails: all fail)
                        conn.execute("ROLLBACK TO batch")
                        conn.execute("RELEASE batch")
                        errors.append(StoreError(str(exc)))
                        continue
                    if savepoints:
                        conn.execute("RELEASE batch")
                    errors.append(None)
                if not outer:
                    conn.execute("COMMIT")
            except BaseException:
                if not outer and conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
            return errors

        try:
            # aiosqlite runs a function on its connection's thread only through _execute.
            return await self._db._execute(lambda: run(self._db._conn))
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(str(exc)) from None

    # Reads do not wait for the writers' turn: the relay's RCPT checks stay fast.
    # One trip to the database thread per query (execute, fetch and close would be three).
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._check()
        try:
            return list(await self._db.execute_fetchall(sql, params))
        except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection was closed
            raise StoreError(str(exc)) from None

    async def fetch_indexed(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        reader = self._reader
        # A task inside its own transaction must see its uncommitted writes: only the
        # writing connection has them.
        if reader is None or self._owner is asyncio.current_task():
            return await self.fetchall(sql, params)
        self._check()
        try:
            return reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StoreError(str(exc)) from None
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(str(exc)) from None
        # Busy for a moment (another process recovering the WAL): wait on the thread instead.
        return await self.fetchall(sql, params)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
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
        """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error, or when ``commit`` is false)."""
        async with self.exclusive():
            if self._in_transaction:
                yield
                return
            self._check()
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

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    async def migrate(self) -> None:
        # PRAGMA user_version counts the migrations applied (kept from the first releases).
        # One migration per round; a round may also find another process has done it.
        for _ in range(len(MIGRATIONS) + 2):
            version = await self._version()
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"store {self.path} has schema version {version}, newer than this program "
                    f"({len(MIGRATIONS)}); upgrade gdpr-mail-proxy"
                )
            if version == len(MIGRATIONS):
                return
            number = version + 1
            script = MIGRATIONS[version]
            try:
                await self._db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;")
            except sqlite3.Error as exc:
                await self._rollback()
                # A relay and a watcher starting together: the other one may have done it.
                if await self._version() < number:
                    raise StoreError(f"cannot migrate store {self.path}: {exc}") from None
        if await self._version() < len(MIGRATIONS):
            raise StoreError(f"cannot migrate store {self.path}")

    async def _version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def text_columns(self) -> list[tuple[str, str]]:
        tables = await self.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'meta'"
        )
        found = []
        for (table,) in tables:
            for column in await self.fetchall(f'PRAGMA table_info("{table}")'):
                if str(column["type"]).upper() == "TEXT":
                    found.append((str(table), str(column["name"])))
        return found

    async def compact(self, tables: Sequence[str]) -> None:
        """Fold the WAL in, rebuild the file, empty the WAL.

        secure_delete zeroes freed space in the database file, but older page versions
        stay in the WAL until a checkpoint, and VACUUM itself goes through the WAL.
        """
        async with self.exclusive():  # VACUUM cannot run inside another coroutine's transaction
            try:
                # Keep VACUUM's temporary copy of the database in memory, not in a temp file.
                await self._db.execute("PRAGMA temp_store = MEMORY")
                await self._checkpoint()
                await self._db.execute("VACUUM")
                await self._checkpoint()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot compact the store: {exc}") from None

    async def _checkpoint(self) -> None:
        async with self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
            row = await cur.fetchone()
        if row is not None and int(row[0]) != 0:
            # Another connection (the relay) kept reading through the busy timeout.
            raise StoreError("the store is busy; the WAL could not be emptied, try again")

    async def tidy(self, tables: Sequence[str]) -> bool:
        """Empty the WAL if nobody is reading."""
        try:
            row = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        except StoreError:
            return False
        return row is None or int(row[0]) == 0

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.close()
        await self._db.close()


def _open_reader(path: Path) -> sqlite3.Connection:
    """The loop thread's connection: reads only, never waiting more than a moment for a lock."""
    # check_same_thread off: the store may be opened in one thread and used by a loop in another.
    reader = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    reader.row_factory = sqlite3.Row
    reader.execute("PRAGMA busy_timeout = 0")
    reader.execute("PRAGMA query_only = ON")
    return reader


async def _switch_to_wal(db: aiosqlite.Connection) -> None:
    """WAL mode, waiting for other processes opening a new file at the same moment.

    Switching a new file to WAL takes an exclusive lock for which SQLite does not wait.
    """
    for attempt in range(50):
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            await asyncio.sleep(0.1)


def _file_identity(path: Path | str) -> tuple[int, int] | None:
    """Device and inode of the database file (None in memory); (0, 0) once it is gone."""
    if str(path) == ":memory:":
        return None
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0)
    return (info.st_dev, info.st_ino)


# -- PostgreSQL ----------------------------------------------------------------------------

# Taken by whoever migrates, so relays starting together do not race (any constant will
# do, as long as it stays the same; this one is "gdprmail" read as hex-ish digits).
_MIGRATION_LOCK = 0x6D0D_9A11
POOL_SIZE = 8
CONNECT_SECONDS = 10.0
COMMAND_SECONDS = 15.0
VACUUM_SECONDS = 300.0  # rewriting a large team's tables takes longer than a query


class PostgresBackend(Backend):
    """A PostgreSQL database shared by a team: a small pool, one connection per transaction."""

    # The row's physical address: stable while the transaction holds the row (FOR UPDATE).
    row_key = "ctid::text"
    row_key_where = "ctid = ?::text::tid"
    for_update = " FOR UPDATE"

    def __init__(self, pool: Any, url: str):
        self._pool = pool
        self.location = mask_url(url)
        # A task's transaction (or exclusive section) keeps its connection; other tasks
        # use any free connection of the pool, each statement committing on its own.
        self._pinned: dict[asyncio.Task[Any], Any] = {}
        self._in_transaction: set[asyncio.Task[Any]] = set()

    @classmethod
    async def open(cls, url: str) -> PostgresBackend:
        try:
            import asyncpg
        except ImportError:
            raise StoreError("a PostgreSQL store needs the asyncpg package (pip install asyncpg)") from None
        shown = mask_url(url)
        try:
            # The password may come from the URL, PGPASSWORD or a ~/.pgpass file (asyncpg reads both).
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_SECONDS,
                command_timeout=COMMAND_SECONDS,
                server_settings={"application_name": "gdpr-mail-proxy"},
            )
        except Exception as exc:  # asyncpg raises many kinds for a bad URL or an unreachable server
            raise StoreError(f"cannot open store {shown}: {_describe(exc, url)}") from None
        return cls(pool, url)

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"store {self.location}: {_describe(exc)}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        task = asyncio.current_task()
        conn = self._pinned.get(task) if task else None
        if conn is not None:
            yield conn
            return
        try:
            acquired = await self._pool.acquire(timeout=CONNECT_SECONDS)
        except _pg_errors() as exc:
            raise self._error(exc) from None
        try:
            yield acquired
        finally:
            with contextlib.suppress(*_pg_errors()):
                await self._pool.release(acquired)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._connection() as conn:
            try:
                status = await conn.execute(numbered_placeholders(sql), *params)
            except _pg_errors() as exc:
                raise self._error(exc) from None
        return _rowcount(str(status))

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._connection() as conn:
            try:
                await conn.executemany(numbered_placeholders(sql), rows)
            except _pg_errors() as exc:
                raise self._error(exc) from None

    async def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = await self.fetchone(sql + " RETURNING id", params)
        return int(row[0]) if row else 0

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._connection() as conn:
            try:
                return await conn.fetchrow(numbered_placeholders(sql), *params)
            except _pg_errors() as exc:
                raise self._error(exc) from None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._connection() as conn:
            try:
                return list(await conn.fetch(numbered_placeholders(sql), *params))
            except _pg_errors() as exc:
                raise self._error(exc) from None

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is None or task in self._pinned:
            yield
            return
        async with self._connection() as conn:
            self._pinned[task] = conn
            try:
                yield
            finally:
                del self._pinned[task]

    @contextlib.asynccontextmanager
    async def transaction(self, commit: bool = True) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task in self._in_transaction:
            yield
            return
        if task is None:  # outside any task there is nothing to keep a connection for
            raise StoreError("store transactions need a running task")
        async with self.exclusive():
            conn = self._pinned[task]
            tx = conn.transaction()
            try:
                await tx.start()
            except _pg_errors() as exc:
                raise self._error(exc) from None
            self._in_transaction.add(task)
            try:
                yield
            except BaseException:
                with contextlib.suppress(*_pg_errors()):
                    await tx.rollback()
                raise
            else:
                try:
                    await (tx.commit() if commit else tx.rollback())
                except _pg_errors() as exc:
                    with contextlib.suppress(*_pg_errors()):
                        await tx.rollback()
                    raise self._error(exc) from None
            finally:
                self._in_transaction.discard(task)

    async def migrate(self) -> None:
        """Apply missing migrations in one transaction, one relay at a time."""
        async with self.transaction():
            await self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            await self.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            row = await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"store {self.location} has schema version {version}, newer than this program "
                    f"({len(MIGRATIONS)}); upgrade gdpr-mail-proxy"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await self.execute(postgresql_ddl(script))  # no parameters: several statements at once
                stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                await self.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number, stamp))

    async def text_columns(self) -> list[tuple[str, str]]:
        rows = await self.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = 'text' "
            "AND table_name NOT IN ('meta', 'schema_version') ORDER BY table_name, ordinal_position"
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def compact(self, tables: Sequence[str]) -> None:
        """Rewrite the tables that held the deleted rows (VACUUM FULL), indexes included.

        Plain VACUUM only marks dead row versions reusable; FULL writes new files without
        them.  The server's WAL, and any backup or replica, keep their own copies until
        they are recycled or expire: that part is the database operator's retention.
        """
        async with self._connection() as conn:
            try:
                # VACUUM cannot run inside a transaction: asyncpg sends it on its own.
                await conn.execute("VACUUM FULL " + ", ".join(f'"{t}"' for t in tables), timeout=VACUUM_SECONDS)
            except _pg_errors() as exc:
                raise StoreError(f"cannot compact the store {self.location}: {_describe(exc)}") from None

    async def tidy(self, tables: Sequence[str]) -> bool:
        async with self._connection() as conn:
            try:
                await conn.execute("VACUUM " + ", ".join(f'"{t}"' for t in tables), timeout=VACUUM_SECONDS)
            except _pg_errors():
                return False
        return True

    async def close(self) -> None:
        with contextlib.suppress(*_pg_errors()):
            await asyncio.wait_for(self._pool.close(), timeout=CONNECT_SECONDS)


def _pg_errors() -> tuple[type[BaseException], ...]:
    """What talking to a PostgreSQL server can raise: its errors, a lost connection, a timeout."""
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


def _describe(exc: BaseException, url: str | None = None) -> str:
    text = str(exc) or type(exc).__name__
    if url:
        password = _password(url)
        if password:
            text = text.replace(password, "***")
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
