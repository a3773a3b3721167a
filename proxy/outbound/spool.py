"""The durable queue: copies the relay answered 250 for but could not hand on yet.

Each entry is two files written with fsync before the client is told 250: the message
bytes and a small JSON envelope.  Entries survive restarts and kill -9; a runner retries
them with back-off and, when a copy finally fails, tells the sender.  Notices to the
salesperson wait here too, until their mailbox takes them.
"""

from __future__ import annotations

import errno
import json
import os
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


def _write_durably(path: Path, data: bytes, into: Path | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file, or through ``into`` (space reserved before)."""
    tmp = into or path.with_suffix(path.suffix + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | (0 if into else os.O_CREAT | os.O_TRUNC), 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if into:
                os.ftruncate(fd, len(data))  # the rest of the reservation is given back
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk must not leave empty files behind
        raise


# Beside each copy: its envelope file and directory entries, written after the copy.
RESERVE_SLACK = 16 * 1024
LEFTOVER_SECONDS = 3600.0  # no reservation or temporary file lives this long in a running relay


class Reservation:
    """Queue space held for the copies of one message before the first one goes out.

    So a full or read-only queue is known before anything is sent, never after a copy went
    out and the rest could not be kept.  Each copy that must wait is written into its share.
    """

    def __init__(self, held: list[tuple[int, Path]]):
        self._held = sorted(held)

    def take(self, size: int) -> Path | None:
        """The smallest reserved file that holds ``size`` bytes (else any), or None when none is left."""
        for n, (room, _) in enumerate(self._held):
            if room >= size:
                return self._held.pop(n)[1]
        return self._held.pop()[1] if self._held else None

    def release(self) -> None:
        while self._held:
            self._held.pop()[1].unlink(missing_ok=True)


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
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

    def reserve(self, sizes: list[int]) -> Reservation:
        """Hold room for copies of these sizes; OSError when the queue is full or cannot be written."""
        held: list[tuple[int, Path]] = []
        allocate = getattr(os, "posix_fallocate", None)
        try:
            for size in sizes:
                path = self.directory / f"{uuid.uuid4().hex}.reserved"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                held.append((size, path))
                try:
                    if allocate is not None:
                        allocate(fd, 0, size + RESERVE_SLACK)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    # This file system cannot reserve: the queue is writable, which is all we can know.
                finally:
                    os.close(fd)
        except OSError:
            Reservation(held).release()
            raise
        return Reservation(held)

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
        reserved: Path | None = None,
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
