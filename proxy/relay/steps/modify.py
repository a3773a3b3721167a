"""Shared machinery of the steps that rewrite each version of the message.

The MIME work is pure CPU over bytes: small messages are handled inline (a thread hop costs
more than the work), large ones in a worker thread so that one 25 MB attachment does not
stall every other client's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from proxy.mime import MimeError
from proxy.mime.structure import forget as forget_scan
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, Reject, Version

log = logging.getLogger("gdpr_proxy.steps")

INLINE_LIMIT = 256 * 1024

# (version, ctx) -> (new bytes, descriptions of what was done); same bytes object = no change
Transform = Callable[[Version, MessageContext], tuple[bytes, list[str]]]


async def rewrite_versions(ctx: MessageContext, transform: Transform) -> None:
    if ctx.unmodifiable:
        return
    changed = False
    for version in ctx.versions:
        try:
            if len(version.raw) <= INLINE_LIMIT:
                raw, actions = transform(version, ctx)
            else:
                raw, actions = await asyncio.to_thread(transform, version, ctx)
        except MimeError as exc:
            _unmodifiable(ctx, str(exc))
            return
        if raw is not version.raw:
            # The replaced bytes need no structure any more: a 25 MB version must not stay
            # alive because its tree is remembered.
            forget_scan(version.raw)
            version.raw = raw
            changed = True
        version.actions.extend(actions)
    if changed:
        ctx.mark_applied()


def _unmodifiable(ctx: MessageContext, why: str) -> None:
    """The structure is too broken to change safely: every version goes back to the original."""
    if ctx.rules.policies.unmodifiable_messages == "refuse":
        log.warning("%s cannot be modified safely (%s): refused by policy", ctx.label, why)
        raise Reject(replies.UNMODIFIABLE_REFUSED)
    log.warning("%s cannot be modified safely (%s): sent unchanged", ctx.label, why)
    ctx.unmodifiable = why
    for version in ctx.versions:
        version.raw = ctx.unmodified or ctx.raw
        version.actions = [f"sent unchanged: {why}"]
    ctx.applied = [a for a in ctx.applied if a == "check-line-endings"]
