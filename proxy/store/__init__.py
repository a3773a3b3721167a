"""The store: one schema, versioned migrations, one API for the relay, the watcher and the CLI.

SQLite (aiosqlite) in WAL mode.  Personal data is kept to the minimum the features need:
addresses, the contact fields a user imports, dates, and Message-IDs of relayed mail.
Message bodies are never stored.  Each area of the API is a mixin in its own module.
"""

from __future__ import annotations

from .base import StoreBase, StoreError, now, today
from .checkpoints import CheckpointsMixin
from .contacts import ContactsMixin
from .relayed import RelayedMixin
from .suppressions import Suppression, SuppressionKind, SuppressionsMixin
from .verdicts import VerdictsMixin


class Store(SuppressionsMixin, RelayedMixin, ContactsMixin, VerdictsMixin, CheckpointsMixin, StoreBase):
    """The whole store API."""


__all__ = ["Store", "StoreBase", "StoreError", "Suppression", "SuppressionKind", "now", "today"]
