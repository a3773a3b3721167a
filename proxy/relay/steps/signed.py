"""Signed or encrypted mail is never modified: sent exactly as it came, or refused by policy."""

from __future__ import annotations

import asyncio
import logging

from proxy.mime import is_signed_or_encrypted
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, Reject
from proxy.relay.steps.modify import INLINE_LIMIT

log = logging.getLogger("gdpr_proxy.steps")


async def check_signed(ctx: MessageContext) -> None:
    if len(ctx.raw) <= INLINE_LIMIT:
        signed = is_signed_or_encrypted(ctx.raw)
    else:  # the structure scan of a large message (shared by the later steps) off the event loop
        signed = await asyncio.to_thread(is_signed_or_encrypted, ctx.raw)
    if not signed:
        return
    if ctx.rules.policies.signed_messages == "refuse":
        raise Reject(replies.SIGNED_REFUSED)
    ctx.unmodifiable = "signed or encrypted"
    log.info("%s is signed or encrypted: sent unchanged (policy signed_messages)", ctx.label)
