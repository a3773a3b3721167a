"""Signed or encrypted mail is never modified: sent exactly as it came, or refused by policy."""

from __future__ import annotations

import logging

from proxy.mime import is_signed_or_encrypted
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, Reject

log = logging.getLogger("gdpr_proxy.steps")


async def check_signed(ctx: MessageContext) -> None:
    if not is_signed_or_encrypted(ctx.raw):
        return
    if ctx.rules.policies.signed_messages == "refuse":
        raise Reject(replies.SIGNED_REFUSED)
    ctx.unmodifiable = "signed or encrypted"
    log.info("%s is signed or encrypted: sent unchanged (policy signed_messages)", ctx.label)
