"""List-Unsubscribe (RFC 2369) and one-click unsubscribe (RFC 8058) headers."""

from __future__ import annotations

from urllib.parse import quote

from proxy.relay.headers import add_header, header_value
from proxy.relay.pipeline import MessageContext


async def add_list_unsubscribe(ctx: MessageContext) -> None:
    sender = ctx.config.sender
    if not ctx.rules.policies.list_unsubscribe or ctx.unmodifiable or not sender.opt_out_address:
        return
    if header_value(ctx.raw, "List-Unsubscribe") is not None:
        return  # the sending tool already offers one; two would confuse mail providers
    # The reply watcher recognises this subject as an opt-out.
    targets = [f"<mailto:{quote(sender.opt_out_address, safe='@.+-_')}?subject=unsubscribe>"]
    raw = ctx.raw
    if sender.unsubscribe_url:
        targets.append(f"<{sender.unsubscribe_url}>")
        raw = add_header(raw, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    ctx.raw = add_header(raw, "List-Unsubscribe", ", ".join(targets))
    ctx.mark_applied()
