"""Decide, per recipient, region, footer language and kind, and whether trackers go."""

from __future__ import annotations

from proxy.config.settings import SenderConfig
from proxy.relay.pipeline import MessageContext, RecipientPlan
from proxy.relay.steps.footer import footer_values
from proxy.rules.ruleset import RuleSet


def plan_one(plan: RecipientPlan, rules: RuleSet, sender: SenderConfig) -> None:
    contact = plan.contact or {}
    plan.region = rules.regions.region_for(plan.domain, contact.get("country"))
    plan.language = contact.get("language") or rules.regions.language_for(plan.domain) or sender.default_language
    plan.first_contact = not contact.get("first_contact_at")
    policies = rules.policies
    if policies.footers:
        plan.footer_kind = "first_contact" if plan.first_contact else "follow_up"
        plan.footer_values = footer_values(plan, sender)
    consent = contact.get("tracking_consent", "unknown")
    plan.strip_trackers = (
        policies.strip_trackers and rules.regions.tracking_needs_consent(plan.region) and consent != "granted"
    )


async def plan_recipients(ctx: MessageContext) -> None:
    contacts = await ctx.store.contacts_for(p.normalised for p in ctx.recipients)
    for plan in ctx.recipients:
        plan.contact = contacts.get(plan.normalised)
        plan_one(plan, ctx.rules, ctx.config.sender)
