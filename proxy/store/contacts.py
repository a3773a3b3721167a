"""Contacts with provenance and consent, and the data-subject rights that act on them.

Addresses here are always in normalised form (proxy.addresses.normalise), as the relay
stores them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from .base import now
from .suppressions import SuppressionsMixin

ConsentKind = Literal["tracking", "marketing"]
ConsentValue = Literal["unknown", "granted", "denied"]

# Columns an import may set.  First/last contact, replies and bounces belong to the relay
# and the watcher, so an import never touches them.
IMPORTED_FIELDS = (
    "name",
    "company",
    "role",
    "language",
    "country",
    "source",
    "source_detail",
    "reason",
    "status",
    "tracking_consent",
    "marketing_consent",
)
CONSENT_FIELDS: dict[str, ConsentKind] = {"tracking_consent": "tracking", "marketing_consent": "marketing"}

# Tables whose rows belong to one address; erasure deletes them whole.
ADDRESS_TABLES = ("contacts", "consent_events", "sent_messages", "verdicts")
# Notes on copies (carried the full notice, went to a colleague): records of sent mail, counted with sent_messages.
NOTICE_TABLE = "copy_notes"
ERASED_MARK = "[erased]"
_CHUNK = 500  # stays far below SQLite's limit on bound parameters
# Tables that held an erased address's rows: compacted after an erasure.
COMPACTED_TABLES = (*ADDRESS_TABLES, NOTICE_TABLE, "suppressions")


def _mention_pattern(address: str) -> re.Pattern[str]:
    """``address`` as a whole address, not inside a longer one (``xjan@...``, ``...example.org``)."""
    return re.compile(r"(?<![A-Za-z0-9._%+-])" + re.escape(address) + r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])", re.IGNORECASE)


class ContactsMixin(SuppressionsMixin):
    # -- contacts ----------------------------------------------------------------------

    async def erased_among(self, addresses: Iterable[str]) -> set[str]:
        """The addresses whose keyed hash is kept because their owner asked to be forgotten."""
        by_hash = {self.address_hash(a): a for a in addresses}
        found: set[str] = set()
        hashes = list(by_hash)
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(f"SELECT value FROM suppressions WHERE kind = 'hash' AND value IN ({marks})", chunk)
            found.update(by_hash[row[0]] for row in rows)
        return found

    async def upsert_contacts(self, rows: Sequence[Mapping[str, str]], how: str) -> tuple[int, int]:
        """Insert or update contacts in one transaction: (added, updated).

        Each row has 'address' and any of IMPORTED_FIELDS; absent fields keep their stored
        value.  A consent value that changes is recorded in consent_events with ``how``.
        """
        stamp = now()
        added = updated = 0
        async with self.transaction():
            for row in rows:
                address = row["address"]
                old = await self._one(
                    "SELECT tracking_consent, marketing_consent FROM contacts WHERE address = ?", (address,)
                )
                fields = [f for f in IMPORTED_FIELDS if f in row]
                columns = ", ".join(["address", *fields, "created_at", "updated_at"])
                marks = ", ".join("?" * (len(fields) + 3))
                updates = ", ".join([*(f"{f} = excluded.{f}" for f in fields), "updated_at = excluded.updated_at"])
                await self._write(
                    f"INSERT INTO contacts ({columns}) VALUES ({marks}) ON CONFLICT (address) DO UPDATE SET {updates}",
                    (address, *(row[f] for f in fields), stamp, stamp),
                )
                for field, kind in CONSENT_FIELDS.items():
                    before = old[field] if old else "unknown"
                    if field in row and row[field] != before:
                        await self._insert_consent_event(address, kind, row[field], how, stamp)
                if old:
                    updated += 1
                else:
                    added += 1
        return added, updated

    async def set_consent(self, address: str, kind: ConsentKind, value: ConsentValue, how: str) -> bool:
        """Record a consent decision (creating the contact if needed); False if unchanged."""
        if kind not in CONSENT_FIELDS.values():  # the column name is built from it
            raise ValueError(f"unknown consent kind {kind!r}")
        stamp = now()
        column = f"{kind}_consent"
        async with self.transaction():
            row = await self._one(f"SELECT {column} FROM contacts WHERE address = ?", (address,))
            await self._write(
                f"INSERT INTO contacts (address, {column}, created_at, updated_at) VALUES (?, ?, ?, ?) "
                f"ON CONFLICT (address) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at",
                (address, value, stamp, stamp),
            )
            # Repeated decisions are still recorded: the latest "how" is the proof that counts.
            await self._insert_consent_event(address, kind, value, how, stamp)
        return row is None or row[0] != value

    async def _insert_consent_event(self, address: str, kind: str, value: str, how: str, stamp: str) -> None:
        await self._write(
            "INSERT INTO consent_events (address, kind, value, how, at) VALUES (?, ?, ?, ?, ?)",
            (address, kind, value, how, stamp),
        )

    async def consent_history(self, address: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT kind, value, how, at FROM consent_events WHERE address = ? ORDER BY at, id", (address,)
        )
        return [dict(row) for row in rows]

    # -- access (Art. 15) ----------------------------------------------------------------

    async def personal_data(self, address: str) -> dict[str, Any]:
        """Everything the store holds about ``address``, section by section."""
        contact = await self._read_one("SELECT * FROM contacts WHERE address = ?", (address,))
        where, params = self.blocking(address)
        suppressions = await self._all(
            f"SELECT kind, value, reason, source, note, created_at FROM suppressions WHERE {where} "
            "ORDER BY created_at, id",
            params,
        )
        sent = await self._all(
            "SELECT message_id, sent_at FROM sent_messages WHERE address = ? ORDER BY sent_at", (address,)
        )
        verdicts = await self._all(
            "SELECT message_id, verdict, evidence, where_found, language, status, created_at "
            "FROM verdicts WHERE address = ? ORDER BY created_at, id",
            (address,),
        )
        return {
            "contact": dict(contact) if contact else None,
            "consent_history": await self.consent_history(address),
            "suppressions": [dict(row) for row in suppressions],
            "relayed_messages": [dict(row) for row in sent],
            "classified_replies": [dict(row) for row in verdicts],
        }

    # -- erasure (Art. 17) ---------------------------------------------------------------

    async def erase_address(self, address: str, source: str) -> dict[str, int]:
        """Delete every row about ``address`` and keep only its keyed hash: rows removed per table.

        The hash goes in first, in the same transaction, so the relay refuses the address
        from the moment its data disappears.
        """
        removed: dict[str, int] = {}
        async with self.transaction():
            if await self._write(
                "INSERT INTO suppressions (kind, value, reason, source, note, created_at) "
                "VALUES ('hash', ?, 'erasure', ?, NULL, ?) ON CONFLICT (kind, value) DO NOTHING",
                (self.address_hash(address), source, now()),
            ):
                await self.count_event("suppressed.erasure")
            for table in ADDRESS_TABLES:
                removed[table] = await self._write(f"DELETE FROM {table} WHERE address = ?", (address,))
            removed["sent_messages"] += await self._write(f"DELETE FROM {NOTICE_TABLE} WHERE address = ?", (address,))
            removed["suppressions"] = await self._write(
                "DELETE FROM suppressions WHERE kind = 'address' AND value = ?", (address,)
            )
            removed["mentions"] = await self._scrub_mentions(address)
        return removed

    async def _scrub_mentions(self, address: str) -> int:
        """Replace the address where other rows mention it (e.g. a reply quoted as evidence)."""
        pattern = _mention_pattern(address)
        changed = 0
        where = self._backend.row_key_where
        for table, column, row_key, value in await self._candidate_mentions(address, self._backend.for_update):
            scrubbed = pattern.sub(ERASED_MARK, value)
            if scrubbed != value:
                await self._write(f'UPDATE "{table}" SET "{column}" = ? WHERE {where}', (scrubbed, row_key))
                changed += 1
        return changed

    async def _candidate_mentions(self, address: str, suffix: str = "") -> list[tuple[str, str, Any, str]]:
        # LIKE finds a superset (``_`` matches any character); the pattern then decides.
        needle = "%" + re.sub(r"([\\%_])", r"\\\1", address.lower()) + "%"
        found: list[tuple[str, str, Any, str]] = []
        for table, column in await self._backend.text_columns():
            rows = await self._all(
                f'SELECT {self._backend.row_key}, "{column}" FROM "{table}" '
                f"WHERE lower(\"{column}\") LIKE ? ESCAPE '\\'{suffix}",
                (needle,),
            )
            found.extend((table, column, row[0], str(row[1])) for row in rows)
        return found

    async def mentions(self, address: str) -> int:
        """Values that still contain ``address`` in any text column (0 after a complete erasure)."""
        pattern = _mention_pattern(address)
        return sum(1 for *_, value in await self._candidate_mentions(address) if pattern.search(value))

    async def compact(self) -> None:
        """Leave no copy of deleted rows where the store can reach it.

        SQLite: fold the WAL in, rebuild the file, empty the WAL.  PostgreSQL: rewrite the
        tables an erasure touches; the server's WAL and backups are beyond the store's reach.
        """
        await self._backend.compact(COMPACTED_TABLES)

    # -- erasure requests awaiting confirmation --------------------------------------------

    async def record_erasure_request(
        self, address: str, evidence: str, where: str, message_id: str | None, language: str | None
    ) -> None:
        """A pending 'erasure' verdict, and the address suppressed until a person decides."""
        stamp = now()
        async with self.transaction():
            await self._write(
                "INSERT INTO verdicts (address, message_id, verdict, evidence, where_found, language, status, "
                "created_at) VALUES (?, ?, 'erasure', ?, ?, ?, 'pending', ?)",
                (address, message_id, evidence, where, language, stamp),
            )
            if await self._write(
                "INSERT INTO suppressions (kind, value, reason, source, note, created_at) "
                "VALUES ('address', ?, 'erasure', 'watcher', 'erasure requested, awaiting confirmation', ?) "
                "ON CONFLICT (kind, value) DO NOTHING",
                (address, stamp),
            ):
                await self.count_event("suppressed.erasure")

    async def pending_erasure_requests(self) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT address, message_id, evidence, where_found, created_at FROM verdicts "
            "WHERE verdict = 'erasure' AND status = 'pending' ORDER BY created_at, id"
        )
        return [dict(row) for row in rows]

    # -- retention -------------------------------------------------------------------------

    async def purge_older(
        self, contacts_before: str, messages_before: str, verdicts_before: str, dry_run: bool = False
    ) -> dict[str, int]:
        """Delete what is past its retention limit (ISO timestamps): rows per table.

        Contacts who never replied go once their last contact (or, never contacted, their
        last import) is older than ``contacts_before``; their consent history goes with
        them.  Pending verdicts wait for a decision.  Suppressions are never purged: they
        are what keeps an objection honoured.
        """
        stale = "SELECT address FROM contacts WHERE last_reply_at IS NULL AND COALESCE(last_contact_at, updated_at) < ?"
        statements = {
            "consent_events": (f"FROM consent_events WHERE address IN ({stale})", (contacts_before,)),
            "contacts": (f"FROM contacts WHERE address IN ({stale})", (contacts_before,)),
            "sent_messages": ("FROM sent_messages WHERE sent_at < ?", (messages_before,)),
            "verdicts": ("FROM verdicts WHERE created_at < ? AND status != 'pending'", (verdicts_before,)),
        }
        counts: dict[str, int] = {}
        async with self.transaction(commit=not dry_run):
            for table, (where, params) in statements.items():
                row = await self._one(f"SELECT COUNT(*) {where}", params)
                counts[table] = int(row[0]) if row else 0
                if not dry_run and counts[table]:
                    await self._write(f"DELETE {where}", params)
            # Notes for copies that never went out (given up, refused on the way): records of sent mail.
            notes = f"FROM {NOTICE_TABLE} WHERE created_at < ?"
            row = await self._one(f"SELECT COUNT(*) {notes}", (messages_before,))
            counts["sent_messages"] += int(row[0]) if row else 0
            if not dry_run:
                await self._write(f"DELETE {notes}", (messages_before,))
        return counts

    async def checkpoint_quietly(self) -> bool:
        """Clean up after a purge (SQLite: empty the WAL; PostgreSQL: VACUUM); False if left for later."""
        return await self._backend.tidy(ADDRESS_TABLES)
