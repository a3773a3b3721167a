"""Checks made for each recipient (at RCPT, and again before every retry): each returns a refusal or None."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.addresses import domain_of
from proxy.outbound.notices import Refusal
from proxy.relay import replies
from proxy.rules.ruleset import RuleSet
from proxy.store import Store

log = logging.getLogger("gdpr_proxy.recipients")


@dataclass(frozen=True)
class RecipientRefusal:
    check: str  # the check's name, for logs and counters
    reply: str  # the SMTP reply, for clients that are told per recipient (refuse_at_rcpt)
    notice: Refusal  # the same, for the notice to the sender


@dataclass(frozen=True)
class RecipientCheck:
    name: str
    run: Callable[[Store, RuleSet, str, str], Awaitable[RecipientRefusal | None]]


async def check_suppression(store: Store, rules: RuleSet, address: str, normalised: str) -> RecipientRefusal | None:
    entry = await store.find_suppression(normalised)
    if entry is None:
        return None
    kind = {"domain": "domain_opted_out", "hash": "erased"}.get(entry.kind, "opted_out")
    domain = entry.value if entry.kind == "domain" else domain_of(normalised)
    notice = Refusal(address, kind, date=entry.date, reason=entry.reason, domain=domain)
    return RecipientRefusal("suppression", replies.opted_out(address, entry), notice)


async def check_consumer_address(
    store: Store, rules: RuleSet, address: str, normalised: str
) -> RecipientRefusal | None:
    """B2C guard: private persons need prior consent for cold e-mail, businesses only the right to object."""
    domain = domain_of(normalised)
    policy = rules.policies.consumer_addresses
    if policy.action == "allow" or not rules.freemail.is_consumer(domain):
        return None
    contact = await store.contact(normalised)
    if contact and contact.get("marketing_consent") == "granted":
        return None
    if policy.decide(f"recipient at consumer domain {domain} without marketing consent") != "reject":
        return None
    notice = Refusal(address, "consumer_no_consent", domain=domain)
    return RecipientRefusal("consumer-address", replies.consumer_without_consent(address, domain), notice)


def recipient_checks() -> list[RecipientCheck]:
    return [
        RecipientCheck("suppression", check_suppression),
        RecipientCheck("consumer-address", check_consumer_address),
    ]


async def find_refusal(
    checks: list[RecipientCheck], store: Store, rules: RuleSet, address: str, normalised: str
) -> RecipientRefusal | None:
    """The first check that refuses this recipient, else None."""
    for check in checks:
        refusal = await check.run(store, rules, address, normalised)
        if refusal:
            return refusal
    return None


async def first_refusal(
    checks: list[RecipientCheck], store: Store, rules: RuleSet, address: str, normalised: str
) -> tuple[str, str] | None:
    """(check name, SMTP reply) of the first check that refuses, else None."""
    refusal = await find_refusal(checks, store, rules, address, normalised)
    return (refusal.check, refusal.reply) if refusal else None
