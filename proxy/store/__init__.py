"""The store: one schema, versioned migrations, one API for the relay, the watcher and the CLI.

Embedded SQLite by default; a PostgreSQL database (``store: postgresql://...``) lets a
sales team share one suppression list, so an opt-out one colleague's watcher catches
blocks the address at every colleague's relay.  Personal data is kept to the minimum the
features need: addresses, the contact fields a user imports, dates, and Message-IDs of
relayed mail.  Message bodies are never stored.  Each area of the API is a mixin in its
own module; backend.py holds what differs between the two databases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.config.store_url import is_postgresql_url, mask_url

from .base import StoreBase, StoreError, now, today
from .bounces import BouncesMixin
from .checkpoints import CheckpointsMixin
from .contacts import ContactsMixin
from .relayed import RelayedMixin
from .suppressions import Suppression, SuppressionKind, SuppressionsMixin
from .verdicts import VerdictsMixin

if TYPE_CHECKING:
    from proxy.config.settings import Config


class Store(ContactsMixin, SuppressionsMixin, RelayedMixin, VerdictsMixin, CheckpointsMixin, BouncesMixin, StoreBase):
    """The whole store API."""


async def open_store(config: Config) -> Store:
    """The store the configuration names: its PostgreSQL URL, or its SQLite file."""
    url = config.store_url
    return await Store.open(url if url else config.store_path)


__all__ = [
    "Store",
    "StoreBase",
    "StoreError",
    "Suppression",
    "SuppressionKind",
    "is_postgresql_url",
    "mask_url",
    "now",
    "open_store",
    "today",
]
