"""The IMAP side of the reply watcher: follow the user's folders and hand each new reply on.

One connection per mailbox.  IDLE (when the server has it) watches the first configured
folder; the other folders are polled every ``poll_seconds`` by ending IDLE, catching up on
every folder and idling again.  One connection keeps within the per-user connection limits
of Gmail and Microsoft 365, and the first folder (INBOX) is where replies land.

Progress is checkpointed per folder as (UIDVALIDITY, last UID); a UID's checkpoint moves
only after the handler returned for it, in ascending UID order, so a restart resumes exactly
where it stopped.  When UIDVALIDITY changes, old UIDs mean nothing: the first-start window
is scanned again and the handler side recognises replies it has already seen by Message-ID.

During a catch-up the structures (BODYSTRUCTURE) of up to FETCH_BATCH messages are asked
for in one command, then the wanted parts of the messages sharing a fetch plan in one command
per plan (within the response limit); a batch the watcher cannot read is asked for again one
message at a time, so that only the unreadable message is skipped.

A message the watcher cannot read (a structure it cannot parse even through the fallback, more
data than it accepts, a fetch that fails again and again) is recorded in the store with its UID
and the reason, counted in the status, and skipped: one broken message never holds up the
replies after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Protocol

from proxy.config.imap import ImapSettings
from proxy.config.secrets import SecretError
from proxy.watcher.imap.connection import (
    LINE_LIMIT,
    AuthError,
    ConnectionLost,
    FolderUnavailable,
    IdleRefused,
    ImapConnection,
    ImapError,
    ResponseTooLarge,
    mailbox_arg,
)
from proxy.watcher.imap.fetch import FetchPlan, fallback_plan, plan_for
from proxy.watcher.imap.parse import ParseError, Token, parse_bodystructure

__all__ = [
    "AuthError",
    "CheckpointStore",
    "ConnectionLost",
    "FetchedMessage",
    "FolderUnavailable",
    "Handler",
    "HandlerFailed",
    "ImapError",
    "ImapWatcher",
    "WatcherStatus",
]

log = logging.getLogger(__name__)

# aioimaplib logs raw protocol data, message contents included, at DEBUG and INFO.
logging.getLogger("aioimaplib").setLevel(logging.WARNING)

# On stop, a round in progress gets this long to finish its current message before it is cancelled.
STOP_GRACE = 0.5
# A session must have run this long before its failure starts the back-off over: a server that
# answers BYE to every IDLE would otherwise be reconnected to about once a second.
HEALTHY_SECONDS = 60.0
# A message whose fetch times out, loses the connection or is refused this many times in a row
# (while the rest of the session works) is skipped as unreadable.
MAX_FETCH_ATTEMPTS = 3
FETCH_BATCH = 50  # messages one FETCH command asks for during a catch-up

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_KEYWORD_RE = re.compile(r"\$?[A-Za-z0-9_.\-]+")
_MESSAGE_ID_RE = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class FetchedMessage:
    account: str
    folder: str
    uid: int
    raw: bytes  # the header and the parts needed to classify, as one MIME message


Handler = Callable[[FetchedMessage], Awaitable[None]]


class CheckpointStore(Protocol):
    async def get_checkpoint(self, account: str, folder: str) -> tuple[int, int] | None: ...

    async def set_checkpoint(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None: ...

    async def record_unreadable(self, account: str, folder: str, uidvalidity: int, uid: int, reason: str) -> None: ...


@dataclass(frozen=True)
class WatcherStatus:
    connected: bool
    idle_in_use: bool  # the server offers IDLE and the settings use it (False: polling)
    last_check: datetime | None
    last_error: str | None
    messages_handled: int
    unreadable: int = 0  # messages skipped since start because they could not be read
    last_unreadable: str | None = None  # "INBOX UID 7: why"


class HandlerFailed(Exception):
    """The handler raised for a message; that folder is retried later from the same UID."""


class BatchRefused(ConnectionLost):
    """The answer to a batched FETCH was over the limits: the connection is closed, and the
    watcher goes on one message at a time."""


@dataclass(frozen=True)
class Prefetched:
    """What a batched FETCH brought of one message: its structure, and the message rebuilt
    from its wanted parts when that could be fetched too."""

    structure: Token
    raw: bytes | None = None


class Unreadable(Exception):
    """This message cannot be read from this server; it is recorded and skipped."""


class ImapWatcher:
    def __init__(
        self,
        settings: ImapSettings,
        store: CheckpointStore,
        handler: Handler,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        healthy_seconds: float = HEALTHY_SECONDS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.handler = handler
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.healthy_seconds = healthy_seconds
        self.idle_supported: bool | None = None
        self.last_check: datetime | None = None
        self.last_error: str | None = None
        self.messages_handled = 0
        self.unreadable = 0
        self.last_unreadable: str | None = None
        self._fetch_failures: dict[tuple[str, int, int], int] = {}  # (folder, UIDVALIDITY, UID)
        # Per folder: up to which UID messages are fetched one at a time, after a batch could
        # not be read.
        self._single_up_to: dict[str, int] = {}
        self._oversized_answers = False
        self._conn: ImapConnection | None = None
        self._lock = asyncio.Lock()
        self._lock_owner: asyncio.Task[object] | None = None
        self._wake = asyncio.Event()  # a caller wants the connection while we idle
        self._round_ok = False  # the current session completed a round (resets the back-off)

    # --- status -----------------------------------------------------------------------------

    @property
    def account(self) -> str:
        return self.settings.account

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.alive

    def status(self) -> WatcherStatus:
        return WatcherStatus(
            self.connected,
            self.settings.use_idle and bool(self.idle_supported),
            self.last_check,
            self.last_error,
            self.messages_handled,
            self.unreadable,
            self.last_unreadable,
        )

    # --- public entry points ----------------------------------------------------------------

    async def run_once(self) -> int:
        """Catch up on every folder; return how many messages the handler accepted.

        The connection stays open for add_keyword()/move(); call close() when done.
        """
        before = self.messages_handled
        async with self._locked():
            try:
                conn = await self._connection()
                await self._catch_up_all(conn, asyncio.Event())
            except (HandlerFailed, FolderUnavailable) as exc:
                self.last_error = str(exc)
                raise
            except Exception as exc:
                self._note_error(exc)
                await self._drop()
                raise
        return self.messages_handled - before

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set, reconnecting on any failure with capped back-off."""
        failures = 0
        loop = asyncio.get_running_loop()
        stop_wait = asyncio.ensure_future(stop.wait())
        session: asyncio.Future[None] | None = None
        try:
            while not stop.is_set():
                started = loop.time()
                session = asyncio.ensure_future(self._session(stop))
                await asyncio.wait({session, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not session.done():  # stop was set: let the current message finish, briefly
                    await asyncio.wait({session}, timeout=STOP_GRACE)
                    session.cancel()
                    with contextlib.suppress(BaseException):
                        await session
                    break
                exc = session.exception()
                if exc is None:
                    break
                if isinstance(exc, BatchRefused):
                    # Known cause, and batches are over for this server: reconnect at once.
                    self._note_error(exc)
                    await self._drop()
                    continue
                if isinstance(exc, HandlerFailed | FolderUnavailable):
                    self.last_error = str(exc)  # connection is fine; retry the folder after a pause
                else:
                    self._note_error(exc)
                    await self._drop()
                if self._round_ok and loop.time() - started >= self.healthy_seconds:
                    failures = 0  # it worked for a while: start the back-off over
                delay = self._backoff(failures)
                failures += 1
                log.info("IMAP watcher for %s retrying in %.1f s", self.account, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stop_wait), delay)
        finally:
            stop_wait.cancel()
            if session is not None and not session.done():  # run() itself was cancelled
                session.cancel()
                with contextlib.suppress(BaseException):
                    await session
            await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> ImapWatcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def add_keyword(self, folder: str, uid: int, keyword: str) -> None:
        """Flag a message with an IMAP keyword such as ``$OptOut`` (the server may refuse
        keywords it does not allow in PERMANENTFLAGS)."""
        if not _KEYWORD_RE.fullmatch(keyword):
            raise ValueError(f"not a valid IMAP keyword: {keyword!r}")
        async with self._op():
            conn = await self._selected(folder)
            if not conn.keyword_allowed(keyword):
                raise ImapError(f"the server does not allow the keyword {keyword} in {folder}")
            await conn.uid_command("store", str(uid), "+FLAGS.SILENT", f"({keyword})")

    async def move(self, folder: str, uid: int, target: str) -> bool:
        """Move a message to ``target``; False (message left in place) when the server can
        neither MOVE nor expunge a single UID (UIDPLUS)."""
        async with self._op():
            conn = await self._selected(folder)
            dest = mailbox_arg(target)
            if conn.has("MOVE"):
                await conn.uid_command("move", str(uid), dest)
            elif conn.has("UIDPLUS"):
                await conn.uid_command("copy", str(uid), dest)
                await conn.uid_command("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
                await conn.uid_command("expunge", str(uid))
            else:
                # A plain EXPUNGE would also remove messages the user deleted but kept.
                log.warning("server has neither MOVE nor UIDPLUS: %s UID %d left in %s", folder, uid, folder)
                return False
            return True

    # --- the watching loop ------------------------------------------------------------------

    async def _session(self, stop: asyncio.Event) -> None:
        """Catch up, wait for news, repeat; returns when ``stop`` is set, raises on failure."""
        self._round_ok = False
        folders = self.settings.folders
        while not stop.is_set():
            async with self._locked():
                conn = await self._connection()
                await self._catch_up_all(conn, stop)
                self._round_ok = True
                if stop.is_set():
                    return
                use_idle = self.settings.use_idle and bool(self.idle_supported)
                if use_idle:
                    seconds = float(self.settings.idle_renew_seconds)
                    if len(folders) > 1:
                        seconds = min(seconds, float(self.settings.poll_seconds))
                    if conn.selected != folders[0]:
                        await conn.select(folders[0])
                    interrupt = _AnyEvent(stop, self._wake)
                    try:
                        await conn.idle(seconds, interrupt.event)
                    except IdleRefused:
                        log.warning("%s lists IDLE but refuses it: polling", self.settings.host)
                        self.idle_supported = False
                    finally:
                        interrupt.close()
                    continue
            # Polling: the lock is free while waiting, so add_keyword()/move() need not wait.
            await _wait_any(self.settings.poll_seconds, stop, conn.lost_event)
            if not conn.alive:
                raise ConnectionLost("connection to the IMAP server lost")

    async def _catch_up_all(self, conn: ImapConnection, stop: asyncio.Event) -> None:
        failed: HandlerFailed | FolderUnavailable | None = None
        for folder in self.settings.folders:
            if stop.is_set():
                return
            try:
                await self._catch_up(conn, folder, stop)
            except (HandlerFailed, FolderUnavailable) as exc:
                failed = failed or exc  # other folders still get their turn
        if failed is not None:
            raise failed
        self.last_check = datetime.now(UTC)
        self.last_error = None

    async def _catch_up(self, conn: ImapConnection, folder: str, stop: asyncio.Event) -> None:
        uidvalidity, uidnext = await conn.select(folder)
        checkpoint = await self.store.get_checkpoint(self.account, folder)
        window = checkpoint is None or checkpoint[0] != uidvalidity
        if window:
            if checkpoint is not None:
                log.warning(
                    "UIDVALIDITY of %s changed (%d -> %d): rescanning the last %d days; replies "
                    "already handled are recognised by Message-ID",
                    folder, checkpoint[0], uidvalidity, self.settings.first_scan_days,
                )  # fmt: skip
            since = date.today() - timedelta(days=self.settings.first_scan_days)
            uids = await conn.uid_search("SINCE", f"{since.day}-{_MONTHS[since.month - 1]}-{since.year}")
            last = 0
        else:
            assert checkpoint is not None
            last = checkpoint[1]
            # "n:*" always matches the newest message, even below n: filter below.
            uids = await conn.uid_search("UID", f"{last + 1}:*")
        pending = sorted(u for u in uids if u > last)
        for start in range(0, len(pending), FETCH_BATCH):
            chunk = pending[start : start + FETCH_BATCH]
            prefetched = await self._prefetch(conn, folder, chunk)
            for uid in chunk:
                if stop.is_set():
                    return
                # The handler may have acted on another folder; if UIDVALIDITY changed meanwhile,
                # the next round rescans.
                if conn.selected != folder and (await conn.select(folder))[0] != uidvalidity:
                    return
                await self._handle(conn, folder, uidvalidity, uid, prefetched.get(uid))
                last = uid
        if window:
            # Everything before the window is deliberately skipped: start from UIDNEXT.
            last = max(last, (uidnext or 1) - 1)
            if last:
                await self.store.set_checkpoint(self.account, folder, uidvalidity, last)

    async def _batched(
        self, conn: ImapConnection, folder: str, uids: list[int], items: str
    ) -> dict[int, dict[str, Token]]:
        """FETCH ``items`` of several messages in one command; {} when that cannot be had, and
        each message then asks for its own: a server that refuses or garbles the batch only
        costs round trips, and the one message it cannot answer is told apart."""
        if len(uids) < 2 or self._single_up_to.get(folder, 0) >= uids[0] or self._oversized_answers:
            return {}
        try:
            return await conn.uid_fetch_many(uids, items)
        except ResponseTooLarge as exc:
            # The connection is closed; after reconnecting, these messages are fetched one by
            # one, so that the message too large to read is the only one skipped.
            self._single_up_to[folder] = uids[-1]
            self._oversized_answers = True  # a server that did this once gets one message at a time
            raise BatchRefused(str(exc)) from exc
        except (TimeoutError, ImapError, ValueError, RecursionError) as exc:
            log.info("%s: %d messages at once not read (%s); one by one", folder, len(uids), _reason(exc))
            self._single_up_to[folder] = uids[-1]
            if not conn.alive:
                raise ConnectionLost("connection to the IMAP server lost") from None
            return {}

    async def _prefetch(self, conn: ImapConnection, folder: str, uids: list[int]) -> dict[int, Prefetched]:
        """The structures of the messages in one command, then the wanted parts of the messages
        that share a fetch plan in one command per plan, as far as the response limit allows."""
        groups = await self._batched(conn, folder, uids, "UID BODYSTRUCTURE")
        found: dict[int, Prefetched] = {}
        plans: dict[str, list[tuple[int, FetchPlan]]] = {}
        cap = self.settings.max_part_bytes
        for uid, group in groups.items():
            if "BODYSTRUCTURE" not in group:
                continue
            found[uid] = Prefetched(group["BODYSTRUCTURE"])
            try:
                plan = plan_for(parse_bodystructure(group["BODYSTRUCTURE"]), cap)
            except (ValueError, RecursionError):
                continue  # fetched on its own, with the fallback and its warning
            plans.setdefault(plan.items, []).append((uid, plan))
        for items, members in plans.items():
            per_message = items.count("BODY.PEEK") * cap
            size = max(1, (conn.limits.response - LINE_LIMIT) // max(per_message, 1))
            for start in range(0, len(members), size):
                batch = members[start : start + size]
                answers = await self._batched(conn, folder, [uid for uid, _ in batch], items)
                for uid, plan in batch:
                    data = answers.get(uid)
                    if data is None:
                        continue
                    try:
                        found[uid] = Prefetched(found[uid].structure, plan.assemble(data))
                    except (ValueError, RecursionError):
                        pass  # read again on its own, where an unreadable answer is reported
        return found

    async def _handle(
        self, conn: ImapConnection, folder: str, uidvalidity: int, uid: int, prefetched: Prefetched | None = None
    ) -> None:
        key = (folder, uidvalidity, uid)
        try:
            if prefetched is not None and prefetched.raw is not None:
                raw: bytes | None = prefetched.raw
            else:
                raw = await self._fetch(conn, uid, prefetched.structure if prefetched else None)
        except Unreadable as exc:
            await self._skip(folder, uidvalidity, uid, str(exc))
            return
        except ResponseTooLarge as exc:
            # The connection is closed: skip the message, then reconnect as after any loss.
            await self._skip(folder, uidvalidity, uid, str(exc))
            raise
        except (TimeoutError, ImapError) as exc:  # a lost connection, or the server refused the FETCH
            failures = self._fetch_failures.get(key, 0) + 1
            self._fetch_failures[key] = failures
            if failures >= MAX_FETCH_ATTEMPTS:
                await self._skip(folder, uidvalidity, uid, f"{failures} attempts to fetch it failed ({_describe(exc)})")
            raise
        self._fetch_failures.pop(key, None)
        if raw is None:
            log.info("%s UID %d vanished before it could be read", folder, uid)
        else:
            message_id = _message_id(raw)
            try:
                await self.handler(FetchedMessage(self.account, folder, uid, raw))
            except Exception as exc:
                # The exception text may quote the message: log its type only.
                log.error(
                    "reply handler failed for %s UID %d (Message-ID %s): %s; will retry",
                    folder, uid, message_id, type(exc).__name__,
                )  # fmt: skip
                raise HandlerFailed(f"handler failed for {folder} UID {uid}: {type(exc).__name__}") from exc
            log.debug("handled %s UID %d (Message-ID %s)", folder, uid, message_id)
            self.messages_handled += 1
        await self.store.set_checkpoint(self.account, folder, uidvalidity, uid)

    async def _skip(self, folder: str, uidvalidity: int, uid: int, reason: str) -> None:
        """Record a message that cannot be read and move the checkpoint past it."""
        log.warning("%s UID %d cannot be read and is skipped: %s", folder, uid, reason)
        self._fetch_failures.pop((folder, uidvalidity, uid), None)
        await self.store.record_unreadable(self.account, folder, uidvalidity, uid, reason)
        self.unreadable += 1
        self.last_unreadable = f"{folder} UID {uid}: {reason}"
        await self.store.set_checkpoint(self.account, folder, uidvalidity, uid)

    async def _fetch(self, conn: ImapConnection, uid: int, structure: Token | None = None) -> bytes | None:
        """The message rebuilt from the parts that matter, None when it is gone.

        Whatever the server's answers, parsing them never stops the watcher: a BODYSTRUCTURE
        that cannot be read (malformed, nested thousands deep) or an incomplete answer falls back
        to the header and the start of the text; when even that cannot be read, Unreadable.
        """
        cap = self.settings.max_part_bytes
        try:
            if structure is None:
                first = await conn.uid_fetch(uid, "UID BODYSTRUCTURE")
                if first is None:
                    return None
                structure = first.get("BODYSTRUCTURE")
            plan = plan_for(parse_bodystructure(structure), cap)
        except (ValueError, RecursionError) as exc:  # ParseError is a ValueError
            log.warning("UID %d: unreadable BODYSTRUCTURE (%s); fetching header and text", uid, _reason(exc))
            return await self._fetch_with(conn, uid, fallback_plan(cap))
        try:
            return await self._fetch_with(conn, uid, plan)
        except Unreadable as exc:
            log.warning("UID %d: server answer unreadable (%s); fetching header and text", uid, exc)
            return await self._fetch_with(conn, uid, fallback_plan(cap))

    async def _fetch_with(self, conn: ImapConnection, uid: int, plan: FetchPlan) -> bytes | None:
        try:
            data = await conn.uid_fetch(uid, plan.items)
            return None if data is None else plan.assemble(data)
        except (ValueError, RecursionError) as exc:
            raise Unreadable(f"the server's answer cannot be read ({_reason(exc)})") from None

    # --- connection handling ----------------------------------------------------------------

    async def _connection(self) -> ImapConnection:
        if self._conn is not None and self._conn.alive:
            return self._conn
        await self._drop()
        conn = ImapConnection(self.settings)
        await conn.open()
        self._conn = conn
        self.idle_supported = conn.has("IDLE")
        log.info(
            "IMAP watcher connected to %s:%d as %s (IDLE %s)",
            self.settings.host, self.settings.effective_port, self.settings.username,
            "used" if self.settings.use_idle and self.idle_supported else "not used",
        )  # fmt: skip
        return conn

    async def _selected(self, folder: str) -> ImapConnection:
        conn = await self._connection()
        if conn.selected != folder:
            await conn.select(folder)
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Hold the connection; re-entrant for the task already holding it (a handler calling
        add_keyword() runs inside the watcher's own task)."""
        task = asyncio.current_task()
        if task is not None and task is self._lock_owner:
            yield
            return
        self._wake.set()  # end an IDLE in progress
        async with self._lock:
            self._wake.clear()
            self._lock_owner = task
            try:
                yield
            finally:
                self._lock_owner = None

    @contextlib.asynccontextmanager
    async def _op(self) -> AsyncIterator[None]:
        """A caller's command: after a timeout or a lost connection its state is unknown, so
        the connection is dropped (the watcher reconnects and catches up)."""
        async with self._locked():
            try:
                yield
            except (TimeoutError, ConnectionLost, OSError) as exc:
                self._note_error(exc)
                await self._drop()
                raise

    def _note_error(self, exc: BaseException) -> None:
        self.last_error = _describe(exc)
        log.warning("IMAP watcher for %s: %s", self.account, self.last_error)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** min(failures, 30)))
        # Jitter spreads reconnections when a server comes back for many clients at once.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ImapError | SecretError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "the IMAP server did not answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach the IMAP server: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _reason(exc: BaseException) -> str:
    """Why parsing failed, without quoting the data (it may hold the message)."""
    if isinstance(exc, RecursionError):
        return "nested too deep"
    return str(exc)[:200] if isinstance(exc, ParseError) else type(exc).__name__


def _message_id(raw: bytes) -> str:
    m = _MESSAGE_ID_RE.search(raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0])
    return m.group(1).decode("ascii", "replace") if m else "-"


class _AnyEvent:
    """An event set as soon as any of the given events is."""

    def __init__(self, *events: asyncio.Event) -> None:
        self.event = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._follow(e)) for e in events]

    async def _follow(self, source: asyncio.Event) -> None:
        await source.wait()
        self.event.set()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


async def _wait_any(seconds: float, *events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
