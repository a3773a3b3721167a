"""List-Unsubscribe (RFC 2369) and one-click unsubscribe (RFC 8058) with a signed link per recipient."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

from proxy.relay.headers import add_header, header_value
from proxy.relay.pipeline import MessageContext, Version
from proxy.relay.steps.modify import rewrite_versions

_PURPOSE = b"one-click unsubscribe\x00"
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, address: str) -> bytes:
    return hmac.new(key, _PURPOSE + address.encode("utf-8"), hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, address: str) -> str:
    """The token for one (normalised) address: the address and its signature, both URL-safe."""
    return f"{_b64(address.encode('utf-8'))}.{_b64(_mac(key, address))}"


def verify_token(key: bytes, token: str) -> str | None:
    """The address a token was made for, or None when it was not made with ``key``."""
    encoded, dot, signature = token.partition(".")
    if not dot or not encoded or not signature or len(token) > 1000:
        return None
    try:
        address = _unb64(encoded).decode("utf-8")
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        return None
    return address if hmac.compare_digest(given, _mac(key, address)) else None


def unsubscribe_link(public_url: str, key: bytes, address: str) -> str:
    return f"{public_url.rstrip('/')}/{make_token(key, address)}"


def one_click_configured(ctx: MessageContext) -> bool:
    return bool(ctx.rules.policies.list_unsubscribe and ctx.config.unsubscribe.public_url)


async def add_list_unsubscribe(ctx: MessageContext) -> None:
    """After the split into versions: with one-click each recipient has a version of their own."""
    sender = ctx.config.sender
    if not ctx.rules.policies.list_unsubscribe or ctx.unmodifiable:
        return
    if header_value(ctx.raw, "List-Unsubscribe") is not None:
        return  # the sending tool already offers one; two would confuse mail providers
    public_url = ctx.config.unsubscribe.public_url
    if not sender.opt_out_address.strip() and not public_url:
        return
    key = await ctx.store.unsubscribe_key() if public_url else b""

    def add(version: Version, ctx: MessageContext) -> tuple[bytes, list[str]]:
        plan = version.recipients[0]
        targets = []
        if sender.opt_out_address.strip():
            # The reply watcher recognises this subject as an opt-out.
            targets.append(f"<mailto:{quote(sender.opt_out_address.strip(), safe='@.+-_')}?subject=unsubscribe>")
        raw = version.raw
        if public_url and len(version.recipients) == 1 and plan.audience != "colleague":
            targets.append(f"<{unsubscribe_link(public_url, key, plan.normalised)}>")
            raw = add_header(raw, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        elif sender.unsubscribe_url:
            targets.append(f"<{sender.unsubscribe_url}>")  # the user's own page: a plain link, not one-click
        if not targets:
            return version.raw, []
        return add_header(raw, "List-Unsubscribe", ", ".join(targets)), ["header added: List-Unsubscribe"]

    await rewrite_versions(ctx, add)
