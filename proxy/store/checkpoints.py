"""Per-folder IMAP progress of the reply watcher (UIDVALIDITY and last UID handled, messages skipped)."""

from __future__ import annotations

from typing import Any

from .base import StoreBase, now


class CheckpointsMixin(StoreBase):
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

    async def record_unreadable(self, account: str, folder: str, uidvalidity: int, uid: int, reason: str) -> None:
        """A message the watcher could not read and skipped (the user may want to read it)."""
        await self._write(
            "INSERT INTO unreadable_messages (account, folder, uidvalidity, uid, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET "
            "reason = excluded.reason, created_at = excluded.created_at",
            (account, folder, uidvalidity, uid, reason[:500], now()),
        )
        await self.count_event("watcher.unreadable")

    async def unreadable_messages(self) -> list[dict[str, Any]]:
        rows = await self._all("SELECT * FROM unreadable_messages ORDER BY created_at, folder, uid")
        return [dict(row) for row in rows]
