"""The store's one schema, as numbered migrations, for SQLite and PostgreSQL alike.

Append a new string to add a migration; never edit one that has shipped.  Write it in
SQLite's dialect using only what PostgreSQL also understands (TEXT, INTEGER, CHECK,
UNIQUE, indexes); postgresql_ddl() maps the two types that differ.  SQLite counts the
applied migrations in PRAGMA user_version, PostgreSQL in the schema_version table.
"""

from __future__ import annotations

import re

MIGRATIONS: list[str] = [
    # 1: the relay core, plus the tables the watcher and data-rights features fill.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('address', 'domain', 'hash')),
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (kind, value)
    );
    CREATE TABLE contacts (
        address TEXT PRIMARY KEY,
        name TEXT, company TEXT, role TEXT, language TEXT, country TEXT,
        source TEXT, reason TEXT,
        tracking_consent TEXT NOT NULL DEFAULT 'unknown'
            CHECK (tracking_consent IN ('unknown', 'granted', 'denied')),
        marketing_consent TEXT NOT NULL DEFAULT 'unknown'
            CHECK (marketing_consent IN ('unknown', 'granted', 'denied')),
        first_contact_at TEXT, last_contact_at TEXT, last_reply_at TEXT,
        bounce_state TEXT, soft_bounces INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE TABLE consent_events (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('tracking', 'marketing')),
        value TEXT NOT NULL,
        how TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX consent_events_address ON consent_events (address);
    CREATE TABLE sent_messages (
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (message_id, address)
    );
    CREATE INDEX sent_messages_address ON sent_messages (address);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        message_id TEXT,
        verdict TEXT NOT NULL,
        evidence TEXT NOT NULL,
        where_found TEXT NOT NULL,
        language TEXT,
        status TEXT NOT NULL CHECK (status IN ('applied', 'pending', 'dismissed', 'confirmed')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX verdicts_address ON verdicts (address);
    CREATE TABLE imap_checkpoints (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account, folder)
    );
    CREATE TABLE daily_counts (
        day TEXT NOT NULL,
        name TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (day, name)
    );
    """,
    # 2: delivery failures read like a mail operator: temporary ones counted per address and
    # suspending it for a while (a suppression with an end), sender-side ones kept as warnings
    # about the user's own set-up (the recipient's domain only, never the address).
    """
    ALTER TABLE suppressions ADD COLUMN expires_at TEXT;
    CREATE TABLE delivery_failures (
        id INTEGER PRIMARY KEY,
        address TEXT,
        domain TEXT NOT NULL,
        category TEXT NOT NULL CHECK (category IN
            ('recipient-gone', 'mailbox-full', 'temporary', 'recipient-policy', 'sender-side', 'unknown')),
        reason TEXT NOT NULL,
        evidence TEXT NOT NULL,
        message_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX delivery_failures_address ON delivery_failures (address, created_at);
    CREATE INDEX delivery_failures_category ON delivery_failures (category, created_at);
    """,
    # 3: what the footer says about a contact: the particulars of the source (a fair's or a list
    # provider's name), and whether they are a prospect at all (customers and people who wrote
    # first get no cold-mail disclosure); per copy, noted before it is sent so that a copy the
    # queue delivers later is recorded alike: it carried the full notice (Art. 14), or it went
    # to a colleague (never a contact).
    """
    ALTER TABLE contacts ADD COLUMN source_detail TEXT;
    ALTER TABLE contacts ADD COLUMN status TEXT NOT NULL DEFAULT 'prospect'
        CHECK (status IN ('prospect', 'customer', 'inbound'));
    CREATE TABLE copy_notes (
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        note TEXT NOT NULL CHECK (note IN ('full_notice', 'colleague')),
        created_at TEXT NOT NULL,
        PRIMARY KEY (message_id, address)
    );
    """,
    # 4: replies the watcher could not read (a broken or hostile server's answer) and skipped,
    # so that one message never holds up the others; kept for the user to look at.
    """
    CREATE TABLE unreadable_messages (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (account, folder, uidvalidity, uid)
    );
    """,
]


def postgresql_ddl(script: str) -> str:
    """A migration for PostgreSQL.

    SQLite's ``INTEGER PRIMARY KEY`` numbers rows by itself: an identity column does that
    in PostgreSQL.  SQLite's INTEGER is 64-bit (IMAP UIDVALIDITY and UIDs need 32 bits
    unsigned), PostgreSQL's is 32-bit signed: BIGINT keeps every value.
    """
    script = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    return re.sub(r"\bINTEGER\b", "BIGINT", script)
