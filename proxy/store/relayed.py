"""What the relay records: first (full notice delivered) and last contact per address, Message-ID -> recipients."""

from __future__ import annotations

import secrets
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
        rows = await self._read_indexed(f"SELECT * FROM contacts WHERE address IN ({marks})", wanted)
        return {row["address"]: dict(row) for row in rows}

    async def record_delivery(
        self, message_id: str | None, addresses: Iterable[str], notified: Iterable[str] | None = None
    ) -> None:
        """Mark addresses as contacted once upstream accepted the mail.

        ``notified``: the addresses whose copy carried the full first-contact notice; only they
        get a first contact (None: every address, for callers that sent nothing else).  Someone
        whose copy left without it (signed mail sent unchanged, footers off) is still a first
        contact next time, so the notice is never skipped.

        One transaction, one trip to the database (this is in the time the mail client waits):
        the Message-ID records, the contacts and the spent copy notes together or not at all,
        so the next message at worst repeats the full disclosure.  An address forgotten
        while the message was on its way (its keyed hash is suppressed) is not recorded again.
        """
        stamp = now()
        people = [(a, self.address_hash(a)) for a in dict.fromkeys(addresses)]
        if not people:
            return
        full = {a for a, _ in people} if notified is None else set(notified)
        sent = (
            "INSERT INTO sent_messages (message_id, address, sent_at) SELECT ?, ?, ? "
            + _NOT_FORGOTTEN
            + " ON CONFLICT DO NOTHING",
            [(message_id, address, stamp, hashed) for address, hashed in people] if message_id else [],
        )
        contacted = (
            "INSERT INTO contacts (address, first_contact_at, last_contact_at, created_at, updated_at) "
            "SELECT ?, ?, ?, ?, ? " + _NOT_FORGOTTEN + " ON CONFLICT (address) DO UPDATE SET "
            "first_contact_at = COALESCE(contacts.first_contact_at, excluded.first_contact_at), "
            "last_contact_at = excluded.last_contact_at, updated_at = excluded.updated_at",
            [(address, stamp if address in full else None, stamp, stamp, stamp, hashed) for address, hashed in people],
        )
        served = (  # its note has served (only first contacts have one)
            "DELETE FROM copy_notes WHERE message_id = ? AND address = ?",
            [(message_id, a) for a in full] if message_id and notified is not None else [],
        )
        await self._backend.execute_batch([sent, contacted, served])

    async def note_copies(self, message_id: str, notes: Iterable[tuple[str, str]]) -> None:
        """Before sending: (address, 'full_notice' | 'colleague') for copies of ``message_id``, so a copy
        the queue delivers later is recorded as one relayed at once would be."""
        stamp = now()
        rows = [(message_id, address, note, stamp) for address, note in dict(notes).items()]
        if rows:
            await self._backend.execute_many(
                "INSERT INTO copy_notes (message_id, address, note, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )

    async def record_queued_delivery(self, message_id: str | None, addresses: Iterable[str]) -> None:
        """A queued copy went out: first contact only where its full notice was noted; colleagues not at all."""
        wanted = list(dict.fromkeys(addresses))
        notes: dict[str, str] = {}
        if message_id and wanted:
            marks = ",".join("?" * len(wanted))
            rows = await self._all(
                f"SELECT address, note FROM copy_notes WHERE message_id = ? AND address IN ({marks})",
                [message_id, *wanted],
            )
            notes = {row[0]: row[1] for row in rows}
        contacts = [a for a in wanted if notes.get(a) != "colleague"]
        await self.record_delivery(message_id, contacts, [a for a in contacts if notes.get(a) == "full_notice"])
        colleagues = [(message_id, a) for a in wanted if notes.get(a) == "colleague"]
        if colleagues:
            await self._backend.execute_many("DELETE FROM copy_notes WHERE message_id = ? AND address = ?", colleagues)

    async def unsubscribe_key(self) -> bytes:
        """The key that signs one-click unsubscribe links; one per store, so a team's relays share it."""
        cached: bytes | None = self.__dict__.get("_unsubscribe_key")
        if cached is not None:  # it never changes once written: one read per process
            return cached
        query = "SELECT value FROM meta WHERE key = 'unsubscribe_key'"
        row = await self._one(query)
        if row is None:  # the first relay of a team to ask writes it; every one reads back that one
            await self._write(
                "INSERT INTO meta (key, value) VALUES ('unsubscribe_key', ?) ON CONFLICT (key) DO NOTHING",
                (secrets.token_hex(32),),
            )
            row = await self._one(query)
        assert row is not None
        key = bytes.fromhex(str(row[0]))
        self.__dict__["_unsubscribe_key"] = key
        return key

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
