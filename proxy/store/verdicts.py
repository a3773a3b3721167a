"""Classified replies: what the watcher decided, the evidence, and the review queue."""

from __future__ import annotations

from typing import Any

from .base import StoreBase, now


class VerdictsMixin(StoreBase):
    async def record_verdict(
        self,
        address: str,
        message_id: str | None,
        verdict: str,
        evidence: str,
        where: str,
        language: str | None,
        status: str,
    ) -> int:
        verdict_id = await self._insert_id(
            "INSERT INTO verdicts (address, message_id, verdict, evidence, where_found, language, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (address, message_id, verdict, evidence[:500], where, language, status, now()),
        )
        await self.count_event(f"verdict.{verdict}")
        return verdict_id

    async def has_verdict_for(self, message_id: str) -> bool:
        """A reply seen before (e.g. rescanned after a UIDVALIDITY change) is not handled twice."""
        return await self._read_one("SELECT 1 FROM verdicts WHERE message_id = ? LIMIT 1", (message_id,)) is not None

    async def verdicts(self, status: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM verdicts" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [dict(row) for row in await self._all(sql, (status,) if status else ())]

    async def set_verdict_status(self, verdict_id: int, status: str) -> dict[str, Any] | None:
        await self._write("UPDATE verdicts SET status = ? WHERE id = ?", (status, verdict_id))
        row = await self._read_one("SELECT * FROM verdicts WHERE id = ?", (verdict_id,))
        return dict(row) if row else None

    async def note_reply(self, address: str) -> None:
        """A person wrote back: last reply date, for retention (contacts who never answered)."""
        await self._write(
            "UPDATE contacts SET last_reply_at = ?, updated_at = ? WHERE address = ?", (now(), now(), address)
        )

    async def note_soft_bounce(self, address: str) -> None:
        await self._write(
            "UPDATE contacts SET soft_bounces = soft_bounces + 1, bounce_state = 'soft', updated_at = ? "
            "WHERE address = ?",
            (now(), address),
        )
