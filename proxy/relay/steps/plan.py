"""Decide, per recipient, region, language, who they are to us, which footer, and whether trackers go."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from proxy.addresses import domain_of, parent_domains
from proxy.config.settings import SenderConfig
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, RecipientPlan, Reject
from proxy.relay.steps.footer import footer_values
from proxy.rules.footers import recipient_language
from proxy.rules.ruleset import RuleSet
from proxy.rules.sources import Vocabulary

log = logging.getLogger("gdpr_proxy.steps")

# Contact statuses (and the one source) that mean the person is no cold-contacted prospect.
NOT_PROSPECTS = {"customer": "customer", "inbound": "inbound"}
OWN_ENQUIRY = "own_enquiry"

# A sender writing to many unrecorded contacts would get two warnings per message: each
# (source or reason, domain) is named once per period, and every message is counted.
WARN_AGAIN_SECONDS = 3600.0
_warned: dict[tuple[str, str], float] = {}


def _first_warning_in_period(what: str, domain: str) -> bool:
    moment = time.monotonic()
    last = _warned.get((what, domain))
    if last is not None and moment - last < WARN_AGAIN_SECONDS:
        return False
    if len(_warned) > 10_000:  # a long-running relay writing to ever new domains
        _warned.clear()
    _warned[(what, domain)] = moment
    return True


def own_domains(mail_from: str, sender: SenderConfig, rules: RuleSet) -> frozenset[str]:
    """The sender's domains: the envelope sender's (unless it is a consumer mail provider, where
    every other customer would count as a colleague) and the configured internal domains."""
    domains = {d.strip().lower().rstrip(".") for d in sender.internal_domains if d.strip()}
    if "@" in mail_from:
        domain = domain_of(mail_from.strip().lower())
        if domain and not rules.freemail.is_consumer(domain):
            domains.add(domain)
    return frozenset(domains)


def audience_of(plan: RecipientPlan, rules: RuleSet, own: frozenset[str]) -> str:
    if own and any(d in own for d in parent_domains(plan.domain)):
        return "colleague"
    contact = plan.contact or {}
    status = str(contact.get("status") or "prospect")
    if status in NOT_PROSPECTS:
        return NOT_PROSPECTS[status]
    if rules.vocabulary.key_for("sources", contact.get("source")) == OWN_ENQUIRY:
        return "inbound"
    if contact.get("marketing_consent") == "granted":
        return "consent"
    return "prospect"


def plan_one(plan: RecipientPlan, rules: RuleSet, sender: SenderConfig, own: frozenset[str] = frozenset()) -> None:
    contact = plan.contact or {}
    plan.region = rules.regions.region_for(plan.domain, contact.get("country"))
    plan.language = recipient_language(rules.regions, contact, plan.domain, sender.default_language)
    plan.first_contact = not contact.get("first_contact_at")
    plan.audience = audience_of(plan, rules, own)
    plan.footer_kind = None
    if rules.policies.footers:
        plan.footer_kind = _footer_kind(plan, rules)
    if plan.footer_kind:
        plan.footer_values = footer_values(plan, sender, rules.footers, rules.vocabulary)
    consent = contact.get("tracking_consent", "unknown")
    plan.strip_trackers = (
        rules.policies.strip_trackers and rules.regions.tracking_needs_consent(plan.region) and consent != "granted"
    )


def _footer_kind(plan: RecipientPlan, rules: RuleSet) -> Any:
    if plan.audience == "colleague":
        return None  # colleagues are not prospects: no disclosure, and no contact record either
    if plan.audience == "consent":
        return "consent"
    if plan.audience in ("customer", "inbound"):
        policy = rules.footers.not_prospects
        if policy == "no_footer":
            return None
        if policy == "follow_up":
            return "follow_up"
    return "first_contact" if plan.first_contact else "follow_up"


def unrecorded(plans: Iterable[RecipientPlan], what: str) -> list[RecipientPlan]:
    """First contacts whose record says nothing about ``what`` (source, or reason and role)."""
    found = []
    for plan in plans:
        if plan.footer_kind != "first_contact":
            continue
        contact = plan.contact or {}
        fields = ("source", "source_detail") if what == "source" else ("reason", "role")
        if not any((contact.get(f) or "").strip() for f in fields):
            found.append(plan)
    return found


def check_provenance(ctx: MessageContext) -> None:
    """Apply missing_source / missing_reason to the first contacts of this message."""
    footers = ctx.rules.footers
    sender = ctx.config.sender
    for what, policy, default in (
        ("source", footers.missing_source, sender.default_source),
        ("reason", footers.missing_reason, sender.default_reason),
    ):
        missing = unrecorded(ctx.recipients, what)
        if not missing:
            continue
        vocabulary: Vocabulary = "sources" if what == "source" else "reasons"
        if policy == "refuse":
            log.warning("%s refused: %d first contact(s) without a recorded %s", ctx.label, len(missing), what)
            raise Reject(replies.provenance_missing(what, [p.address for p in missing]))
        if policy == "default" and not ctx.rules.vocabulary.key_for(vocabulary, default):
            log.warning(
                "%s: sender.default_%s is not a key of rules/sources.yaml; the footer says it was not recorded",
                ctx.label,
                what,
            )
        elif policy == "warn":
            ctx.counts[f"unrecorded.{what}"] += len(missing)
            fresh = sorted(d for d in {p.domain for p in missing} if _first_warning_in_period(what, d))
            if fresh:
                log.warning(
                    "%s: first contact without a recorded %s (recipients at %s; not repeated for these "
                    "domains for an hour)",
                    ctx.label,
                    what,
                    ", ".join(fresh),
                )


async def plan_recipients(ctx: MessageContext) -> None:
    contacts = await ctx.store.contacts_for(p.normalised for p in ctx.recipients)
    own = own_domains(ctx.mail_from, ctx.config.sender, ctx.rules)
    for plan in ctx.recipients:
        plan.contact = contacts.get(plan.normalised)
        plan_one(plan, ctx.rules, ctx.config.sender, own)
    check_provenance(ctx)
