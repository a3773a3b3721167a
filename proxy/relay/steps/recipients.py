"""Checks made at RCPT time, one recipient at a time: each returns a refusal or None."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.addresses import domain_of
from proxy.relay import replies
from proxy.rules.ruleset import RuleSet
from proxy.store import Store

log = logging.getLogger("gdpr_proxy.recipients")


@dataclass(frozen=True)
class RecipientCheck:
    name: str
    run: Callable[[Store, RuleSet, str, str], Awaitable[str | None]]


async def check_suppression(store: Store, rules: RuleSet, address: str, normalised: str) -> str | None:
    entry = await store.find_suppression(normalised)
    return replies.opted_out(address, entry) if entry else None


async def check_consumer_address(store: Store, rules: RuleSet, address: str, normalised: str) -> str | None:
    """B2C guard: private persons need prior consent for cold e-mail, businesses only the right to object."""
    domain = domain_of(normalised)
    policy = rules.policies.consumer_addresses
    if policy.action == "allow" or not rules.freemail.is_consumer(domain):
        return None
    contact = await store.contact(normalised)
    if contact and contact.get("marketing_consent") == "granted":
        return None
    if policy.enforced_action == "reject":
        return replies.consumer_without_consent(address, domain)
    verb = "would be refused (log_only)" if policy.action == "reject" else "sent (policy warn)"
    log.warning("recipient at consumer domain %s without marketing consent: %s", domain, verb)
    return None


def recipient_checks() -> list[RecipientCheck]:
    return [
        RecipientCheck("suppression", check_suppression),
        RecipientCheck("consumer-address", check_consumer_address),
    ]


async def first_refusal(
    checks: list[RecipientCheck], store: Store, rules: RuleSet, address: str, normalised: str
) -> tuple[str, str] | None:
    """(check name, SMTP reply) of the first check that refuses, else None."""
    for check in checks:
        reply = await check.run(store, rules, address, normalised)
        if reply:
            return check.name, reply
    return None
