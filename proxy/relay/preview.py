"""What the relay would do, without sending: `preview` for a message, `rules explain` for an address."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.addresses import AddressError, AddressPolicy, domain_of, normalise
from proxy.config.settings import Config
from proxy.relay.headers import message_id
from proxy.relay.pipeline import MessageContext, RecipientPlan, Reject, run_pipeline
from proxy.relay.steps import message_steps
from proxy.relay.steps.plan import own_domains, plan_one
from proxy.relay.steps.recipients import first_refusal, recipient_checks
from proxy.rules.ruleset import RuleSet
from proxy.store import Store


@dataclass
class Preview:
    refused: str | None = None  # the SMTP reply when the message or recipient would be refused
    raw: bytes = b""
    summary: list[str] = field(default_factory=list)


def _plan(address: str, config: Config) -> RecipientPlan:
    policy = AddressPolicy(config.addresses.strip_subaddress, config.addresses.subaddress_separators)
    try:
        normalised = normalise(address, policy)
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    return RecipientPlan(address=address, normalised=normalised, domain=domain_of(normalised))


async def preview_message(store: Store, rules: RuleSet, config: Config, raw: bytes, to: str, mail_from: str) -> Preview:
    plan = _plan(to, config)
    refusal = await first_refusal(recipient_checks(), store, rules, to, plan.normalised)
    if refusal:
        return Preview(refused=refusal[1], summary=[f"refused at RCPT by {refusal[0]}"])
    ctx = MessageContext(mail_from=mail_from, raw=raw, recipients=[plan], rules=rules, config=config, store=store)
    ctx.message_id = message_id(raw)
    try:
        await run_pipeline(message_steps(), ctx)
    except Reject as exc:
        return Preview(refused=exc.reply, summary=["refused at DATA"])
    version = ctx.versions[0]
    summary = [
        f"recipient: {to} (compared as {plan.normalised}), region {plan.region}, language {plan.language}",
        f"footer: {plan.footer_kind or 'none'}; trackers removed: {'yes' if plan.strip_trackers else 'no'}",
    ]
    if ctx.unmodifiable:
        summary.append(f"sent unchanged: {ctx.unmodifiable}")
    if "add-list-unsubscribe" in ctx.applied:
        summary.append("header added: List-Unsubscribe")
    summary += version.actions
    return Preview(raw=version.raw, summary=summary)


async def explain_recipient(store: Store, rules: RuleSet, config: Config, address: str) -> list[str]:
    """Everything the relay decides for one recipient, and why."""
    plan = _plan(address, config)
    lines = [f"address: {address} (compared as {plan.normalised})"]
    entry = await store.find_suppression(plan.normalised)
    if entry:
        target = "keyed hash of the address" if entry.kind == "hash" else f"{entry.kind} {entry.value}"
        lines.append(f"suppressed: yes, {target}, reason {entry.reason}, since {entry.date}")
    else:
        lines.append("suppressed: no")
    consumer = rules.freemail.is_consumer(plan.domain)
    lines.append(
        f"consumer address: {'yes' if consumer else 'no'} ({plan.domain}"
        f"{' is in' if consumer else ' is not in'} {rules.sources.get('freemail', 'freemail rules')})"
    )
    refusal = await first_refusal(recipient_checks(), store, rules, address, plan.normalised)
    lines.append(f"RCPT answer: {refusal[1] if refusal else '250 (accepted)'}")
    plan.contact = await store.contact(plan.normalised)
    plan_one(plan, rules, config.sender, own_domains(config.sender.opt_out_address, config.sender, rules))
    contact = plan.contact or {}
    lines.append(f"contact record: {'yes' if plan.contact else 'no'}")
    lines.append(
        f"region: {plan.region} (from {'recorded country' if contact.get('country') else 'the domain or the default'})"
    )
    consent = contact.get("tracking_consent", "unknown")
    lines.append(f"tracking consent: {consent}; marketing consent: {contact.get('marketing_consent', 'unknown')}")
    lines.append(f"trackers stripped: {'yes' if plan.strip_trackers else 'no'}")
    language_from = (
        "contact record"
        if contact.get("language")
        else ("domain" if rules.regions.language_for(plan.domain) else "configured default")
    )
    lines.append(f"recipient is: {plan.audience}")
    lines.append(f"footer: {plan.footer_kind or 'none'}, language {plan.language} (from {language_from})")
    if plan.footer_kind:
        lines.append(f"footer source sentence: {plan.footer_values['source']}")
        lines.append(f"footer reason sentence: {plan.footer_values['reason']}")
    return lines
