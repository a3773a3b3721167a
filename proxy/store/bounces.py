"""Delivery failures: temporary ones counted per address and suspending it for a while, sender-side warnings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import StoreBase, now

SUSPENDED = "suspended"  # suppression reason of an address that failed temporarily too often


def _ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="seconds")


def _ahead(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(timespec="seconds")


class BouncesMixin(StoreBase):
    async def record_delivery_failure(
        self,
        address: str | None,
        domain: str,
        category: str,
        reason: str,
        evidence: str,
        message_id: str | None,
    ) -> None:
        """One failure as a bounce reported it; sender-side ones keep only the recipient's domain."""
        await self._write(
            "INSERT INTO delivery_failures (address, domain, category, reason, evidence, message_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (address, domain, category, reason, evidence[:300], message_id, now()),
        )
        await self.count_event(f"delivery_failure.{category}")

    async def temporary_failures(self, address: str, within_days: float) -> int:
        """Temporary failures (full mailbox included) of an address over the last days."""
        row = await self._read_one(
            "SELECT COUNT(*) FROM delivery_failures WHERE address = ? AND created_at > ? "
            "AND category IN ('temporary', 'mailbox-full')",
            (address, _ago(within_days)),
        )
        return int(row[0]) if row else 0

    async def suspend_address(self, address: str, days: float, note: str) -> bool:
        """Block an address for a while; never shortens or replaces a lasting suppression."""
        until = _ahead(days)
        async with self.transaction():
            row = await self._one(
                "SELECT reason, expires_at FROM suppressions WHERE kind = 'address' AND value = ?", (address,)
            )
            if row is not None and (row[0] != SUSPENDED or (row[1] or "") >= until):
                return False
            if row is not None:
                await self._write(
                    "UPDATE suppressions SET expires_at = ?, note = ?, created_at = ? "
                    "WHERE kind = 'address' AND value = ?",
                    (until, note[:200], now(), address),
                )
            else:
                await self._write(
                    "INSERT INTO suppressions (kind, value, reason, source, note, created_at, expires_at) "
                    "VALUES ('address', ?, ?, 'watcher', ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING",
                    (address, SUSPENDED, note[:200], now(), until),
                )
        await self.count_event(f"suppressed.{SUSPENDED}")
        return True

    async def suspension_end(self, address: str) -> str | None:
        row = await self._read_one(
            "SELECT expires_at FROM suppressions "
            "WHERE kind = 'address' AND value = ? AND reason = ? AND expires_at > ?",
            (address, SUSPENDED, now()),
        )
        return str(row[0]) if row else None

    async def lift_expired_suspensions(self) -> int:
        """Suspensions that have run out no longer block (see blocking()); this removes their rows."""
        return await self._write(
            "DELETE FROM suppressions WHERE reason = ? AND expires_at IS NOT NULL AND expires_at <= ?",
            (SUSPENDED, now()),
        )

    async def suspended_count(self) -> int:
        row = await self._read_one(
            "SELECT COUNT(*) FROM suppressions WHERE reason = ? AND expires_at > ?", (SUSPENDED, now())
        )
        return int(row[0]) if row else 0

    async def sender_side_warnings(self, within_days: float = 15) -> list[dict[str, Any]]:
        """What receiving servers held against the user's own set-up, newest first, one line per reason."""
        rows = await self._all(
            "SELECT reason, COUNT(*), MAX(created_at), MIN(evidence), MIN(domain) FROM delivery_failures "
            "WHERE category = 'sender-side' AND created_at > ? GROUP BY reason ORDER BY MAX(created_at) DESC",
            (_ago(within_days),),
        )
        return [
            {"reason": r[0], "count": int(r[1]), "last": str(r[2]), "evidence": str(r[3]), "domain": str(r[4])}
            for r in rows
        ]

    async def bounce_suppressions(self) -> list[tuple[str, str]]:
        """Addresses suppressed for a bounce, with the best evidence recorded for them."""
        rows = await self._all(
            "SELECT s.value, COALESCE(s.note, ''), "
            "(SELECT v.evidence FROM verdicts v WHERE v.address = s.value AND v.verdict = 'bounce' "
            "ORDER BY v.id DESC LIMIT 1) FROM suppressions s WHERE s.kind = 'address' AND s.reason = 'bounce'"
        )
        return [(str(r[0]), str(r[2] or r[1] or "")) for r in rows]

    async def first_time(self, key: str) -> bool:
        """True once per store for ``key``: for one-off work such as re-judging old suppressions."""
        return (
            await self._write("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now()))
            > 0
        )
