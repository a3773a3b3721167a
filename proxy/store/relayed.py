"""What the relay records: first and last contact per address, Message-ID -> recipients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import StoreBase, now


class RelayedMixin(StoreBase):
    async def contact(self, address: str) -> dict[str, Any] | None:
        row = await self._read_one("SELECT * FROM contacts WHERE address = ?", (address,))
        return dict(row) if row else None

    async def contacts_for(self, addresses: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(addresses))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = await self._all(f"SELECT * FROM contacts WHERE address IN ({marks})", wanted)
        return {row["address"]: dict(row) for row in rows}

    async def record_delivery(self, message_id: str | None, addresses: Iterable[str]) -> None:
        """Mark addresses as contacted (first and last contact) once upstream accepted the mail."""
        stamp = now()
        async with self.transaction():
            for address in addresses:
                if await self._one(
                    "SELECT 1 FROM suppressions WHERE kind = 'hash' AND value = ?", (self.address_hash(address),)
                ):
                    continue  # forgotten while this message was on its way: record nothing
                await self._write(
                    "INSERT INTO contacts (address, first_contact_at, last_contact_at, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
                    "first_contact_at = COALESCE(contacts.first_contact_at, excluded.first_contact_at), "
                    "last_contact_at = excluded.last_contact_at, updated_at = excluded.updated_at",
                    (address, stamp, stamp, stamp, stamp),
                )
                if message_id:
                    await self._write(
                        "INSERT INTO sent_messages (message_id, address, sent_at) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (message_id, address, stamp),
                    )

    async def recipients_of(self, message_ids: Iterable[str]) -> list[str]:
        """Addresses a relayed message went to, for replies that follow In-Reply-To/References."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._all(
            f"SELECT DISTINCT address FROM sent_messages WHERE message_id IN ({marks}) ORDER BY address", ids
        )
        return [row[0] for row in rows]
