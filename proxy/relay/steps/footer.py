"""Add the disclosure footer, in the recipient's language: first-contact, follow-up or consent-based."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from proxy.config.settings import SenderConfig
from proxy.errors import StoreError
from proxy.mime import insert_footer
from proxy.relay.pipeline import MessageContext, RecipientPlan, Version
from proxy.relay.steps.modify import rewrite_versions
from proxy.rules.footers import FooterRules, render_footer
from proxy.rules.sources import SourceRules, provenance

_SENDER_FIELDS = ("name", "company", "privacy_policy_url", "opt_out_address")

log = logging.getLogger("gdpr_proxy.footer")


def sender_values(sender: SenderConfig) -> dict[str, str]:
    """The sender's part of the footer.  An unset or blank field shows as its config key, so a
    captured message tells the user what to fill in rather than printing an empty sentence."""
    values = {}
    for key in _SENDER_FIELDS:
        placeholder = "sender_name" if key == "name" else key
        values[placeholder] = getattr(sender, key).strip() or f"[sender.{key}]"
    return values


def footer_values(
    plan: RecipientPlan, sender: SenderConfig, footers: FooterRules, vocabulary: SourceRules
) -> dict[str, str]:
    source, reason = provenance(
        vocabulary, footers, plan.contact, plan.language, sender.default_source, sender.default_reason
    )
    return {**sender_values(sender), "source": source.text, "reason": reason.text}


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
    if kind == "first_contact":
        for recipient in version.recipients:
            recipient.notice_delivered = True
    return outcome.raw, [f"footer added: {footer.language} {kind} in {outcome.parts_changed} body part(s)"]


async def add_footer(ctx: MessageContext) -> None:
    await rewrite_versions(ctx, _add_footer)


async def note_copies(ctx: MessageContext, queued: Iterable[str] | None = None) -> None:
    """Before a copy goes to the queue: which copies carry the full notice and which go to
    colleagues, so that a copy the queue delivers later is recorded as one sent at once (first
    contact only with the notice).  ``queued``: the recipients (as given) whose copies are
    about to be queued; None for every recipient.  Copies handed on at once need no note (their
    record is written right after the upstream accepted them), so the usual message costs no
    write here."""
    if not ctx.message_id:
        return
    wanted = None if queued is None else set(queued)
    plans = [p for p in ctx.recipients if wanted is None or p.address in wanted]
    notes = [(p.normalised, "colleague") for p in plans if p.audience == "colleague"]
    if not ctx.unmodifiable:
        notes += [(p.normalised, "full_notice") for p in plans if p.notice_delivered]
    if not notes:
        return
    try:
        await ctx.store.note_copies(ctx.message_id, notes)
    except StoreError as exc:
        # Only a copy delivered later from the queue needs the note; without it that copy does not
        # count as first contact, so the next message repeats the full notice: the safe side.
        log.warning("%s copies not noted (%s): a queued copy will not count as first contact", ctx.label, exc)
