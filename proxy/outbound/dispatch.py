"""Send every version upstream and decide what the mail client is told.

The rule (see README, "What the client is told"), as a local MTA does for its user:
- 250 when every copy was accepted upstream, or is safely in the durable spool (the
  upstream was unreachable, timed out, failed TLS or answered 4xx: it is retried with
  back-off), the permanently refused copies then coming back to the sender as a bounce;
- the upstream's 5xx with its text when nothing was accepted or queued (wrong password,
  message refused as spam): the client shows it at once;
- 451 only when the relay could not even write the message to its spool.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from proxy.outbound.dsn import bounce_message
from proxy.outbound.spool import Reservation, Spool, discard
from proxy.outbound.upstream import Upstream
from proxy.relay import replies
from proxy.relay.pipeline import MessageContext
from proxy.relay.steps.footer import note_copies
from proxy.store import StoreError

log = logging.getLogger("gdpr_proxy.dispatch")


@dataclass
class DispatchOutcome:
    reply: str
    delivered: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    upstream_code: int = 250


async def dispatch(
    ctx: MessageContext, upstream: Upstream, spool: Spool, connect_wait: float | None = None
) -> DispatchOutcome:
    """``connect_wait``: how long the client waits for the upstream to answer before its mail is queued."""
    # Room for every copy first: a full or read-only queue is found out before anything goes
    # out, so the client is never told "not sent" about mail that was partly sent.  An
    # ordinary message takes reserved slots from the pool; the rest creates files in a thread.
    sizes = [len(v.raw) for v in ctx.versions]
    reservation = spool.reserve_pooled(sizes)
    if reservation is None:
        try:
            reservation = await asyncio.to_thread(spool.reserve, sizes)
        except OSError as exc:
            log.error("%s cannot write to the queue %s: %s; nothing sent", ctx.label, spool.directory, exc.strerror)
            return DispatchOutcome(reply=replies.QUEUE_FULL, upstream_code=452)
    try:
        return await _dispatch(ctx, upstream, spool, reservation, connect_wait)
    finally:
        leftovers = reservation.release()
        if leftovers:
            await asyncio.to_thread(discard, leftovers)


async def _dispatch(
    ctx: MessageContext, upstream: Upstream, spool: Spool, reservation: Reservation, connect_wait: float | None
) -> DispatchOutcome:
    outcome = DispatchOutcome(reply="")
    temporary: list[tuple[bytes, list[str], str]] = []  # (version bytes, recipients, error)
    permanent: list[tuple[bytes, dict[str, tuple[int, str]]]] = []
    unreachable: str | None = None
    for version in ctx.versions:
        rcpts = [p.address for p in version.recipients]
        if unreachable is not None:  # one connection attempt per message is enough to know
            temporary.append((version.raw, rcpts, unreachable))
            continue
        result = await upstream.deliver(ctx.mail_from, rcpts, version.raw, ctx.smtputf8, connect_timeout=connect_wait)
        outcome.delivered.extend(result.accepted)
        unreachable = result.unreachable
        later = [r for r, (code, _) in result.refused.items() if code < 500]
        if later:
            error = "; ".join(f"{c} {t}" for c, t in (result.refused[r] for r in later))
            temporary.append((version.raw, later, error))
        refused = {r: v for r, v in result.refused.items() if v[0] >= 500}
        if refused:
            permanent.append((version.raw, refused))
    if not outcome.delivered and not temporary:
        code, text = next(iter(permanent[0][1].values())) if permanent else (451, "no answer")
        outcome.reply = replies.upstream_failure(code, text)
        outcome.upstream_code = code
        return outcome
    lost: list[str] = []
    if temporary:  # noted before the copies are queued: a later delivery counts as the notice it carried
        await note_copies(ctx, [r for _, rcpts, _ in temporary for r in rcpts])
    for raw, rcpts, error in temporary:
        reserved = reservation.take(len(raw))
        try:
            await asyncio.to_thread(
                spool.put,
                ctx.mail_from,
                rcpts,
                raw,
                ctx.message_id,
                smtputf8=ctx.smtputf8,
                error=error,
                reserved=reserved,
            )
            outcome.queued.extend(rcpts)
        except OSError as exc:  # only where the space could not be reserved (or the disk failed)
            log.error("%s cannot write to the queue %s: %s", ctx.label, spool.directory, exc.strerror)
            lost.extend(rcpts)
            if reserved is not None:
                await asyncio.to_thread(reserved.discard)
    if lost and not outcome.delivered and not outcome.queued:
        # Nothing went out: the client keeps the message and sends it again, no copy repeated.
        outcome.reply, outcome.upstream_code = replies.QUEUE_UNAVAILABLE, 451
        return outcome
    for raw, refused in permanent:
        if ctx.mail_from:
            bounce = bounce_message(ctx.mail_from, raw, refused, ctx.config.listen.hostname)
            try:
                await asyncio.to_thread(spool.put, "", [ctx.mail_from], bounce, None, is_bounce=True)
            except OSError as exc:  # the copies that went out stay sent: the answer below says the rest
                log.error("%s bounce for %d recipient(s) not queued: %s", ctx.label, len(refused), exc.strerror)
        outcome.bounced.extend(refused)
    if lost:
        # Some copies went out: "not sent" would make the client send them all again.
        outcome.reply = replies.partly_sent(len(outcome.delivered), len(outcome.queued), lost)
        return outcome
    if outcome.queued and not outcome.delivered:
        outcome.upstream_code = 451
        outcome.reply = replies.queued(unreachable is not None, len(outcome.queued), captured=upstream.captures)
    else:
        outcome.reply = replies.accepted(
            len(outcome.delivered), len(outcome.queued), len(outcome.bounced), captured=upstream.captures
        )
    if outcome.queued:
        log.info("%s queued for %d recipient(s): %s", ctx.label, len(outcome.queued), temporary[0][2][:200])
    return outcome


async def record_delivered(ctx: MessageContext, delivered: list[str]) -> None:
    """First and last contact, Message-ID -> recipients; after upstream accepted, never before.

    Colleagues are not contacts.  First contact only where the copy carried the full notice.
    """
    sent = set(delivered)
    plans = [p for p in ctx.recipients if p.address in sent and p.audience != "colleague"]
    notified = [p.normalised for p in plans if p.notice_delivered and not ctx.unmodifiable]
    try:
        await ctx.store.record_delivery(ctx.message_id, [p.normalised for p in plans], notified)
    except StoreError as exc:
        # The mail is out; losing this record only means the next message repeats the full footer.
        log.error("%s delivered but not recorded in the store: %s", ctx.label, exc)
