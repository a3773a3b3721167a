"""Retries what the spool holds, with back-off; bounces to the sender when a copy finally fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from proxy.config.settings import QueueConfig
from proxy.outbound.dsn import bounce_message
from proxy.outbound.spool import Spool, SpoolEntry
from proxy.outbound.upstream import Upstream

log = logging.getLogger("gdpr_proxy.retry")


class RetryRunner:
    def __init__(
        self,
        spool: Spool,
        upstream: Upstream,
        config: QueueConfig,
        hostname: str | None,
        record: Callable[[str | None, list[str]], Awaitable[None]] | None = None,
    ):
        self.spool = spool
        self.upstream = upstream
        self.config = config
        self.hostname = hostname
        self.record = record  # marks delivered recipients as contacted, as the relay does

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("retry round failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(self.config.retry_seconds, 30.0))
            except TimeoutError:
                pass

    async def run_once(self, now: float | None = None) -> int:
        """Try every due entry once; returns how many were delivered."""
        delivered = 0
        for entry in await asyncio.to_thread(self.spool.due, now):
            delivered += await self._attempt(entry)
        return delivered

    async def _attempt(self, entry: SpoolEntry) -> int:
        raw = await asyncio.to_thread(self.spool.message, entry)
        result = await self.upstream.deliver(entry.mail_from, entry.recipients, raw, entry.smtputf8)
        label = f"<{entry.message_id}>" if entry.message_id else f"queue entry {entry.id}"
        temporary = [r for r, (code, _) in result.refused.items() if code < 500]
        permanent = {r: v for r, v in result.refused.items() if v[0] >= 500}
        if result.accepted:
            log.info("%s delivered from the queue to %d recipient(s)", label, len(result.accepted))
            if self.record is not None and not entry.is_bounce:
                await self.record(entry.message_id, result.accepted)
        expired = time.time() - entry.created > self.config.give_up_after_hours * 3600
        if expired:
            permanent.update({r: result.refused[r] for r in temporary})
            temporary = []
        if permanent and entry.mail_from and not entry.is_bounce:
            bounce = bounce_message(entry.mail_from, raw, permanent, self.hostname)
            await asyncio.to_thread(self.spool.put, "", [entry.mail_from], bounce, None, is_bounce=True)
        if permanent:
            log.warning("%s finally failed for %d recipient(s); sender notified", label, len(permanent))
        if temporary:
            entry.recipients = temporary
            entry.attempts += 1
            entry.last_error = "; ".join(f"{c} {t}" for c, t in (result.refused[r] for r in temporary))
            delay = min(self.config.retry_seconds * 2 ** (entry.attempts - 1), self.config.max_retry_seconds)
            entry.next_attempt = time.time() + delay
            await asyncio.to_thread(self.spool.save, entry)
        else:
            await asyncio.to_thread(self.spool.remove, entry)
        return len(result.accepted)
