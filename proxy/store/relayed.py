"""What the relay records: first and last contact per address, Message-ID -> recipients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import StoreBase, now

_NOT_FORGOTTEN = "WHERE NOT EXISTS (SELECT 1 FROM suppressions WHERE kind = 'hash' AND value = ?)"


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
        """Mark addresses as contacted (first and last contact) once upstream accepted the mail.

        Two statements, one trip each (this is in the time the mail client waits).  The
        Message-ID record goes first: should the process die in between, a reply can still be
        traced, and the next message merely repeats the full disclosure.  An address forgotten
        while the message was on its way (its keyed hash is suppressed) is not recorded again.
        """
        stamp = now()
        people = [(a, self.address_hash(a)) for a in dict.fromkeys(addresses)]
        if not people:
            return
        if message_id:
            await self._backend.execute_many(
                "INSERT INTO sent_messages (message_id, address, sent_at) SELECT ?, ?, ? "
                + _NOT_FORGOTTEN
                + " ON CONFLICT DO NOTHING",
                [(message_id, address, stamp, hashed) for address, hashed in people],
            )
        await self._backend.execute_many(
            "INSERT INTO contacts (address, first_contact_at, last_contact_at, created_at, updated_at) "
            "SELECT ?, ?, ?, ?, ? " + _NOT_FORGOTTEN + " ON CONFLICT (address) DO UPDATE SET "
            "first_contact_at = COALESCE(contacts.first_contact_at, excluded.first_contact_at), "
            "last_contact_at = excluded.last_contact_at, updated_at = excluded.updated_at",
            [(address, stamp, stamp, stamp, stamp, hashed) for address, hashed in people],
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
