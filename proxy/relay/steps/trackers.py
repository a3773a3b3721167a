"""Remove open tracking (pixels, beacons, read-receipt requests) where consent is missing."""

from __future__ import annotations

from proxy.addresses import domain_of
from proxy.mime import remove_read_receipt_requests, strip_trackers
from proxy.relay.pipeline import MessageContext, Version
from proxy.relay.steps.modify import rewrite_versions


def _sender_domain(ctx: MessageContext) -> str | None:
    return domain_of(ctx.mail_from.lower()) if "@" in ctx.mail_from else None


def _strip(version: Version, ctx: MessageContext) -> tuple[bytes, list[str]]:
    if not version.recipients[0].strip_trackers:
        return version.raw, []
    outcome = strip_trackers(
        version.raw, ctx.rules.trackers, _sender_domain(ctx), ctx.rules.policies.unwrap_click_tracking
    )
    actions = [f"tracker removed: {r.url} ({r.rule})" for r in outcome.removed]
    if outcome.links_unwrapped:
        actions.append(f"click-tracking links unwrapped: {outcome.links_unwrapped}")
    return outcome.raw, actions


def _receipts(version: Version, ctx: MessageContext) -> tuple[bytes, list[str]]:
    if not version.recipients[0].strip_trackers:
        return version.raw, []
    raw, removed = remove_read_receipt_requests(version.raw)
    return raw, [f"header removed: {name}" for name in removed]


async def remove_trackers(ctx: MessageContext) -> None:
    await rewrite_versions(ctx, _strip)


async def remove_read_receipts(ctx: MessageContext) -> None:
    await rewrite_versions(ctx, _receipts)
