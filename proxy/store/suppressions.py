"""The suppression list: addresses, whole domains, and keyed hashes of erased addresses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..addresses import domain_of, parent_domains
from .base import StoreBase, now

SuppressionKind = Literal["address", "domain", "hash"]


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


class SuppressionsMixin(StoreBase):
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
        where, params = self.blocking(address)
        row = await self._read_one(
            f"SELECT kind, value, reason, source, note, created_at FROM suppressions WHERE {where} "
            "ORDER BY created_at LIMIT 1",
            params,
        )
        return Suppression(*row) if row else None

    def blocking(self, address: str) -> tuple[str, tuple[str, ...]]:
        """WHERE clause and parameters for the suppressions that block ``address``:
        the address itself, its keyed hash, its domain or any parent domain; a suspension
        (an entry with an end) only until it ends."""
        domains = parent_domains(domain_of(address))
        marks = ",".join("?" * len(domains))
        where = (
            "((kind = 'address' AND value = ?) OR (kind = 'hash' AND value = ?) "
            f"OR (kind = 'domain' AND value IN ({marks}))) AND (expires_at IS NULL OR expires_at > ?)"
        )
        return where, (address, self.address_hash(address), *domains, now())

    async def remove_suppression_if(self, kind: SuppressionKind, value: str, reason: str) -> bool:
        """Remove an entry only if it has this reason (a dismissed review never lifts an opt-out)."""
        query = "DELETE FROM suppressions WHERE kind = ? AND value = ? AND reason = ?"
        return await self._write(query, (kind, value, reason)) > 0
