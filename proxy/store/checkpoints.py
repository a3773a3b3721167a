"""Per-folder IMAP progress of the reply watcher (UIDVALIDITY and last UID handled)."""

from __future__ import annotations

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
