"""Group recipients by treatment: one version of the message per distinct treatment."""

from __future__ import annotations

from proxy.relay.pipeline import MessageContext, RecipientPlan, Version


async def split_versions(ctx: MessageContext) -> None:
    groups: dict[tuple[object, ...], list[RecipientPlan]] = {}
    for plan in ctx.recipients:
        if ctx.unmodifiable:
            key: tuple[object, ...] = ("unchanged",)
        elif ctx.split_each:
            key = (plan.address,)
        else:
            key = plan.treatment()
        groups.setdefault(key, []).append(plan)
    ctx.versions = [Version(recipients=group, raw=ctx.raw) for group in groups.values()]
