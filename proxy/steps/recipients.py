"""Checks made at RCPT time, one recipient at a time: each returns a refusal or None."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import replies
from ..addresses import domain_of
from ..rules import RuleSet
from ..store import Store

log = logging.getLogger("gdpr_proxy.recipients")


@dataclass(frozen=True)
class RecipientCheck:
    name: str
    run: Callable[[Store, RuleSet, str, str], Awaitable[str | None]]


async def check_suppression(store: Store, rules: RuleSet, address: str, normalised: str) -> str | None:
    entry = await store.find_suppression(normalised)
    return replies.opted_out(address, entry) if entry else None


def recipient_checks() -> list[RecipientCheck]:
    return [RecipientCheck("suppression", check_suppression)]


async def first_refusal(
    checks: list[RecipientCheck], store: Store, rules: RuleSet, address: str, normalised: str
) -> tuple[str, str] | None:
    """(check name, SMTP reply) of the first check that refuses, else None."""
    for check in checks:
        reply = await check.run(store, rules, address, normalised)
        if reply:
            return check.name, reply
    return None


__all__ = ["RecipientCheck", "check_suppression", "domain_of", "first_refusal", "recipient_checks"]
