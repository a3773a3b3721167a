"""Group recipients by treatment: one version of the message per distinct treatment."""

from __future__ import annotations

from proxy.relay.pipeline import MessageContext, RecipientPlan, Version
from proxy.relay.steps.unsubscribe import one_click_configured


async def split_versions(ctx: MessageContext) -> None:
    # A signed one-click link names one person: then each recipient gets a copy of their own.
    per_person = one_click_configured(ctx)
    groups: dict[tuple[object, ...], list[RecipientPlan]] = {}
    for plan in ctx.recipients:
        if ctx.unmodifiable:
            key: tuple[object, ...] = ("unchanged",)
        elif ctx.split_each or (per_person and plan.audience != "colleague"):
            key = (plan.address,)
        else:
            key = plan.treatment()
        groups.setdefault(key, []).append(plan)
    ctx.versions = [Version(recipients=group, raw=ctx.raw) for group in groups.values()]
