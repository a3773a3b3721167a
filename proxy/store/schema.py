"""The store's one schema, as numbered migrations (PRAGMA user_version counts them).

Append a new string to add a migration; never edit one that has shipped.
"""

from __future__ import annotations

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
]
