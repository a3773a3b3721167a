"""The durable queue: copies the relay answered 250 for but could not hand on yet.

Each entry is two files written with fsync before the client is told 250: the message
bytes and a small JSON envelope.  Entries survive restarts and kill -9; a runner retries
them with back-off and, when a copy finally fails, tells the sender.  Notices to the
salesperson wait here too, until their mailbox takes them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class SpoolEntry:
    id: str
    mail_from: str
    recipients: list[str]
    message_id: str | None
    created: float
    next_attempt: float
    attempts: int = 0
    last_error: str = ""
    smtputf8: bool = False
    is_bounce: bool = False
    history: list[str] = field(default_factory=list)
    is_notice: bool = False  # a notice to the salesperson: goes to their mailbox, never re-checked

    @property
    def kind(self) -> str:
        return "notice" if self.is_notice else "bounce" if self.is_bounce else "message"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes, into: Held | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file, or through ``into`` (space reserved before)."""
    tmp = into.path if into else path.with_suffix(path.suffix + ".tmp")
    try:
        fd = (
            into.fd
            if into and into.fd is not None
            else os.open(tmp, os.O_WRONLY | (0 if into else os.O_CREAT | os.O_TRUNC), 0o600)
        )
        try:
            view, offset = memoryview(data), 0
            while offset < len(view):
                offset += os.pwrite(fd, view[offset:], offset)
            if into:
                os.ftruncate(fd, len(data))  # the rest of the reservation is given back
            os.fsync(fd)
        finally:
            os.close(fd)
            if into:
                into.fd = None
        os.rename(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk must not leave empty files behind
        raise


# Beside each copy: its envelope file and directory entries, written after the copy.
RESERVE_SLACK = 16 * 1024
LEFTOVER_SECONDS = 3600.0  # no reservation or temporary file lives this long in a running relay

# Reserved room for an ordinary message is kept and reused: a relay holds up to MAX_SLOTS
# files of SLOT_BYTES each (8 MiB at most) in the queue directory, each open and locked
# (flock) while the relay lives, so that a message only takes one from memory and gives it
# back when every copy went out.  A slot is written only when a copy must wait, and then it
# becomes that copy's file.  Slots of a relay that was killed are unlocked: removed at start.
SLOT_BYTES = 128 * 1024
SLOT_ROOM = SLOT_BYTES - RESERVE_SLACK  # the largest copy a slot holds
MAX_SLOTS = 64
SLOT_SUFFIX = ".slot"
SLOT_SETTLE_SECONDS = 60.0  # a slot this fresh may not be locked yet by the relay that made it


@dataclass(eq=False)
class Held:
    """Room reserved for one copy: a file, and for a slot its open, locked descriptor."""

    room: int
    path: Path
    fd: int | None = None

    @property
    def pooled(self) -> bool:
        return self.fd is not None

    def discard(self) -> None:
        """Remove the file (an unused reservation, or a slot the pool has no place for)."""
        self.path.unlink(missing_ok=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def discard(held: list[Held]) -> None:
    for item in held:
        item.discard()


class Reservation:
    """Queue space held for the copies of one message before the first one goes out.

    So a full or read-only queue is known before anything is sent, never after a copy went
    out and the rest could not be kept.  Each copy that must wait is written into its share.
    """

    def __init__(self, held: list[Held], spool: Spool | None = None):
        self._held = sorted(held, key=lambda h: h.room)
        self._spool = spool

    def take(self, size: int) -> Held | None:
        """The smallest reservation that holds ``size`` bytes (else any), or None when none is left."""
        for n, held in enumerate(self._held):
            if held.room >= size:
                return self._held.pop(n)
        return self._held.pop() if self._held else None

    def release(self) -> list[Held]:
        """Give the unused slots back to the pool; returns what must still be removed (``discard``)."""
        held, self._held = self._held, []
        return self._spool.give_back(held) if self._spool else held


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._free: list[Held] = []  # slots of this relay that no message holds
        self._lock = threading.Lock()
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Reservations and temporary files of a relay that was killed; never those of a running one."""
        old = time.time() - LEFTOVER_SECONDS
        for pattern in ("*.reserved", "*.tmp"):
            for path in self.directory.glob(pattern):
                try:
                    if path.stat().st_mtime < old:
                        path.unlink()
                except OSError:
                    continue
        settled = time.time() - SLOT_SETTLE_SECONDS
        for path in self.directory.glob(f"*{SLOT_SUFFIX}"):
            try:
                if path.stat().st_mtime < settled and not _locked_elsewhere(path):
                    path.unlink()  # its relay is gone (a live one holds the lock)
            except OSError:
                continue

    def reserve_pooled(self, sizes: list[int]) -> Reservation | None:
        """Room from the pool without touching the disk (beyond one permission check), or None.

        None when a copy is larger than a slot, the pool has too few slots, or the queue
        directory is not writable (``reserve`` then finds out why, with the real error).
        """
        if not sizes or max(sizes) > SLOT_ROOM or len(sizes) > len(self._free):
            return None
        if not os.access(self.directory, os.W_OK | os.X_OK):  # read-only file system or directory
            return None
        with self._lock:
            if len(sizes) > len(self._free):
                return None
            held = [self._free.pop() for _ in sizes]
        return Reservation(held, self)

    def reserve(self, sizes: list[int]) -> Reservation:
        """Hold room for copies of these sizes; OSError when the queue is full or cannot be written.

        Files are created (blocking: call it in a thread); those of a slot's size join the
        pool when they are given back unused.
        """
        held: list[Held] = []
        try:
            for size in sizes:
                if size <= SLOT_ROOM:
                    slot = self._new_slot()
                    if slot is not None:
                        held.append(slot)
                        continue
                path = self.directory / f"{uuid.uuid4().hex}.reserved"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                held.append(Held(size, path))
                try:
                    _allocate(fd, size + RESERVE_SLACK)
                finally:
                    os.close(fd)
        except OSError:
            discard(Reservation(held, self).release())
            raise
        return Reservation(held, self)

    def _new_slot(self) -> Held | None:
        """A locked, allocated slot file; None where the file system cannot lock files."""
        path = self.directory / f"{uuid.uuid4().hex}{SLOT_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        slot = Held(SLOT_ROOM, path, fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                slot.discard()
                return None
            _allocate(fd, SLOT_BYTES)
        except OSError:
            slot.discard()
            raise
        return slot

    def give_back(self, held: list[Held]) -> list[Held]:
        """Unused slots return to the pool; returns the rest, to be removed (``discard``)."""
        rest = []
        with self._lock:
            for item in held:
                if item.pooled and len(self._free) < MAX_SLOTS:
                    self._free.append(item)
                else:
                    rest.append(item)
        return rest

    def put(
        self,
        mail_from: str,
        recipients: list[str],
        raw: bytes,
        message_id: str | None,
        *,
        smtputf8: bool = False,
        is_bounce: bool = False,
        is_notice: bool = False,
        error: str = "",
        reserved: Held | None = None,
    ) -> SpoolEntry:
        """Store durably (message first, then envelope: an envelope never points at nothing).

        ``reserved``: a file from ``reserve``; the message is written into its space.
        """
        now = time.time()
        entry = SpoolEntry(
            id=uuid.uuid4().hex,
            mail_from=mail_from,
            recipients=recipients,
            message_id=message_id,
            created=now,
            next_attempt=now,
            last_error=error,
            smtputf8=smtputf8,
            is_bounce=is_bounce,
            is_notice=is_notice,
        )
        message = self.directory / f"{entry.id}.eml"
        _write_durably(message, raw, reserved)
        try:
            self.save(entry)
        except OSError:
            message.unlink(missing_ok=True)
            raise
        return entry

    def save(self, entry: SpoolEntry) -> None:
        _write_durably(self.directory / f"{entry.id}.json", json.dumps(asdict(entry)).encode())
        _fsync_dir(self.directory)

    def message(self, entry: SpoolEntry) -> bytes:
        return (self.directory / f"{entry.id}.eml").read_bytes()

    def remove(self, entry: SpoolEntry) -> None:
        for suffix in (".json", ".eml"):
            (self.directory / f"{entry.id}{suffix}").unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def entries(self) -> list[SpoolEntry]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(SpoolEntry(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a half-written envelope: its .tmp never got renamed, nothing was promised
        return found

    def due(self, now: float | None = None) -> list[SpoolEntry]:
        now = time.time() if now is None else now
        return [e for e in self.entries() if e.next_attempt <= now]

    def find(self, prefix: str) -> SpoolEntry:
        """The entry whose id starts with ``prefix`` (as `gdpr-proxy queue` shows it)."""
        matches = [e for e in self.entries() if e.id.startswith(prefix.lower())] if prefix else []
        if len(matches) != 1:
            raise KeyError(f"no queue entry {prefix}" if not matches else f"{prefix} names several queue entries")
        return matches[0]

    def retry_now(self) -> int:
        """Make every entry due at once (`gdpr-proxy queue flush`); returns how many."""
        entries = self.entries()
        now = time.time()
        for entry in entries:
            if entry.next_attempt > now:
                entry.next_attempt = now
                self.save(entry)
        return len(entries)


def _allocate(fd: int, size: int) -> None:
    allocate = getattr(os, "posix_fallocate", None)
    try:
        if allocate is not None:
            allocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        # This file system cannot reserve: the queue is writable, which is all we can know.


def _locked_elsewhere(path: Path) -> bool:
    """Whether a process holds this slot's lock (a relay that is running); True when unknown."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also lets the lock go
    return False
