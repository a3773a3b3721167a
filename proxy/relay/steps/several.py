"""One person at a time: the policy for cold e-mail with several external recipients in To/Cc."""

from __future__ import annotations

import logging
from email.utils import formataddr, getaddresses

from proxy.addresses import AddressError, domain_of, normalise
from proxy.relay import replies
from proxy.relay.headers import add_header, header_values, remove_headers
from proxy.relay.pipeline import MessageContext, Reject, Version
from proxy.relay.steps.modify import rewrite_versions

log = logging.getLogger("gdpr_proxy.steps")


def visible_recipients(raw: bytes) -> list[tuple[str, str]]:
    """(display name, address) of every To and Cc recipient."""
    return getaddresses(header_values(raw, "To") + header_values(raw, "Cc"))


def _external(ctx: MessageContext) -> list[str]:
    """The external To/Cc recipients, where there can be two or more (else an empty list)."""
    values = header_values(ctx.raw, "To") + header_values(ctx.raw, "Cc")
    if sum(value.count("@") for value in values) < 2:  # one address at most: no need to parse
        return []
    own = domain_of(ctx.mail_from.lower()) if "@" in ctx.mail_from else None
    found = []
    for _, address in getaddresses(values):
        try:
            normalised = normalise(address)
        except AddressError:
            continue
        if domain_of(normalised) != own:
            found.append(normalised)
    return list(dict.fromkeys(found))


async def check_several_recipients(ctx: MessageContext) -> None:
    policy = ctx.rules.policies.several_recipients
    if policy.action == "allow" or (ctx.unmodifiable and policy.action == "split"):
        return
    external = _external(ctx)
    if len(external) < 2:
        return
    action = policy.decide(f"{ctx.label} has {len(external)} external recipients in To/Cc")
    if action == "reject":
        raise Reject(replies.SEVERAL_RECIPIENTS_REFUSED)
    if action == "split":
        ctx.split_each = True


def _address_individually(version: Version, ctx: MessageContext) -> tuple[bytes, list[str]]:
    if not ctx.split_each:
        return version.raw, []
    plan = version.recipients[0]
    names = {normalise(a): n for n, a in visible_recipients(ctx.raw) if "@" in a}
    raw, _ = remove_headers(version.raw, {"To", "Cc"})
    raw = add_header(raw, "To", formataddr((names.get(plan.normalised, ""), plan.address)))
    return raw, [f"addressed individually to {plan.address}"]


async def address_individually(ctx: MessageContext) -> None:
    await rewrite_versions(ctx, _address_individually)
