"""The durable queue: copies the relay answered 250 for but could not hand on yet.

Each entry is two files written with fsync before the client is told 250: the message
bytes and a small JSON envelope.  Entries survive restarts and kill -9; a runner retries
them with back-off and, when a copy finally fails, tells the sender.  Notices to the
salesperson wait here too, until their mailbox takes them.
"""

from __future__ import annotations

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


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

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
    ) -> SpoolEntry:
        """Store durably (message first, then envelope: an envelope never points at nothing)."""
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
        _write_durably(self.directory / f"{entry.id}.eml", raw)
        self.save(entry)
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
