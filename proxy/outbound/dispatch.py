"""Send every version upstream and decide what the mail client is told.

The rule (see README, "What the client is told"):
- 250 only when every copy was accepted upstream, or when the copies that were not are
  safely in the durable spool (temporary failure) or turned into a bounce to the sender
  (permanent failure) -- that happens only when some other copy was already accepted,
  because then a 4xx would make the client send the accepted copies twice;
- otherwise the upstream answer: 4xx (the client keeps the message and retries) or the
  upstream 5xx with its text.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from proxy.outbound.dsn import bounce_message
from proxy.outbound.spool import Spool
from proxy.outbound.upstream import DeliveryResult, Upstream
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext, Version
from proxy.store import StoreError

log = logging.getLogger("gdpr_proxy.dispatch")


@dataclass
class DispatchOutcome:
    reply: str
    delivered: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    upstream_code: int = 250


def _first_refusal(refusals: list[tuple[int, str]], temporary: bool) -> tuple[int, str] | None:
    for code, text in refusals:
        if (code < 500) == temporary:
            return code, text
    return None


async def dispatch(ctx: MessageContext, upstream: Upstream, spool: Spool) -> DispatchOutcome:
    outcome = DispatchOutcome(reply="")
    failed: list[tuple[Version, DeliveryResult]] = []
    refusals: list[tuple[int, str]] = []
    unreachable: str | None = None
    for version in ctx.versions:
        if failed and not outcome.delivered and any(c < 500 for c, _ in refusals):
            break  # nothing accepted yet and a temporary failure: the client retries it all
        rcpts = [p.address for p in version.recipients]
        result = await upstream.deliver(ctx.mail_from, rcpts, version.raw, ctx.smtputf8)
        outcome.delivered.extend(result.accepted)
        if result.refused:
            failed.append((version, result))
            refusals.extend(result.refused.values())
            unreachable = unreachable or result.unreachable
    if not outcome.delivered:
        temporary = _first_refusal(refusals, temporary=True)
        if unreachable and temporary:
            outcome.reply = replies.upstream_unreachable(unreachable)
            outcome.upstream_code = 451
            return outcome
        code, text = temporary or _first_refusal(refusals, temporary=False) or (451, "no answer")
        outcome.reply = replies.upstream_failure(code, text)
        outcome.upstream_code = code
        return outcome
    await _hold_the_rest(ctx, spool, failed, outcome)
    outcome.reply = replies.accepted(
        len(outcome.delivered), len(outcome.queued), len(outcome.bounced), captured=upstream.captures
    )
    return outcome


async def _hold_the_rest(
    ctx: MessageContext, spool: Spool, failed: list[tuple[Version, DeliveryResult]], outcome: DispatchOutcome
) -> None:
    """Part of the message went out: spool temporary failures, bounce permanent ones."""
    for version, result in failed:
        temporary = [r for r, (code, _) in result.refused.items() if code < 500]
        permanent = {r: v for r, v in result.refused.items() if v[0] >= 500}
        if temporary:
            reason = "; ".join(f"{r}: {c} {t}" for r, (c, t) in result.refused.items() if c < 500)
            await asyncio.to_thread(
                spool.put,
                ctx.mail_from,
                temporary,
                version.raw,
                ctx.message_id,
                smtputf8=ctx.smtputf8,
                error=reason,
            )
            outcome.queued.extend(temporary)
        if permanent and ctx.mail_from:
            bounce = bounce_message(ctx.mail_from, version.raw, permanent, ctx.config.listen.hostname)
            await asyncio.to_thread(spool.put, "", [ctx.mail_from], bounce, None, is_bounce=True)
            outcome.bounced.extend(permanent)
        elif permanent:
            outcome.bounced.extend(permanent)


async def record_delivered(ctx: MessageContext, delivered: list[str]) -> None:
    """First and last contact, Message-ID -> recipients; after upstream accepted, never before."""
    normalised = [p.normalised for p in ctx.recipients if p.address in set(delivered)]
    try:
        await ctx.store.record_delivery(ctx.message_id, normalised)
    except StoreError as exc:
        # The mail is out; losing this record only means the next message repeats the full footer.
        log.error("%s delivered but not recorded in the store: %s", ctx.label, exc)
