"""Contacts with provenance and consent, and the data-subject rights that act on them."""

from __future__ import annotations

from .base import StoreBase


class ContactsMixin(StoreBase):
    pass
