"""Add the disclosure footer, in the recipient's language, first-contact or follow-up."""

from __future__ import annotations

from proxy.config.settings import SenderConfig
from proxy.mime import insert_footer
from proxy.relay.pipeline import MessageContext, RecipientPlan, Version
from proxy.relay.steps.modify import rewrite_versions
from proxy.rules.footers import render_footer


def footer_values(plan: RecipientPlan, sender: SenderConfig) -> dict[str, str]:
    """Template values: the contact's record first, then the configured defaults.

    An unset sender field shows as its config key, so a captured message tells the user what
    to fill in rather than printing an empty sentence.
    """
    contact = plan.contact or {}
    return {
        "sender_name": sender.name or "[sender.name]",
        "company": sender.company or "[sender.company]",
        "privacy_policy_url": sender.privacy_policy_url or "[sender.privacy_policy_url]",
        "opt_out_address": sender.opt_out_address or "[sender.opt_out_address]",
        "source": contact.get("source") or sender.default_source,
        "reason": contact.get("reason") or sender.default_reason,
    }


def _add_footer(version: Version, ctx: MessageContext) -> tuple[bytes, list[str]]:
    plan = version.recipients[0]  # one version = one treatment, footer values included
    kind = plan.footer_kind
    if kind is None:
        return version.raw, []
    key = (plan.language, kind, tuple(sorted(plan.footer_values.items())))
    cache = ctx.rules.rendered_footers  # most recipients share a footer: render it once per rule set
    footer = cache.get(key)
    if footer is None:
        footer = render_footer(ctx.rules.footers, plan.language, kind, plan.footer_values)
        if len(cache) < 1024:
            cache[key] = footer
    outcome = insert_footer(version.raw, footer.text, footer.html)
    if outcome.skipped_reason:
        return version.raw, [f"footer not added: {outcome.skipped_reason}"]
    return outcome.raw, [f"footer added: {footer.language} {kind} in {outcome.parts_changed} body part(s)"]


async def add_footer(ctx: MessageContext) -> None:
    await rewrite_versions(ctx, _add_footer)
